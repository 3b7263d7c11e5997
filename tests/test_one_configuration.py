"""One model, one configuration: every entry point makes the same fit.

For every registered model and every method it supports (fast settings), the
Python API path (``build_model`` + ``fit`` + ``predict`` + ``score``, as the README
shows it) and the CLI path (``bayesrec evaluate --fast --seed``) give identical
metrics; so does ``make_recommender``.  The whole matrix is long (every method of
every model), so it is marked ``agreement`` and run by ``.ci/run`` as its own step;
a few cases run in the default suite.
"""

from __future__ import annotations

import json

import pytest

from bayesrec.cli import main
from bayesrec.data import Ratings
from bayesrec.data.simulate import simulate_ratings
from bayesrec.data.splits import kfold
from bayesrec.inference import fit, predict
from bayesrec.metrics import score
from bayesrec.models import build_model, get_spec, list_models
from bayesrec.recommenders import make_recommender

SEED = 3
#: compared exactly: the same computation, in the same process or another
METRICS = ("rmse", "mae", "accuracy", "coverage_50", "coverage_90")
QUICK = {("pmf", "map"), ("mmsbm", "map"), ("biases", "fit")}  # the rest: -m agreement


def _cases():
    for spec in list_models():
        for method in spec.methods:
            marks = () if (spec.name, method) in QUICK else (pytest.mark.agreement,)
            yield pytest.param(spec.name, method, marks=marks, id=f"{spec.name}-{method}")


@pytest.fixture(scope="module")
def ratings_csv(tmp_path_factory):
    ratings, _ = simulate_ratings(n_users=40, n_items=30, n_ratings=700, seed=11)
    path = tmp_path_factory.mktemp("data") / "ratings.csv"
    ratings.to_dataframe().to_csv(path, index=False)
    return path


def _api_scores(name: str, method: str, train: Ratings, test: Ratings) -> dict:
    """The README's path: build the model with the fast options, fit, predict, score."""
    spec = get_spec(name)
    if spec.kind == "baseline":
        seeded = {"random_seed": SEED} if "random_seed" in spec.options() else {}
        recommender = spec.build(**spec.fast.options, **seeded).fit(train)
        return score(recommender.predict_ratings(test), test)
    model = build_model(name, train, **spec.fast.options)
    posterior = fit(model, method, random_seed=SEED, **spec.fast.fit.get(method, {}))
    return score(predict(posterior, pairs=test), test)


@pytest.mark.parametrize(("name", "method"), _cases())
def test_api_cli_and_recommender_give_the_same_fit(name, method, ratings_csv, tmp_path):
    record_path = tmp_path / "record.json"
    assert main(["evaluate", "--model", name, "--method", method, "--dataset",
                 str(ratings_csv), "--kfold", "2", "--fast", "--seed", str(SEED), "--json",
                 str(record_path)]) == 0
    record = json.loads(record_path.read_text())
    first = record["folds"][0]

    split = kfold(Ratings.from_csv(ratings_csv), k=2, seed=SEED)[0]
    api = _api_scores(name, method, split.train, split.test)
    for metric in METRICS:
        assert api[metric] == first[metric], (metric, api[metric], first[metric])
    if (name, method) not in QUICK:
        return
    # make_recommender (what the CLI uses inside) records the settings every path used
    recommender = make_recommender(name, method, fast=True, random_seed=SEED).fit(split.train)
    via_recommender = score(recommender.predict_ratings(split.test), split.test)
    for metric in METRICS:
        assert via_recommender[metric] == first[metric], metric
    if get_spec(name).kind == "bayesian":
        assert json.loads(recommender.fit_.attrs["method_options"]) == record["fit_options"]
