"""What the command line reads: ratings-file flags, and errors in one line with the documented
exit code (2 bad input, 1 a fit failed), never a traceback from inside a dependency."""

from __future__ import annotations

import json
import shutil
import socket
import struct
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import bayesrec.cli as cli
import bayesrec.evaluation.folds as folds
from bayesrec.cli import main
from bayesrec.errors import InputError
from bayesrec.evaluation.datasets import parse_scale
from bayesrec.evaluation.parallel import probe_scheduler


def write_csv(path: Path, header=("user", "item", "rating"), *, low=1, n=60, seed=0) -> Path:
    rng = np.random.default_rng(seed)
    pairs = {(int(u), int(i)) for u, i in zip(rng.integers(0, 15, 3 * n),
                                              rng.integers(0, 12, 3 * n), strict=True)}
    pairs = sorted(pairs)[:n]
    frame = pd.DataFrame(pairs, columns=list(header[:2]))
    frame[header[2]] = rng.integers(low, 6, len(frame))
    frame.to_csv(path, index=False)
    return path


def run(argv, capsys) -> tuple[int, str]:
    rc = main(argv)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return rc, captured.err


def error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("bayesrec")]
    assert len(lines) == 1, err
    return lines[0]


BIASES = ["evaluate", "--model", "biases", "--kfold", "2", "--dataset"]


# ---------------------------------------------------------------------------------------------
# ratings-file flags
# ---------------------------------------------------------------------------------------------
def test_column_names_id_type_and_scale_flags(tmp_path, capsys):
    path = write_csv(tmp_path / "ml.csv", header=("userId", "movieId", "stars"), low=2)
    rc, err = run([*BIASES, str(path)], capsys)
    assert rc == 2
    assert "name them with --user-col, --item-col and --rating-col" in error_line(err)
    assert "name them with user=" not in err  # no Python keywords in the CLI's advice
    target = tmp_path / "out.json"
    rc, err = run([*BIASES, str(path), "--user-col", "userId", "--item-col", "movieId",
                   "--rating-col", "stars", "--id-type", "int", "--json", str(target)], capsys)
    assert rc == 0, err
    assert "scale 2..5 inferred from the data; pass --scale 1-5 if ratings can be 1" in err
    rc, err = run([*BIASES, str(path), "--user-col", "userId", "--item-col", "movieId",
                   "--rating-col", "stars", "--scale", "1-5", "--json", str(target),
                   "--overwrite"], capsys)
    assert rc == 0, err
    assert "inferred" not in err
    for scale in ("1,2,3,4,5", "0.5-5:0.5"):
        rc, err = run([*BIASES, str(path), "--user-col", "userId", "--item-col", "movieId",
                       "--rating-col", "stars", "--scale", scale], capsys)
        assert rc == 0, (scale, err)
    rc, err = run([*BIASES, str(path), "--scale", "5-1"], capsys)
    assert rc == 2 and "argument --scale: a rating scale looks like 1-5" in err


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=30))
def test_any_scale_text_is_a_scale_or_a_clear_error(text):
    try:
        scale = parse_scale(text)
    except InputError as exc:
        assert "a rating scale looks like 1-5" in str(exc)
    else:
        assert scale.low < scale.high and len(scale.levels) <= 10_001


def test_duplicates_encoding_and_empty_files(tmp_path, capsys):
    dup = tmp_path / "dup.csv"
    dup.write_text("user,item,rating\n" + "".join(f"u{k % 7},i{k % 5},{k % 5 + 1}\n"
                                                  for k in range(40)))
    rc, err = run([*BIASES, str(dup)], capsys)
    assert rc == 2
    assert ("pass --duplicates last to keep the last rating or --duplicates mean to average "
            "them") in error_line(err)
    for policy in ("last", "mean"):
        rc, err = run([*BIASES, str(dup), "--duplicates", policy], capsys)
        assert rc == 0, err
    latin = tmp_path / "latin.csv"
    latin.write_bytes(b"user,item,rating\n" + b"".join(
        f"{name},i{k % 4},{k % 5 + 1}\n".encode("latin-1")
        for k, name in enumerate(["Jos\xe9", "Zo\xeb", "Ren\xe9", "Ana", "Bo"] * 4)))
    rc, err = run([*BIASES, str(latin)], capsys)
    assert rc == 2 and "--encoding latin-1" in error_line(err)
    rc, err = run([*BIASES, str(latin), "--encoding", "latin-1"], capsys)
    assert rc == 0, err
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    rc, err = run([*BIASES, str(empty)], capsys)
    assert rc == 2 and "empty.csv is empty" in error_line(err)
    rc, err = run(["evaluate", "--model", "biases", "--dataset", "synthetic", "--user-col", "u"],
                  capsys)
    assert rc == 2 and "apply to a ratings file, not to 'synthetic'" in error_line(err)


# ---------------------------------------------------------------------------------------------
# bad input: exit 2 with the problem and the fix
# ---------------------------------------------------------------------------------------------
def test_negative_seed_is_refused_before_numpy_sees_it(tmp_path, capsys):
    path = write_csv(tmp_path / "r.csv")
    rc, err = run([*BIASES, str(path), "--seed", "-1"], capsys)
    assert rc == 2 and "the seed must be a non-negative integer, got '-1'" in err
    with pytest.raises(InputError, match="seed must be a non-negative integer"):
        cli.load_dataset(str(path), kfold=2, seed=-1)


@pytest.mark.parametrize(("option", "message"), [
    ('priors={"noise_sd":"abc"}', "prior 'noise_sd' of pmf must be a positive number"),
    ("priors=[1,2]", "priors of pmf must be a dict of prior settings by name"),
    ("n_factors=100000", "pass --max-memory none to go ahead anyway"),
])
def test_bad_model_options_are_refused_before_any_fit(tmp_path, capsys, option, message):
    path = write_csv(tmp_path / "r.csv", n=120)
    rc, err = run(["evaluate", "--model", "pmf", "--kfold", "2", "--dataset", str(path),
                   "--option", option, "--max-memory", "100M"], capsys)
    assert rc == 2
    assert message in error_line(err)
    assert "fitting" not in err  # the model was built and checked before the first fold


def test_gibbs_on_identical_ratings_exits_2(tmp_path, capsys):
    path = tmp_path / "same.csv"
    path.write_text("user,item,rating\n" + "".join(f"u{k % 13},i{k // 13},4\n"
                                                   for k in range(130)))
    rc, err = run(["evaluate", "--model", "pmf", "--method", "gibbs", "--fast", "--kfold", "2",
                   "--dataset", str(path)], capsys)
    assert rc == 2 and "every rating equals 4.0; pass --scale" in error_line(err)
    rc, err = run(["evaluate", "--model", "pmf", "--method", "gibbs", "--fast", "--kfold", "2",
                   "--dataset", str(path), "--scale", "1-5"], capsys)
    assert rc == 2
    assert "every training rating equals 4" in error_line(err)


def test_unreadable_folders_exit_2(tmp_path, capsys, monkeypatch):
    """A data home, or the folder of a ratings file, that this user may not read (simulated:
    root reads everything)."""
    home = tmp_path / "home"
    (home / "ml-100k").mkdir(parents=True)
    locked = tmp_path / "locked"
    locked.mkdir()
    write_csv(locked / "r.csv")
    real_stat = Path.stat

    def no_permission(self, *args, **kwargs):  # what the OS answers without read permission
        inside = [folder for folder in (home / "ml-100k", locked)
                  if str(self).startswith(str(folder)) and self != folder]
        if inside:
            raise PermissionError(13, "Permission denied", str(self))
        return real_stat(self, *args, **kwargs)

    monkeypatch.setattr(Path, "stat", no_permission)
    rc, err = run(["evaluate", "--model", "biases", "--dataset", "ml-100k", "--data-home",
                   str(home)], capsys)
    assert rc == 2
    assert "Permission denied" in error_line(err) and "readable" in error_line(err)
    rc, err = run([*BIASES, str(locked / "r.csv")], capsys)
    assert rc == 2
    assert "Permission denied" in error_line(err) and "readable" in error_line(err)


@pytest.mark.movielens
def test_a_malformed_movielens_file_exits_2_with_cli_advice(movielens_home, tmp_path, capsys):
    source = movielens_home / "ml-100k"
    if not source.is_dir():
        pytest.skip("needs the extracted ml-100k/ folder")
    home = tmp_path / "home"
    shutil.copytree(source, home / "ml-100k")
    (home / "ml-100k" / "u.user").write_text("1|24|M|technician\n2|x|F\n")
    rc, err = run(["evaluate", "--model", "biases", "--dataset", "ml-100k", "--folds", "u1",
                   "--data-home", str(home)], capsys)
    assert rc == 2
    line = error_line(err)
    assert "u.user" in line and "download a fresh copy" in line
    assert "download=True" not in line and "verify=False" not in line


# ---------------------------------------------------------------------------------------------
# --option values: any of them ends in one line with exit 0, 1 or 2
# ---------------------------------------------------------------------------------------------
_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-1000, 1000)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                 max_size=3),
    max_leaves=6)
_VALUE_TEXT = st.one_of(_JSON_VALUES.map(json.dumps), st.text(max_size=20),
                        st.sampled_from(["1e400", "NaN", "-Infinity", "[", "{}", "1" * 400]))


@pytest.fixture(scope="module")
def fuzz_csv(tmp_path_factory) -> Path:
    return write_csv(tmp_path_factory.mktemp("fuzz") / "r.csv", n=40)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(["reg_user", "reg_item", "n_iter", "lambda", "preset"]),
       value=_VALUE_TEXT)
@example(key="reg_user", value="1" * 400)  # float() of it: OverflowError inside the baseline
@example(key="n_iter", value="[[[]]]")
@example(key="n_iter", value="1" * 400)  # once ran the sweeps for ever
def test_any_option_value_ends_in_one_line(fuzz_csv, capsys, key, value):
    rc = main([*BIASES, str(fuzz_csv), "--option", f"{key}={value}"])
    err = capsys.readouterr().err
    assert rc in (0, 1, 2)
    assert "Traceback" not in err
    problems = [line for line in err.splitlines() if line.startswith("bayesrec")]
    assert len(problems) == (0 if rc == 0 else 1), err


# ---------------------------------------------------------------------------------------------
# exit codes of the unexpected
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("error", "rc", "message"), [
    (RuntimeError("boom"), 1, "bayesrec: the fit failed: unexpected RuntimeError: boom "
                              "(run `bayesrec --traceback ...`"),
    (MemoryError(), 1, "bayesrec: the fit failed: out of memory"),
    (KeyboardInterrupt(), 130, "bayesrec: interrupted"),
    (PermissionError(13, "Permission denied", "/x/y"), 2, "bayesrec: error: /x/y: Permission "
                                                         "denied; check the path"),
])
def test_unexpected_errors_are_one_line(tmp_path, capsys, monkeypatch, error, rc, message):
    path = write_csv(tmp_path / "r.csv")

    def failing(*args, **kwargs):
        raise error

    monkeypatch.setattr(cli, "evaluate", failing)
    got, err = run([*BIASES, str(path)], capsys)
    assert got == rc and message in err
    if not isinstance(error, KeyboardInterrupt):
        with pytest.raises(type(error)):
            main(["--traceback", *BIASES, str(path)])


# ---------------------------------------------------------------------------------------------
# --dask at something that is not a dask scheduler
# ---------------------------------------------------------------------------------------------
def _serve(greeting: bytes) -> tuple[socket.socket, int]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def answer():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            conn.sendall(greeting)
            conn.close()

    threading.Thread(target=answer, daemon=True).start()
    return server, server.getsockname()[1]


def test_dask_at_a_service_with_a_banner_exits_2(capsys):
    server, port = _serve(b"SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13\r\n")
    try:
        rc, err = run(["evaluate", "--model", "biases", "--dataset", "synthetic", "--kfold", "2",
                       "--dask", f"tcp://127.0.0.1:{port}"], capsys)
    finally:
        server.close()
    assert rc == 2
    assert "is not a dask scheduler: it greeted with b'SSH-2.0-'" in error_line(err)
    assert "fitting" not in err


def test_the_probe_accepts_a_dask_greeting_and_names_a_closed_port():
    server, port = _serve(struct.pack("Q", 310) + b"\x00" * 310)
    try:
        probe_scheduler(f"tcp://127.0.0.1:{port}")
    finally:
        server.close()
    unused = socket.socket()
    unused.bind(("127.0.0.1", 0))
    port = unused.getsockname()[1]
    unused.close()  # bound, never listening: connections are refused
    with pytest.raises(InputError, match="cannot reach the dask scheduler at tcp://127.0.0.1:"):
        probe_scheduler(f"tcp://127.0.0.1:{port}")
    with pytest.raises(InputError, match="needs a port"):
        probe_scheduler("tcp://somewhere")


def test_dask_help_says_to_trust_the_scheduler_like_code():
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    text = " ".join(sub.choices["evaluate"].format_help().split())
    assert "Trust the scheduler like code" in text and "cloudpickle" in text
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert "Trust a\n  scheduler address like code" in readme


# ---------------------------------------------------------------------------------------------
# progress
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("flags", "expected"), [([], None), (["--progress"], True),
                                                 (["--no-progress"], False)])
def test_progress_flag_reaches_the_fits(tmp_path, capsys, monkeypatch, flags, expected):
    seen = []
    real = folds.make_recommender

    def spy(*args, **kwargs):
        seen.append(kwargs.get("progressbar"))
        return real(*args, **kwargs)

    monkeypatch.setattr(folds, "make_recommender", spy)
    path = write_csv(tmp_path / "r.csv")
    rc, err = run([*BIASES, str(path), *flags], capsys)
    assert rc == 0, err
    assert seen[-2:] == [expected, expected]  # the two folds' fits
    assert "[fold1] fitting biases/fit" in err and "[1/2 done, about" in err
