"""Models that build_model did not make: edited (pm.do, pm.observe) or written by hand.

Any pm.Model that follows the data convention of the factories (coords ``user`` and
``item``, data ``user_idx``/``item_idx`` on ``obs``, a deterministic ``mu`` and the
observed ``rating``) fits, predicts and is diagnosed; the fit cannot rebuild such a
model, so prediction and diagnostics take it as ``model=``.
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytest

from bayesrec import InputError, UnknownIdError
from bayesrec.data.simulate import simulate_ratings
from bayesrec.data.splits import holdout
from bayesrec.diagnostics import convergence_summary, rmse_trace
from bayesrec.inference import fit, load_fit, predict, recommend, save_fit
from bayesrec.metrics import rmse
from bayesrec.models import build_model
from bayesrec.models._blocks import pair_data, rating_coords


@pytest.fixture(scope="module")
def split():
    ratings, _ = simulate_ratings(n_users=40, n_items=30, n_ratings=600, seed=4)
    return holdout(ratings, 0.2, seed=0)


def hand_written(ratings, n_factors=2):
    """A biased matrix factorisation written by hand, following the convention."""
    coords = rating_coords(ratings, factor=np.arange(n_factors))
    with pm.Model(coords=coords) as model:
        user_idx, item_idx = pair_data(ratings)
        user_factors = pm.Normal("user_factors", 0.0, 0.4, dims=("user", "factor"))
        item_factors = pm.Normal("item_factors", 0.0, 0.4, dims=("item", "factor"))
        offset = pm.Normal("offset", 3.0, 1.0)
        sigma = pm.HalfNormal("sigma", 1.0)
        mu = pm.Deterministic("mu", offset + (user_factors[user_idx]
                                              * item_factors[item_idx]).sum(-1), dims="obs")
        pm.Normal("rating", mu, sigma, observed=ratings.rating, dims="obs")
    return model


def _edited(kind, train):
    base = build_model("pmf", train, n_factors=2)
    if kind == "do":
        return pm.do(base, {"sigma": 0.9})
    if kind == "observe":
        return pm.observe(base, {"offset": float(train.rating.mean())})
    return hand_written(train)


@pytest.mark.parametrize("kind", ["do", "observe", "hand_written"])
def test_edited_and_hand_written_models_fit_predict_and_are_diagnosed(kind, split, tmp_path):
    model = _edited(kind, split.train)
    f = fit(model, "nuts", draws=60, tune=60, chains=2, random_seed=1, progressbar=False)
    assert f.attrs["bayesrec_model"] == "custom"
    with pytest.raises(InputError, match="pass the fitted model"):
        predict(f, pairs=split.test)
    pred = predict(f, pairs=split.test, model=model)
    assert np.isfinite(pred["mean"].values).all()
    assert rmse(split.test.rating, pred["mean"].values) < 1.5 * split.test.rating.std()
    scale = split.train.scale
    assert ((pred["quantiles"] >= scale.low) & (pred["quantiles"] <= scale.high)).all()
    trace = rmse_trace(f, test=split.test, model=model)
    assert np.isfinite(trace["rmse"].values).all()
    report = convergence_summary(f, pairs=split.test, model=model)
    assert "log_likelihood" in report.to_dataset()
    top = recommend(f, [split.train.users[0]], n=3, model=model)
    assert top.sizes == {"user": 1, "rank": 3}
    # a saved fit keeps working with the model
    again = load_fit(save_fit(f, tmp_path / "fit.nc"))
    np.testing.assert_allclose(predict(again, pairs=split.test, model=model)["mean"].values,
                               pred["mean"].values)


def test_the_scale_of_a_custom_model_comes_from_its_coords(split):
    model = hand_written(split.train)
    f = fit(model, "map", random_seed=0, maxiter=200, progressbar=False)
    levels = f["bayesrec"].attrs["scale"]
    assert '"levels": [1.0, 2.0, 3.0, 4.0, 5.0]' in levels


def test_unknown_ids_of_a_custom_model_say_why(split):
    model = hand_written(split.train)
    f = fit(model, "map", random_seed=0, maxiter=200, progressbar=False)
    with pytest.raises(UnknownIdError, match="needs a model made by bayesrec.models.build_model"):
        predict(f, users=["someone new"], items=[split.train.items[0]], model=model)


def test_a_model_off_the_convention_is_refused_with_the_convention(split):
    with pm.Model() as bare:
        pm.Normal("x", observed=np.zeros(3))
    with pytest.raises(InputError, match="coords 'user' and 'item'.*user_idx"):
        fit(bare, "map", maxiter=10)
