"""One contract, every registered model: fit, predict (known and unknown ids), recommend,
save, load, predict again with identical results.

New models join this test by being registered; nothing here names a model.
"""

from __future__ import annotations

import numpy as np
import pytest

from bayesrec.data.simulate import simulate_ratings
from bayesrec.data.splits import holdout
from bayesrec.inference import load_fit, predict, recommend, save_fit
from bayesrec.models import get_spec, list_models
from bayesrec.recommenders import make_recommender

BAYESIAN = [s.name for s in list_models(kind="bayesian")]
BASELINES = [s.name for s in list_models(kind="baseline")]


@pytest.fixture(scope="module")
def split():
    ratings, _ = simulate_ratings(n_users=40, n_items=30, n_ratings=600, seed=21)
    return holdout(ratings, 0.2, seed=1)


#: keep every fit short: the contract is about plumbing, not accuracy
SHORT = {"map": {"maxiter": 200}, "advi": {"n": 1000, "draws": 100},
         "nuts": {"draws": 50, "tune": 50, "chains": 2}}


def _fitted(name, split):
    method = get_spec(name).resolve_method(fast=True)
    rec = make_recommender(name, method, fast=True, random_seed=3, fit_options=SHORT.get(method))
    return rec.fit(split.train)


@pytest.mark.parametrize("name", BASELINES)
def test_baseline_contract(name, split):
    rec = _fitted(name, split)
    pred = rec.predict_ratings(split.test)
    assert np.isfinite(pred["mean"].values).all()
    scale = split.train.scale
    assert ((pred["mean"] >= scale.low) & (pred["mean"] <= scale.high)).all()
    unknown = rec.predict([split.train.users[0], "nobody"], ["nothing", split.train.items[0]])
    assert np.isfinite(unknown["mean"].values).all()
    top = rec.recommend(split.train.users[:3].to_numpy(), n=4)
    assert top.sizes == {"user": 3, "rank": 4}


# The contract is run for every Bayesian model; PMF's run (the fastest) in the README's test
# command, the others' (about a minute each on 2 cores, MPMA's minutes) with -m agreement,
# .ci/run's own step, so that the README's command stays short
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.agreement) if n != "pmf"
                                  else n for n in BAYESIAN])
def test_bayesian_contract(name, split, tmp_path):
    rec = _fitted(name, split)
    users = [split.train.users[0], "new-user", split.train.users[1]]
    items = [split.train.items[0], split.train.items[1], "new-item"]
    pred = rec.predict(users, items, keep_draws=True)  # draws only when asked for
    assert pred["rating"].dims == ("chain", "draw", "pair")
    scale = split.train.scale
    assert ((pred["rating"] >= scale.low) & (pred["rating"] <= scale.high)).all()
    assert "rating" not in rec.predict(users, items)
    assert list(pred["user"].values) == users and list(pred["item"].values) == items
    for var in ("mean", "sd", "quantiles"):
        assert np.isfinite(pred[var].values).all(), var
    # a new user is predicted from the population: wider than a known user
    assert pred["sd"].values[1] >= 0.9 * pred["sd"].values[0]

    top = rec.recommend([split.train.users[2], "new-user"], n=5)
    assert top.sizes == {"user": 2, "rank": 5}
    assert np.isfinite(top["mean"].values).all()

    path = save_fit(rec.fit_, tmp_path / f"{name}.nc")
    loaded = load_fit(path)
    a = predict(rec.fit_, pairs=split.test, random_seed=7, max_draws=50, keep_draws=True)
    b = predict(loaded, pairs=split.test, random_seed=7, max_draws=50, keep_draws=True)
    np.testing.assert_array_equal(a["mean"].values, b["mean"].values)
    np.testing.assert_array_equal(a["rating"].values, b["rating"].values)
    again = recommend(loaded, split.train.users[:2].to_numpy(), n=3)
    first = recommend(rec.fit_, split.train.users[:2].to_numpy(), n=3)
    np.testing.assert_array_equal(again["item"].values, first["item"].values)
