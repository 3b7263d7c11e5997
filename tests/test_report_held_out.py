"""A report scores held-out ratings only: test pairs the fit was trained on are refused
(or, when allowed, counted), in the Python API and in ``bayesrec report``."""

from __future__ import annotations

import pytest

from bayesrec.cli import main
from bayesrec.data.simulate import simulate_ratings
from bayesrec.data.splits import kfold
from bayesrec.diagnostics.report import training_pairs, write_report
from bayesrec.errors import InputError
from bayesrec.evaluation import read_ratings_file
from bayesrec.inference import fit, save_fit
from bayesrec.models import build_model


@pytest.fixture(scope="module")
def folds_and_fit(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    ratings, _ = simulate_ratings(30, 20, 300, seed=0)
    path = folder / "ratings.csv"
    ratings.to_dataframe().to_csv(path, index=False)
    splits = kfold(read_ratings_file(path), k=2, seed=0)
    trained = fit(build_model("pmf", splits[0].train, n_factors=2), "gibbs", draws=30, tune=10,
                  chains=1, random_seed=0, progressbar=False)
    return path, splits, trained, save_fit(trained, folder / "fit.nc")


def test_training_pairs_are_found_by_id(folds_and_fit):
    _path, splits, trained, _ = folds_and_fit
    assert not training_pairs(trained, splits[0].test).any()  # its own held-out fold
    other = training_pairs(trained, splits[1].test)  # fold2's test is fold1's training data
    assert other.all() and len(other) == len(splits[1].test)


def test_the_report_refuses_another_folds_test_set(folds_and_fit, tmp_path):
    _path, splits, trained, _ = folds_and_fit
    with pytest.raises(InputError, match=r"(\d+) of the \1 test ratings \(100%\) are \(user, "
                       r"item\) pairs that the fit was trained on.*allow_train_overlap=True"):
        write_report(trained, tmp_path / "refused", test=splits[1].test)
    assert not (tmp_path / "refused").exists()  # refused before anything was written
    with pytest.warns(UserWarning, match="are training pairs of the fit"):
        path = write_report(trained, tmp_path / "allowed", test=splits[1].test, max_draws=30,
                            n_pairs=5, allow_train_overlap=True)
    n = len(splits[1].test)
    assert f"**{n} of the {n} test ratings are training pairs of the fit**" in path.read_text()


def test_bayesrec_report_on_another_split_exits_2(folds_and_fit, tmp_path, capsys):
    path, _splits, _trained, fit_file = folds_and_fit
    rc = main(["report", str(fit_file), "--test", f"{path}:fold2", "--kfold", "2", "--out",
               str(tmp_path / "rep")])
    err = capsys.readouterr().err
    assert rc == 2
    assert "pairs that the fit was trained on" in err and "--allow-train-overlap" in err
    assert "Traceback" not in err
