"""Baselines: values against hand computations, fallbacks, clipping, seeds, recommend."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayesrec import Ratings
from bayesrec.errors import InputError
from bayesrec.models import get_spec, list_models
from bayesrec.models.baselines import (
    Biases,
    GlobalMean,
    MeanOfMeans,
    UniformRandom,
    fit_biases,
)
from bayesrec.predictions import QUANTILES
from bayesrec.recommenders import make_recommender

BASELINES = ("uniform", "global_mean", "mean_of_means", "biases")


@pytest.fixture
def tiny() -> Ratings:
    """Three users with ratings and a cold user ``d``; items x, y, z and a cold item ``w``."""
    return Ratings.from_arrays(
        ["a", "a", "a", "b", "b", "c"],
        ["x", "y", "z", "x", "y", "x"],
        [5, 3, 4, 2, 1, 4],
        scale=[1, 2, 3, 4, 5],
        user_ids=["a", "b", "c", "d"],
        item_ids=["w", "x", "y", "z"],
    )


GLOBAL = 19 / 6
USER_MEANS = {"a": 4.0, "b": 1.5, "c": 4.0}
ITEM_MEANS = {"x": 11 / 3, "y": 2.0, "z": 4.0}


def test_registered_with_options():
    names = [s.name for s in list_models(kind="baseline")]
    assert set(BASELINES) <= set(names)
    assert get_spec("biases").options() == {"reg_user": 15.0, "reg_item": 10.0, "n_iter": 10}
    assert get_spec("uniform").options() == {"random_seed": None}
    assert get_spec("global_mean").methods == ("fit",)


@pytest.mark.parametrize("name", BASELINES)
def test_contract_every_baseline(tiny, name):
    model = make_recommender(name, random_seed=0).fit(tiny)
    users = ["a", "d", "zz", "b"]  # known, cold, unknown, known
    items = ["x", "w", "x", "qq"]
    pred = model.predict(users, items)
    assert pred.sizes["pair"] == 4
    assert list(pred["user"].values[:2]) == ["a", "d"]
    for var in ("mean", "median", "mode", "sd", "quantiles"):
        values = pred[var].values
        assert np.isfinite(values).all(), var
    assert ((pred["mean"] >= 1) & (pred["mean"] <= 5)).all()
    assert set(np.unique(pred["mode"].values)) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    q = pred["quantiles"].values
    assert (np.diff(q, axis=1) >= 0).all()
    assert ((q >= 1) & (q <= 5)).all()


def test_global_mean_values(tiny):
    model = GlobalMean().fit(tiny)
    pred = model.predict(["a", "d", "zz"], ["x", "w", "x"])
    np.testing.assert_allclose(pred["mean"].values, GLOBAL)
    residual_sd = np.sqrt(np.mean((np.array([5, 3, 4, 2, 1, 4]) - GLOBAL) ** 2))
    # the predictive is Normal(GLOBAL, residual sd) clipped to the scale: sd is the clipped
    # distribution's (before the clipping convention, sd was residual_sd itself)
    clipped = np.clip(np.random.default_rng(0).normal(GLOBAL, residual_sd, 400_000), 1, 5)
    np.testing.assert_allclose(pred["sd"].values, clipped.std(), rtol=5e-3)
    assert (pred["sd"].values < residual_sd).all()
    assert (pred["mode"].values == 3.0).all()


def test_mean_of_means_values_and_fallbacks(tiny):
    model = MeanOfMeans().fit(tiny)
    pred = model.predict(["a", "b", "d", "a", "d", "zz"], ["x", "z", "x", "w", "w", "y"])
    expected = [
        (GLOBAL + USER_MEANS["a"] + ITEM_MEANS["x"]) / 3,
        (GLOBAL + USER_MEANS["b"] + ITEM_MEANS["z"]) / 3,
        (GLOBAL + ITEM_MEANS["x"]) / 2,  # cold user
        (GLOBAL + USER_MEANS["a"]) / 2,  # cold item
        GLOBAL,  # both cold
        (GLOBAL + ITEM_MEANS["y"]) / 2,  # unknown user id
    ]
    np.testing.assert_allclose(pred["mean"].values, expected)


def _ridge_solution(ratings: Ratings, reg_user: float, reg_item: float):
    """Exact minimiser of the penalised least squares problem, by a direct solve."""
    mu = ratings.rating.mean()
    n_u, n_i = ratings.n_users, ratings.n_items
    design = np.zeros((len(ratings), n_u + n_i))
    design[np.arange(len(ratings)), ratings.user] = 1
    design[np.arange(len(ratings)), n_u + ratings.item] = 1
    penalty = np.diag([reg_user] * n_u + [reg_item] * n_i)
    b = np.linalg.solve(design.T @ design + penalty, design.T @ (ratings.rating - mu))
    return mu, b[:n_u], b[n_u:]


def test_biases_converge_to_direct_ridge_solve(tiny):
    mu, bu, bi = fit_biases(tiny, reg_user=2.0, reg_item=3.0, n_iter=500)
    mu_ref, bu_ref, bi_ref = _ridge_solution(tiny, 2.0, 3.0)
    assert mu == pytest.approx(mu_ref)
    np.testing.assert_allclose(bu, bu_ref, atol=1e-10)
    np.testing.assert_allclose(bi, bi_ref, atol=1e-10)
    assert bu[tiny.users.get_loc("d")] == 0 and bi[tiny.items.get_loc("w")] == 0


def test_biases_one_sweep_by_hand(tiny):
    reg_u, reg_i = 15.0, 10.0
    df = tiny.to_dataframe()
    mu = df.rating.mean()
    bu = {u: (g.rating - mu).sum() / (reg_u + len(g)) for u, g in df.groupby("user")}
    bi = {
        i: (g.rating - mu - g.user.map(bu)).sum() / (reg_i + len(g))
        for i, g in df.groupby("item")
    }
    model = Biases(reg_user=reg_u, reg_item=reg_i, n_iter=1).fit(tiny)
    pred = model.predict(["a", "b", "d", "a"], ["y", "x", "z", "w"])
    expected = [mu + bu["a"] + bi["y"], mu + bu["b"] + bi["x"], mu + bi["z"], mu + bu["a"]]
    np.testing.assert_allclose(pred["mean"].values, expected)


def test_biases_clip_to_scale():
    # with no penalty: user a is 3 above user b, item y is 2 above item x, so (a, y) -> 7
    ratings = Ratings.from_arrays(["a", "b", "b"], ["x", "x", "y"], [5, 2, 4], scale="1-5")
    model = Biases(reg_user=0, reg_item=0, n_iter=200).fit(ratings)
    assert model._point(np.array([0]), np.array([1]))[0] == pytest.approx(7.0)
    pred = model.predict(["a"], ["y"])
    assert pred["mean"].item() == 5.0 and pred["median"].item() == 5.0
    assert pred["mode"].item() == 5.0
    assert pred["quantiles"].max() <= 5.0


def test_quantiles_clipped_to_scale(tiny):
    pred = GlobalMean().fit(tiny).predict(["a"], ["x"])
    q = pred["quantiles"].sel(quantile=0.975).item()
    assert GLOBAL + 1.96 * pred["sd"].item() > 5  # the Normal runs off the scale ...
    assert q == 5.0  # ... and is clipped


def test_biases_rejects_bad_options():
    with pytest.raises(InputError, match="reg_user must be a number >= 0"):
        Biases(reg_user=-1)
    with pytest.raises(InputError, match="n_iter must be an integer from 1"):
        Biases(n_iter=0)
    with pytest.raises(InputError, match="unknown option"):
        make_recommender("biases", options={"lambda_u": 3})


def test_predict_codes_validates(tiny):
    model = GlobalMean().fit(tiny)
    with pytest.raises(InputError, match="mismatched lengths"):
        model.predict_codes(np.array([0, 1]), np.array([0]))
    with pytest.raises(InputError, match=r"user codes must lie in \[-1, 3\]"):
        model.predict_codes(np.array([4]), np.array([0]))
    with pytest.raises(InputError, match="not fitted"):
        GlobalMean().predict(["a"], ["x"])
    with pytest.raises(InputError, match="needs a bayesrec.Ratings"):
        GlobalMean().fit([1, 2, 3])


def test_uniform_seeded_and_uniform(tiny):
    users, items = np.zeros(20_000, dtype=int), np.ones(20_000, dtype=int)
    first = UniformRandom(random_seed=7).fit(tiny).predict_codes(users, items)
    again = UniformRandom(random_seed=7).fit(tiny).predict_codes(users, items)
    other = UniformRandom(random_seed=8).fit(tiny).predict_codes(users, items)
    np.testing.assert_array_equal(first["mean"].values, again["mean"].values)
    assert not np.array_equal(first["mean"].values, other["mean"].values)
    draws = first["mean"].values
    assert draws.min() >= 1 and draws.max() <= 5
    assert draws.mean() == pytest.approx(3.0, abs=0.05)
    assert draws.std() == pytest.approx(4 / np.sqrt(12), abs=0.03)
    np.testing.assert_allclose(first["sd"].values, 4 / np.sqrt(12))
    np.testing.assert_allclose(first["quantiles"].values[0], 1 + 4 * np.array(QUANTILES))
    via_registry = make_recommender("uniform", random_seed=7).fit(tiny).predict_codes(users, items)
    np.testing.assert_array_equal(via_registry["mean"].values, draws)


def test_recommend_excludes_rated_and_ranks_by_mean(tiny):
    model = MeanOfMeans().fit(tiny)
    rec = model.recommend(["b", "d"], n=4)
    # b rated x and y: left are z (item mean 4) and the cold item w
    b_items = rec["item"].sel(user="b").values
    assert list(b_items[:2]) == ["z", "w"] and pd.isna(b_items[2:]).all()
    assert np.isnan(rec["mean"].sel(user="b").values[2:]).all()
    # the cold user d has rated nothing: every item, ordered by mean
    d = rec.sel(user="d")
    assert list(d["item"].values) == ["z", "x", "w", "y"]
    assert (np.diff(d["mean"].values) <= 0).all()
    direct = model.predict(["d"] * 4, ["z", "x", "w", "y"])["mean"].values
    np.testing.assert_allclose(d["mean"].values, direct)


def test_biases_refuse_an_absurd_sweep_count_and_stop_at_a_fixed_point():
    """A 400-digit ``n_iter`` (``--option n_iter=111...``) once ran for ever; now it is
    refused in one line, and a large count stops as soon as a sweep changes nothing."""
    with pytest.raises(InputError, match="n_iter must be an integer from 1 to 1,000,000"):
        Biases(n_iter=int("1" * 400))
    from bayesrec.data.simulate import simulate_ratings

    ratings, _ = simulate_ratings(60, 40, 600, seed=3)
    many = Biases(n_iter=1_000_000).fit(ratings)
    enough = Biases(n_iter=2_000).fit(ratings)
    np.testing.assert_array_equal(many.user_bias_, enough.user_bias_)
    np.testing.assert_array_equal(many.item_bias_, enough.item_bias_)
