"""evaluate() and load_dataset(): scores by hand, the result's tables and JSON, datasets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bayesrec import Ratings
from bayesrec.data.splits import Split
from bayesrec.errors import InputError
from bayesrec.evaluation import FOLD_COLUMNS, evaluate, load_dataset, read_ratings_file


@pytest.fixture
def split() -> Split:
    """Train on users a, b; test has a cold user ``d`` and a cold item ``w``."""
    ratings = Ratings.from_arrays(
        ["a", "a", "b", "b", "a", "d", "b"],
        ["x", "y", "x", "y", "z", "x", "w"],
        [5, 3, 4, 2, 4, 1, 3],
        scale="1-5",
    )
    in_test = np.array([False, False, False, False, True, True, True])
    return Split(ratings.subset(~in_test), ratings.subset(in_test), name="f1")


def test_evaluate_global_mean_by_hand(split):
    messages = []
    result = evaluate("global_mean", [split, split], dataset="tiny", progress=messages.append)
    assert list(result.folds.columns) == list(FOLD_COLUMNS)
    assert len(result.folds) == 2
    fold = result.folds.iloc[0]
    # train mean 3.5; test ratings 4, 1, 3
    assert fold["rmse"] == pytest.approx(np.sqrt((0.25 + 6.25 + 0.25) / 3))
    assert fold["mae"] == pytest.approx((0.5 + 2.5 + 0.5) / 3)
    assert fold["accuracy"] == pytest.approx(1 / 3)  # the mode is 3 (a tie snaps down)
    assert (fold["fold"], fold["n_train"], fold["n_test"]) == ("f1", 4, 3)
    assert (fold["n_cold_users"], fold["n_cold_items"]) == (1, 2)  # d; z and w
    assert fold["fit_seconds"] >= 0 and fold["predict_seconds"] >= 0
    assert (result.model, result.method, result.dataset) == ("global_mean", "fit", "tiny")
    assert messages[0] == "[f1] fitting global_mean/fit on 4 ratings ..."
    assert messages[1].startswith("[f1] rmse ")


def test_result_summary_table_json(split):
    result = evaluate("biases", [split, (split.train, split.test)], seed=3,
                      options={"n_iter": 2})
    summary = result.summary()
    assert summary.loc["rmse", "mean"] == pytest.approx(result.folds["rmse"].mean())
    assert summary.loc["rmse", "sd"] == pytest.approx(0.0)  # the same fold twice
    table = result.table()
    assert "mean ± sd" in table and "f1" in table and "fold2" in table
    record = result.to_json()
    text = json.dumps(record, allow_nan=False)  # plain JSON
    assert json.loads(text) == record
    for key in ("model", "method", "dataset", "seed", "options", "mean", "sd", "versions",
                "created_at", "folds"):
        assert key in record
    assert record["options"] == {"reg_user": 15.0, "reg_item": 10.0, "n_iter": 2}
    assert record["seed"] == 3
    assert set(record["versions"]) >= {"python", "numpy", "pymc", "pytensor", "arviz",
                                       "bayesrec"}
    fold = record["folds"][0]
    for key in ("rmse", "mae", "accuracy", "coverage_90", "fit_seconds", "predict_seconds",
                "n_train", "n_test", "n_cold_users", "n_cold_items"):
        assert key in fold
    single = evaluate("global_mean", split)
    assert single.to_json()["sd"]["rmse"] is None  # one fold: no sd, not NaN


def test_evaluate_validates(split):
    with pytest.raises(InputError, match="unknown model 'nope'; registered models are: .*biases"):
        evaluate("nope", [split])
    with pytest.raises(InputError, match="unknown method 'nuts' for model 'biases'"):
        evaluate("biases", [split], method="nuts")
    with pytest.raises(InputError, match="no splits"):
        evaluate("biases", [])
    with pytest.raises(InputError, match="split 0 is a str"):
        evaluate("biases", ["abc"])


def test_evaluate_uniform_seed_reproducible(split):
    first = evaluate("uniform", [split], seed=5).folds["rmse"]
    again = evaluate("uniform", [split], seed=5).folds["rmse"]
    assert first.equals(again)


def _write_csv(path: Path, n_users=12, n_items=8, seed=0) -> Path:
    rng = np.random.default_rng(seed)
    lines = ["user,item,rating"]
    for u in range(n_users):
        for i in rng.choice(n_items, size=5, replace=False):
            lines.append(f"u{u},i{i},{rng.integers(1, 6)}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_load_dataset_csv_and_errors(tmp_path):
    path = _write_csv(tmp_path / "r.csv")
    description, splits = load_dataset(str(path), kfold=3, seed=1)
    assert description == "r.csv (3-fold, seed 1)"
    assert len(splits) == 3 and sum(len(s.test) for s in splits) == 60
    _, default = load_dataset(str(path))
    assert len(default) == 5
    with pytest.raises(InputError, match="folds .* apply only to ml-100k"):
        load_dataset(str(path), folds=["u1"])
    with pytest.raises(InputError, match="no file at"):
        load_dataset(str(tmp_path / "missing.csv"))
    with pytest.raises(InputError, match="kfold must be an integer >= 2"):
        load_dataset(str(path), kfold=1)
    with pytest.raises(InputError, match="either folds"):
        load_dataset("ml-100k", folds=["u1"], kfold=3)


def test_read_headerless_movielens_layout(tmp_path):
    path = tmp_path / "u.data"
    path.write_text("1\t10\t5\t881250949\n2\t10\t3\t891717742\n1\t20\t1\t878887116\n")
    ratings = read_ratings_file(path)
    assert len(ratings) == 3 and ratings.timestamp is not None
    assert list(ratings.rating) == [5, 3, 1]


@pytest.mark.movielens
def test_baseline_rmse_on_movielens_folds(movielens_home):
    # movielens_home (conftest): $BAYESREC_DATA or /work/shared/data; skips when absent
    _, splits = load_dataset("ml-100k", data_home=movielens_home)
    assert [s.name for s in splits] == ["u1", "u2", "u3", "u4", "u5"]
    expected = {"global_mean": 1.126, "mean_of_means": 1.018, "biases": 0.946}
    for model, target in expected.items():
        result = evaluate(model, splits)
        assert result.summary().loc["rmse", "mean"] == pytest.approx(target, abs=0.005), model


# ---------------------------------------------------------------------------------------------
# checked before any fit; progress
# ---------------------------------------------------------------------------------------------
def test_evaluate_checks_model_options_and_memory_before_the_first_fold(split):
    from bayesrec.data.simulate import simulate_ratings
    from bayesrec.data.splits import kfold

    ratings, _ = simulate_ratings(30, 20, 240, seed=0)
    splits = kfold(ratings, k=2, seed=0)
    messages = []
    with pytest.raises(InputError, match="prior 'noise_sd' of pmf must be a positive number"):
        evaluate("pmf", splits, options={"priors": {"noise_sd": "abc"}},
                 progress=messages.append)
    with pytest.raises(InputError, match=r"would need at least .* more than the 1.0 MB allowed"):
        evaluate("pmf", splits, method="gibbs", max_memory="1M", progress=messages.append)
    assert messages == []  # refused before the first fold started
    with pytest.raises(InputError, match="seed must be a non-negative integer"):
        load_dataset("synthetic", kfold=2, seed=-1)


def test_evaluate_passes_progressbar_and_max_memory_to_every_fit(split, monkeypatch):
    import bayesrec.evaluation.folds as folds

    seen = []
    real = folds.make_recommender

    def spy(*args, **kwargs):
        seen.append((kwargs.get("progressbar"), kwargs.get("max_memory")))
        return real(*args, **kwargs)

    monkeypatch.setattr(folds, "make_recommender", spy)
    lines = []
    evaluate("biases", [split, split], progressbar=False, max_memory="3G",
             progress=lines.append)
    assert seen[-2:] == [(False, "3G"), (False, "3G")]
    assert "[1/2 done, about" in lines[1]
    assert lines[-1].endswith("[2/2 done]")
