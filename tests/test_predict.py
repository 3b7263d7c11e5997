"""Predictions: draws on the scale and summaries that are theirs, draws kept only when asked,
the draws of PyMC's own posterior predictive, and memory bounded by a block of pairs."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pandas as pd
import pymc as pm
import pytest
import xarray as xr

from bayesrec import Ratings
from bayesrec.data.simulate import simulate_ratings
from bayesrec.data.splits import holdout
from bayesrec.diagnostics import calibration_table, interval_coverage
from bayesrec.inference import fit, predict
from bayesrec.inference import forward as forward_module
from bayesrec.inference.numerics import reproducible
from bayesrec.inference.record import FitRecord, swapped_pairs
from bayesrec.metrics import LEVELS
from bayesrec.models import build_model
from bayesrec.predictions import QUANTILES, censored_normal_sd, draw_quantiles
from bayesrec.recommenders import make_recommender


@pytest.fixture(scope="module")
def keen():
    """1..5 ratings where ten users rate everything 5: their expected ratings run above 5."""
    ratings, _ = simulate_ratings(n_users=50, n_items=30, n_ratings=1000, seed=8)
    df = ratings.to_dataframe()[["user", "item", "rating"]]
    df.loc[df["user"].isin(ratings.users[40:]), "rating"] = 5.0
    full = Ratings.from_arrays(df["user"].to_numpy(), df["item"].to_numpy(),
                               df["rating"].to_numpy(), scale="1-5")
    return holdout(full, 0.25, seed=1)


@pytest.fixture(scope="module")
def pmf_map(keen):
    return fit(build_model("pmf", keen.train, n_factors=2), "map", random_seed=2,
               progressbar=False)


@pytest.fixture(scope="module")
def bpmf_gibbs(keen):
    return fit(build_model("bpmf", keen.train, n_factors=2), "gibbs", draws=40, tune=20,
               random_seed=2, progressbar=False)


def _keen_pairs(split):
    """Every (keen user, item) pair."""
    users = split.train.users[40:].to_numpy()
    items = split.train.items.to_numpy()
    return np.repeat(users, len(items)), np.tile(items, len(users))


@pytest.mark.parametrize("which", ["pmf_map", "bpmf_gibbs"])
def test_rating_draws_stay_on_the_scale_and_the_summaries_are_theirs(which, keen, request):
    posterior = request.getfixturevalue(which)
    users, items = _keen_pairs(keen)
    pred = predict(posterior, users, items, keep_draws=True)
    draws = pred["rating"].transpose("chain", "draw", "pair").values.reshape(-1, len(users))
    mu = pred["mu"].transpose("chain", "draw", "pair").values.reshape(-1, len(users))
    assert mu.max() > 5.2  # the model's latent rating leaves the scale ...
    assert draws.min() >= 1.0 and draws.max() <= 5.0  # ... its predictive draws do not
    assert (draws == 5.0).mean() > 0.2  # the mass above the top sits on it (censored)
    np.testing.assert_array_equal(pred["quantiles"].values, draw_quantiles(draws, QUANTILES).T)
    np.testing.assert_array_equal(pred["median"].values, pred["quantiles"].sel(quantile=0.5))
    np.testing.assert_allclose(pred["sd"].values, draws.std(0, ddof=1))
    # the mean (RMSE) is the posterior mean of the expected rating, clipped, as before
    np.testing.assert_array_equal(pred["expected"].values, mu.mean(0))
    np.testing.assert_array_equal(pred["mean"].values, np.clip(mu.mean(0), 1, 5))
    if which == "pmf_map":  # (BPMF shrinks the keen users' means to just under 5)
        assert pred["expected"].max() > 5


def test_coverage_reads_the_same_draws_as_the_quantiles(keen, bpmf_gibbs):
    pred = predict(bpmf_gibbs, pairs=keen.test, keep_draws=True)
    from_quantiles = interval_coverage(pred, keen.test)
    from_draws = calibration_table(pred, keen.test, levels=LEVELS)
    np.testing.assert_array_equal(from_quantiles["coverage"].values,
                                  from_draws["coverage"].values)


def test_continuous_scales_clip_draws_too():
    ratings, _ = simulate_ratings(n_users=30, n_items=20, n_ratings=400, noise_sd=1.5,
                                  scale=None, seed=4)
    assert not ratings.scale.is_discrete
    posterior = fit(build_model("pmf", ratings, n_factors=2), "map", random_seed=0,
                    progressbar=False)
    pred = predict(posterior, pairs=ratings, keep_draws=True)
    low, high = ratings.scale.low, ratings.scale.high
    draws = pred["rating"].values
    assert draws.min() >= low and draws.max() <= high
    assert ((draws == low) | (draws == high)).any()  # the noise carried some past an end


def test_draws_are_kept_only_when_asked(keen, pmf_map):
    pred = predict(pmf_map, pairs=keen.test)
    assert "rating" not in pred and "mu" not in pred
    assert {"mean", "expected", "median", "mode", "sd", "quantiles"} <= set(pred.data_vars)
    rec = make_recommender("pmf", "map", options={"n_factors": 2}, random_seed=2,
                           progressbar=False).fit(keen.train)
    assert "rating" not in rec.predict_ratings(keen.test)  # what evaluation scores


@pytest.mark.parametrize(("which", "max_draws"), [("pmf_map", 1000), ("bpmf_gibbs", 30)])
def test_one_block_gives_the_draws_of_pymc_posterior_predictive(which, max_draws, keen,
                                                               request):
    """Same seed, same draws as ``pm.sample_posterior_predictive`` on the thinned (or, for a
    point fit, repeated) posterior, only clipped to the scale."""
    posterior = request.getfixturevalue(which)
    record = FitRecord(posterior)
    test = keen.test
    pred = predict(posterior, pairs=test, keep_draws=True, random_seed=11, max_draws=max_draws)
    model = record.model()
    codes = (record.ratings.user_codes_of(test.user_ids), record.ratings.item_codes_of(
        test.item_ids))
    with swapped_pairs(model, *codes), reproducible():
        pp = pm.sample_posterior_predictive(
            xr.DataTree.from_dict({"posterior": record.posterior(max_draws, 200)}),
            model=model, var_names=["mu", "rating"], random_seed=11, progressbar=False,
            predictions=True)["predictions"].to_dataset()
    np.testing.assert_array_equal(pred["mu"].values, pp["mu"].values)
    np.testing.assert_array_equal(pred["rating"].values, np.clip(pp["rating"].values, 1, 5))


def test_memory_is_bounded_by_the_block_not_by_the_pairs(keen, pmf_map):
    """60,000 pairs x 200 plug-in draws would be 96 MB per array of draws; blocks of 1,500
    pairs keep the working memory to a few MB, and the means do not depend on the blocks."""
    users, items = _keen_pairs(keen)
    reps = -(-60_000 // len(users))
    users, items = np.tile(users, reps)[:60_000], np.tile(items, reps)[:60_000]
    predict(pmf_map, users[:10], items[:10])  # compile outside the measurement
    tracemalloc.start()
    try:
        small = predict(pmf_map, users, items, block_size=1500)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    all_draws = 60_000 * 200 * 8
    # the prediction itself holds ~16 numbers per pair (7.7 MB) and the level
    # probabilities 5 more (2.4 MB); the rest is one block's working memory
    assert peak < 30e6, peak / 1e6
    assert peak < all_draws / 3
    default = predict(pmf_map, users, items)
    np.testing.assert_array_equal(small["mean"].values, default["mean"].values)
    np.testing.assert_array_equal(small["expected"].values, default["expected"].values)
    # other blocks, other random numbers: the same predictive up to Monte Carlo error
    assert np.abs(small["median"].values - default["median"].values).mean() < 0.1


def test_repeated_predictions_compile_once_and_agree(keen, bpmf_gibbs):
    model = FitRecord(bpmf_gibbs).model()
    first = predict(bpmf_gibbs, pairs=keen.test)
    compiled = dict(forward_module._CACHE[model])
    second = predict(bpmf_gibbs, pairs=keen.test)
    assert forward_module._CACHE[model] == compiled  # nothing compiled the second time
    xr.testing.assert_identical(first, second)
    other = predict(bpmf_gibbs, pairs=keen.test, random_seed=5)
    assert not np.array_equal(other["quantiles"].values, first["quantiles"].values)


@pytest.mark.parametrize(("mean", "sd"), [(3.0, 0.5), (4.8, 1.2), (0.5, 1.0), (6.0, 0.3),
                                          (2.0, 0.0)])
def test_censored_normal_sd_matches_simulation(mean, sd):
    draws = np.clip(np.random.default_rng(1).normal(mean, sd, 1_000_000), 1, 5)
    assert censored_normal_sd(np.array([mean]), sd, 1, 5)[0] == pytest.approx(
        draws.std(), abs=2e-3)


def test_baselines_predict_the_clipped_normal(keen):
    rec = make_recommender("biases").fit(keen.train)
    users, items = _keen_pairs(keen)
    pred = rec.predict(users, items)
    assert pred["expected"].max() > 5 and pred["mean"].max() == 5.0
    np.testing.assert_allclose(
        pred["sd"].values, censored_normal_sd(pred["expected"].values, rec.residual_sd_, 1, 5))
    assert pd.Series(pred["quantiles"].values.ravel()).between(1, 5).all()
