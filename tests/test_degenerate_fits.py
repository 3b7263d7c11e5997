"""Degenerate fits are said in plain words, and NaN never leaves a prediction.

Found before: BPMF MAP on a small simulated set scored worse than the global mean with no
flag; PMF MAP on one user's identical ratings gave predictive sd 0 (zero-width intervals);
``biases`` with zero regularisation returned NaN for items without ratings.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr

from bayesrec import FitError, FitWarning, Ratings
from bayesrec.data.simulate import simulate_ratings
from bayesrec.data.splits import holdout
from bayesrec.diagnostics import convergence_summary
from bayesrec.inference import fit, predict
from bayesrec.inference.checks import degenerate_message, training_check
from bayesrec.models import build_model
from bayesrec.recommenders import make_recommender


@pytest.mark.agreement
def test_a_fit_worse_than_the_global_mean_on_its_training_data_is_flagged():
    ratings, _ = simulate_ratings(200, 150, 6000, seed=0)
    train = holdout(ratings, 0.2, seed=0).train
    with pytest.warns(FitWarning, match="worse than predicting the global mean"):
        f = fit(build_model("bpmf", train), "map", random_seed=0)
    assert f.attrs["training_rmse"] > f.attrs["training_rmse_global_mean"]
    flags = convergence_summary(f).flags
    assert any("worse than predicting the global mean" in flag for flag in flags), flags


def test_a_good_fit_is_not_flagged():
    ratings, _ = simulate_ratings(60, 40, 1500, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FitWarning)
        f = fit(build_model("pmf", ratings, n_factors=2), "map", random_seed=0)
    assert f.attrs["training_rmse"] < f.attrs["training_rmse_global_mean"]
    assert degenerate_message(dict(f.attrs)) is None
    model = build_model("pmf", ratings, n_factors=2)
    assert training_check(f, model) == pytest.approx(
        {k: f.attrs[k] for k in ("training_rmse", "training_rmse_global_mean")})


def test_zero_predictive_spread_is_said():
    one_user = Ratings.from_arrays([1] * 5, [1, 2, 3, 4, 5], [4] * 5, scale="1-5")
    rec = make_recommender("biases").fit(one_user)
    with pytest.warns(FitWarning, match="no spread"):
        rec.predict([1, 1], [1, 2])
    f = fit(build_model("pmf", one_user, n_factors=2), "map", random_seed=0)
    with pytest.warns(FitWarning, match="no spread"):
        predict(f, users=[1, 1], items=[1, 2])


def test_biases_without_regularisation_stay_finite_for_items_without_ratings():
    train = Ratings.from_arrays([1, 2, 2], [1, 1, 2], [3, 4, 5], scale="1-5",
                                item_ids=[1, 2, 3])
    rec = make_recommender("biases", options={"reg_user": 0, "reg_item": 0}).fit(train)
    pred = rec.predict([1, 2], [3, 3])  # item 3 is declared but has no rating
    assert np.isfinite(pred["mean"].values).all()


def test_nan_never_leaves_predict():
    ratings, _ = simulate_ratings(30, 20, 300, seed=2)
    f = fit(build_model("pmf", ratings, n_factors=2), "map", random_seed=0)
    broken = f.copy()
    bias = broken["posterior"]["item_bias"].copy()
    bias[..., 0] = np.nan
    broken["posterior"] = broken["posterior"].to_dataset().assign(item_bias=bias)
    assert isinstance(broken["posterior"].to_dataset(), xr.Dataset)
    with pytest.raises(FitError, match="not finite"):
        predict(broken, users=ratings.user_ids[:3], items=[ratings.items[0]] * 3)


def test_a_staged_mpma_whose_components_cannot_be_told_apart_is_flagged():
    """On little data (the gallery's fast-mode split) the staged fit's local components
    predict like the global one and the EM leaves the weights where they started: said
    in the convergence summary, not left to be read off equal weights."""
    from bayesrec.evaluation import example_split
    from bayesrec.models import get_spec

    split = example_split(True)
    options = dict(get_spec("mpma").fast.options)
    with pytest.warns(FitWarning, match="indistinguishable"):
        f = fit(build_model("mpma", split.train, **options), "staged", random_seed=0)
    weights = f["staged"]["weights"].values
    assert np.ptp(weights) < 1e-3                      # the situation the flag is about
    report = convergence_summary(f)
    assert any("indistinguishable" in flag for flag in report.flags), report.flags
    assert not report.ok
