"""What the command line writes: never over an input, never over an earlier result, checked
before any fit, and kept (with a message saying where) when a write fails late."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bayesrec.cli as cli
import bayesrec.inference.io as io
from bayesrec.cli import main
from bayesrec.data.simulate import simulate_ratings
from bayesrec.errors import InputError
from bayesrec.evaluation.outputs import check_output_file, check_output_folder
from bayesrec.inference import load_fit

GIBBS = ["--model", "pmf", "--method", "gibbs", "--draws", "20", "--tune", "10", "--chains",
         "1", "--option", "n_factors=2", "--kfold", "2"]


def write_csv(path: Path, n_users=30, n_items=20, n_ratings=240, seed=0) -> Path:
    ratings, _ = simulate_ratings(n_users, n_items, n_ratings, seed=seed)
    frame = pd.DataFrame({"user": ratings.user_ids, "item": ratings.item_ids,
                          "rating": ratings.rating})
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def csv_file(tmp_path) -> Path:
    return write_csv(tmp_path / "ratings.csv")


@pytest.fixture
def unwritable_dir(tmp_path) -> Path:
    """A folder this process cannot write: a read-only one, or /sys for root."""
    if os.geteuid() != 0:
        folder = tmp_path / "read-only"
        folder.mkdir()
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    try:
        with tempfile.TemporaryFile(dir="/sys"):
            pass
    except OSError:
        yield Path("/sys")
        return
    pytest.skip("no folder this user cannot write")


def run(argv, capsys) -> tuple[int, str]:
    rc = main(argv)
    return rc, capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# never over an input
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("spelling", ["same", "relative", "dotdot", "symlink", "hardlink"])
def test_json_never_replaces_the_ratings_file(csv_file, capsys, monkeypatch, spelling):
    before = csv_file.read_bytes()
    monkeypatch.chdir(csv_file.parent)
    target = {"same": str(csv_file), "relative": "./ratings.csv",
              "dotdot": f"../{csv_file.parent.name}/ratings.csv"}.get(spelling)
    if spelling == "symlink":
        (csv_file.parent / "link.csv").symlink_to(csv_file)
        target = "link.csv"
    if spelling == "hardlink":
        os.link(csv_file, csv_file.parent / "hard.csv")
        target = "hard.csv"
    rc, err = run(["evaluate", "--model", "biases", "--dataset", str(csv_file), "--kfold", "2",
                   "--json", target, "--overwrite"], capsys)
    assert rc == 2
    assert "would be written over an input" in err and "choose another path" in err
    assert "fitting" not in err  # refused before any fit
    assert csv_file.read_bytes() == before


_SPELLINGS = st.lists(st.sampled_from(["dot", "up", "slash", "link_dir", "link_file"]),
                      max_size=4)


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=_SPELLINGS)
def test_every_spelling_of_an_input_is_refused(tmp_path, steps):
    """Any way of naming the input file (./, dir/.., //, symlinked folders or files) is
    recognised as the input."""
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    source = data / "ratings.csv"
    source.write_text("user,item,rating\n")
    if not (tmp_path / "alias").exists():
        (tmp_path / "alias").symlink_to(data, target_is_directory=True)
        (tmp_path / "alias.csv").symlink_to(source)
    folder, name = str(data), "ratings.csv"
    for step in steps:
        if step == "dot":
            folder += "/."
        elif step == "up":
            folder += f"/../{Path(folder).name}"
        elif step == "slash":
            folder += "/"
        elif step == "link_dir":
            folder, name = str(tmp_path / "alias"), "ratings.csv"
        elif step == "link_file":
            folder, name = str(tmp_path), "alias.csv"
    with pytest.raises(InputError, match="would be written over an input"):
        check_output_file(f"{folder}/{name}", what="--json", inputs=[source], overwrite=True)


def test_outputs_inside_an_input_folder_are_refused(tmp_path):
    home = tmp_path / "home" / "ml-100k"
    home.mkdir(parents=True)
    with pytest.raises(InputError, match="lies inside an input"):
        check_output_folder(home / "fits", what="--save-fit", inputs=[home])


def test_report_never_writes_over_its_fit(tmp_path, capsys):
    fit_file = tmp_path / "fit"
    fit_file.write_text("not even a fit")
    rc, err = run(["report", str(fit_file)], capsys)
    assert rc == 2 and "default report folder would be the fit itself" in err
    rc, err = run(["report", str(fit_file), "--out", str(tmp_path / "elsewhere")], capsys)
    assert rc == 2 and "could not read a fit" in err  # the folder passed; the file is no fit
    (tmp_path / "out").mkdir()
    fake = tmp_path / "out" / "diagnostics.nc"
    fake.write_text("an input")
    rc, err = run(["report", str(fake), "--out", str(tmp_path / "out")], capsys)
    assert rc == 2 and "would be written over an input" in err
    assert fake.read_text() == "an input"


# ---------------------------------------------------------------------------------------------
# checked before any fit
# ---------------------------------------------------------------------------------------------
def test_destinations_are_checked_before_any_fit(csv_file, tmp_path, capsys, unwritable_dir):
    base = ["evaluate", *GIBBS, "--dataset", str(csv_file)]
    (tmp_path / "a-folder").mkdir()
    (tmp_path / "a-file").write_text("")
    cases = [
        (["--json", str(csv_file / "out.json")], "is a file, not a folder"),
        (["--json", str(tmp_path / "a-folder")], "is a folder; give a file name"),
        (["--save-fit", str(csv_file)], "would be written over an input"),
        (["--save-fit", str(tmp_path / "a-file")], "is a file, not a folder"),
        (["--json", str(unwritable_dir / "out.json")], "is not writable"),
        (["--save-fit", str(unwritable_dir / "fits")], "is not writable"),
    ]
    for extra, message in cases:
        rc, err = run([*base, *extra], capsys)
        assert rc == 2, (extra, err)
        assert message in err, (extra, err)
        assert "fitting" not in err and "Traceback" not in err, extra


def test_json_into_a_missing_folder_is_created(csv_file, tmp_path, capsys):
    target = tmp_path / "new" / "deeper" / "result.json"
    rc, err = run(["evaluate", "--model", "biases", "--dataset", str(csv_file), "--kfold", "2",
                   "--json", str(target)], capsys)
    assert rc == 0, err
    assert json.loads(target.read_text())["model"] == "biases"


# ---------------------------------------------------------------------------------------------
# fits named after their run; nothing replaced without --overwrite
# ---------------------------------------------------------------------------------------------
def test_saved_fits_are_named_after_their_run(csv_file, tmp_path, capsys):
    fits = tmp_path / "fits"
    records = {}
    for seed in (0, 1):
        target = tmp_path / f"seed{seed}.json"
        rc, err = run(["evaluate", *GIBBS, "--dataset", str(csv_file), "--seed", str(seed),
                       "--save-fit", str(fits), "--json", str(target)], capsys)
        assert rc == 0, err
        records[seed] = json.loads(target.read_text())
    assert records[0]["run_id"] != records[1]["run_id"]
    assert len(list(fits.iterdir())) == 4  # two runs, two folds each: nothing replaced
    for seed, record in records.items():
        assert set(record["fits"]) == {"fold1", "fold2"}
        for fold, path in record["fits"].items():
            assert Path(path).name == f"pmf-gibbs-{fold}-{record['run_id']}.nc"
            fit = load_fit(path)
            assert int(fit.attrs["random_seed"]) == seed
    # the same run again: its files exist, so it is refused before fitting ...
    argv = ["evaluate", *GIBBS, "--dataset", str(csv_file), "--save-fit", str(fits)]
    rc, err = run(argv, capsys)
    assert rc == 2
    assert f"pmf-gibbs-fold1-{records[0]['run_id']}.nc exists; pass --overwrite" in err
    assert "fitting" not in err
    # ... unless asked; an unchanged run has the same id and gives the same fits
    rc, err = run([*argv, "--overwrite"], capsys)
    assert rc == 0, err
    assert len(list(fits.iterdir())) == 4
    help_text = _help("evaluate")
    assert "<model>-<method>-<fold>-<run>.nc" in help_text and "run_id" in help_text


def _help(command: str) -> str:
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return sub.choices[command].format_help()


def test_existing_json_is_kept_without_overwrite(csv_file, tmp_path, capsys):
    target = tmp_path / "result.json"
    target.write_text('{"earlier": "run"}')
    argv = ["evaluate", "--model", "biases", "--dataset", str(csv_file), "--kfold", "2",
            "--json", str(target)]
    rc, err = run(argv, capsys)
    assert rc == 2 and "exists; pass --overwrite" in err
    assert json.loads(target.read_text()) == {"earlier": "run"}
    rc, err = run([*argv, "--overwrite"], capsys)
    assert rc == 0 and json.loads(target.read_text())["model"] == "biases"


# ---------------------------------------------------------------------------------------------
# a write that fails late: the results are kept, and the message says where
# ---------------------------------------------------------------------------------------------
def test_a_fit_that_cannot_be_saved_goes_elsewhere_and_the_json_says_so(csv_file, tmp_path,
                                                                        capsys, monkeypatch):
    real_save = io.save_fit
    fits = tmp_path / "fits"

    def refuse_in_fits(fit, path, **kwargs):
        if Path(path).parent == fits:
            raise InputError(f"could not save the fit to {path}: Permission denied; check that "
                             "the folder is writable and has space")
        return real_save(fit, path, **kwargs)

    monkeypatch.setattr(io, "save_fit", refuse_in_fits)
    target = tmp_path / "result.json"
    rc, err = run(["evaluate", *GIBBS, "--dataset", str(csv_file), "--save-fit", str(fits),
                   "--json", str(target)], capsys)
    assert rc == 2
    assert "could not save the fit where asked" in err and "instead" in err
    record = json.loads(target.read_text())  # the scores are all there
    assert len(record["folds"]) == 2 and set(record["fit_errors"]) == {"fold1", "fold2"}
    for path in record["fits"].values():
        assert Path(path).parent != fits
        assert load_fit(path).attrs["bayesrec_model"] == "pmf"
        assert str(Path(path).parent) in err


def test_a_json_that_cannot_be_written_goes_elsewhere(csv_file, tmp_path, capsys, monkeypatch):
    target = tmp_path / "result.json"
    real_write = cli.write_json

    def full_disk(path, record):
        if Path(path) == target:
            raise OSError(28, "No space left on device", str(path))
        return real_write(path, record)

    monkeypatch.setattr(cli, "write_json", full_disk)
    rc, err = run(["evaluate", "--model", "biases", "--dataset", str(csv_file), "--kfold", "2",
                   "--json", str(target)], capsys)
    assert rc == 2
    line = next(x for x in err.splitlines() if "cannot write the JSON record" in x)
    assert "No space left on device" in line
    fallback = Path(line.split("were written to ")[1].split(" instead")[0])
    assert json.loads(fallback.read_text())["model"] == "biases"
