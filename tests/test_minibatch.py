"""Minibatch ADVI: the generic model rewrite, and fits that match full-batch ADVI.

The rewrite knows nothing about a model but the factory contract (per-rating data on
the ``obs`` dim), so it is checked on every registered Bayesian model: the same free
variables, and a log-density whose average over minibatches is the full one.
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytest
from pymc.initial_point import make_initial_point_fn
from pymc.variational.minibatch_rv import MinibatchRandomVariable

from bayesrec import InputError
from bayesrec.data.simulate import simulate_ratings
from bayesrec.data.splits import holdout
from bayesrec.inference import fit, predict
from bayesrec.inference.minibatch import minibatch_model
from bayesrec.metrics import rmse
from bayesrec.models import build_model, get_spec, list_models

BAYESIAN = [s.name for s in list_models(kind="bayesian")]


@pytest.fixture(scope="module")
def small():
    return simulate_ratings(n_users=30, n_items=20, n_ratings=300, seed=4)[0]


@pytest.mark.filterwarnings("ignore:PyTensor could not link to a BLAS")  # LKJ initial point
@pytest.mark.parametrize("name", BAYESIAN)
def test_minibatch_logp_is_the_full_logp_on_average(name, small):
    model = build_model(name, small, **get_spec(name).fast.options)
    batched = minibatch_model(model, 40)
    free = {rv.name: batched.named_vars_to_dims.get(rv.name) for rv in batched.free_RVs}
    assert free == {rv.name: model.named_vars_to_dims.get(rv.name) for rv in model.free_RVs}
    assert all(isinstance(rv.owner.op, MinibatchRandomVariable) for rv in batched.observed_RVs)
    assert "user_idx" not in batched.named_vars  # inside the minibatch now
    point = make_initial_point_fn(model=model, jitter_rvs=set(model.free_RVs))(1)
    full = float(model.compile_logp()(point))
    logp = batched.compile_fn(batched.logp(), random_seed=0)  # seeded minibatches
    draws = np.array([logp(point) for _ in range(1500)])
    assert draws.std() > 0  # the batches do change
    assert abs(draws.mean() - full) < 5 * draws.std() / np.sqrt(len(draws))


def test_minibatch_model_refuses_what_it_cannot_scale(small):
    with pm.Model(coords={"obs": range(5)}) as per_rating_latent:
        z = pm.Normal("z", dims="obs")
        pm.Normal("y", z, 1, observed=np.zeros(5), dims="obs")
    with pytest.raises(InputError, match="free variable on the 'obs' dim"):
        minibatch_model(per_rating_latent, 2)
    with pm.Model() as no_obs:
        pm.Normal("y", 0, 1, observed=np.zeros(5))
    with pytest.raises(InputError, match="needs a model with a 'obs' dim"):
        minibatch_model(no_obs, 2)


@pytest.fixture(scope="module")
def simulated():
    ratings, _truth = simulate_ratings(n_users=200, n_items=120, n_ratings=10000, n_factors=2,
                                       noise_sd=0.5, scale=None, factor_sd=0.8, seed=11)
    split = holdout(ratings, 0.2, seed=3)
    return split.train, split.test, build_model("pmf", split.train, n_factors=2)


@pytest.mark.agreement
def test_minibatch_advi_matches_full_batch_advi(simulated):
    train, test, model = simulated

    def held_out_rmse(dt):
        return rmse(test.rating, predict(dt, pairs=test, random_seed=0, max_draws=200)["mean"])

    full = fit(model, "advi", random_seed=1, n=5000, draws=200, learning_rate=0.02)
    batched = fit(model, "minibatch_advi", random_seed=1, batch_size=400, draws=200)
    report = batched["advi"].attrs
    assert report["method"] == "minibatch_advi" and report["stop_reason"] == "converged"
    assert report["total_size"] == len(train) and report["batch_size"] == 400
    assert len(report["lr_decayed_at"]) == 3  # the default max_decays, then the stop
    assert report["final_learning_rate"] == pytest.approx(0.02 * 0.5**3)
    assert report["epochs"] == pytest.approx(report["n_iterations"] * 400 / len(train))
    assert abs(held_out_rmse(batched) - held_out_rmse(full)) < 0.02
    assert held_out_rmse(batched) < 0.6  # noise sd 0.5; predicting the mean gives ~1.1
    # the same groups and dims as any other fit
    assert set(batched.children) == set(full.children)
    post, ref = batched["posterior"].to_dataset(), full["posterior"].to_dataset()
    assert {v: post[v].dims for v in post.data_vars} == {v: ref[v].dims for v in ref.data_vars}


def test_minibatch_advi_seed_time_limit_and_options(simulated):
    _, _, model = simulated
    a = fit(model, "minibatch_advi", random_seed=5, batch_size=100, n=300, draws=20)
    b = fit(model, "minibatch_advi", random_seed=5, batch_size=100, n=300, draws=20)
    np.testing.assert_array_equal(a["advi"]["loss"].values, b["advi"]["loss"].values)
    np.testing.assert_array_equal(a["posterior"]["user_factors"].values,
                                  b["posterior"]["user_factors"].values)
    assert a["advi"].attrs["stop_reason"] == "max_iterations"
    timed = fit(model, "minibatch_advi", random_seed=5, batch_size=100, n=10**7, draws=20,
                max_seconds=1.0, max_decays=10**6)  # only the clock can stop it
    assert timed["advi"].attrs["stop_reason"] == "time_limit"
    assert timed["advi"].attrs["n_iterations"] < 10**7
    for option, message in (({"batch_size": 0}, "batch_size must be a positive integer"),
                            ({"lr_decay": 2}, r"lr_decay must be a number in \(0, 1\], got 2"),
                            ({"max_seconds": -1}, "max_seconds must be a positive number"),
                            ({"samples": 5}, r"unknown option\(s\) \['samples'\]")):
        with pytest.raises(InputError, match=message):
            fit(model, "minibatch_advi", **option)
