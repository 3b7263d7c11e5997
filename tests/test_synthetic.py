"""The embedded synthetic data set: sizes, coverage, skew, determinism and known truth."""

from __future__ import annotations

import time

import numpy as np
import pytest

from bayesrec import Ratings, RatingScale
from bayesrec.data.simulate import load_synthetic, simulate_ratings, true_mean
from bayesrec.errors import InputError


@pytest.fixture(scope="module")
def default():
    start = time.perf_counter()
    ratings, truth = load_synthetic()
    return ratings, truth, time.perf_counter() - start


def _keys(r: Ratings) -> np.ndarray:
    return r.user * r.n_items + r.item


def test_default_sizes_and_coverage(default):
    ratings, truth, seconds = default
    assert seconds < 2.0
    assert (len(ratings), ratings.n_users, ratings.n_items) == (100_000, 943, 1682)
    assert len(np.unique(_keys(ratings))) == len(ratings)  # no duplicate pairs
    assert ratings.user_counts().min() >= 1 and ratings.item_counts().min() >= 1
    assert ratings.scale == RatingScale.integers(1, 5)
    assert ratings.users.tolist() == list(range(1, 944))


def test_truth_layout(default):
    ratings, truth, _ = default
    assert truth["user_factors"].dims == ("user", "factor")
    assert truth["item_factors"].dims == ("item", "factor")
    assert truth["user_bias"].dims == ("user",) and truth["item_bias"].dims == ("item",)
    assert truth.sizes == {"user": 943, "item": 1682, "factor": 5}
    assert truth["global_mean"].ndim == 0 and float(truth["noise_sd"]) == 0.8
    np.testing.assert_array_equal(truth["user"].to_numpy(), ratings.users.to_numpy())
    np.testing.assert_array_equal(truth["item"].to_numpy(), ratings.items.to_numpy())
    for key in ("n_users", "n_items", "n_ratings", "n_factors", "noise_sd", "factor_sd",
                "activity_skew", "popularity_skew", "scale"):
        assert key in truth.attrs
    assert truth.attrs["seed"] == "0"


def test_ratings_look_like_movielens(default):
    ratings, _, _ = default
    assert 3.3 < ratings.rating.mean() < 3.7
    assert 0.95 < ratings.rating.std() < 1.25
    levels, counts = np.unique(ratings.rating, return_counts=True)
    assert levels.tolist() == [1, 2, 3, 4, 5] and counts.min() > 1000


def test_activity_and_popularity_are_skewed(default):
    ratings, _, _ = default
    for counts in (ratings.user_counts(), ratings.item_counts()):
        top = np.sort(counts)[::-1][: len(counts) // 10]
        assert top.sum() / counts.sum() > 0.30  # uniform would give about 0.10
    assert ratings.user_counts().max() <= 1682 // 2 + 1
    assert ratings.item_counts().min() < 5 < 300 < ratings.item_counts().max()


def test_timestamps_plausible_and_sorted(default):
    ratings, _, _ = default
    t = ratings.timestamp
    assert np.all(np.diff(t) >= 0)
    assert 874_724_710 <= t.min() and t.max() <= 893_286_638  # the MovieLens 100K period


def test_same_seed_same_data_other_seed_differs():
    kw = dict(n_users=50, n_items=70, n_ratings=900)
    (a, ta), (b, tb) = simulate_ratings(**kw, seed=7), simulate_ratings(**kw, seed=7)
    for name in ("user", "item", "rating", "timestamp"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert ta.identical(tb)
    c, tc = simulate_ratings(**kw, seed=8)
    assert not np.array_equal(_keys(a), _keys(c))
    assert not np.allclose(ta["user_bias"], tc["user_bias"])


def test_load_synthetic_is_seed_zero_and_takes_overrides():
    kw = dict(n_users=30, n_items=20, n_ratings=200)
    a, ta = load_synthetic(**kw)
    b, tb = simulate_ratings(**kw, seed=0)
    np.testing.assert_array_equal(a.rating, b.rating)
    assert ta.identical(tb)
    with pytest.raises(InputError, match=r"unknown setting\(s\) \['n_user'\] for load_synthetic"):
        load_synthetic(n_user=5)


def test_true_mean_by_hand(default):
    _, truth, _ = default
    users, items = np.array([0, 5, 942]), np.array([3, 0, 1681])
    expected = [
        3.5
        + float(truth["user_bias"][u])
        + float(truth["item_bias"][i])
        + sum(float(truth["user_factors"][u, k]) * float(truth["item_factors"][i, k])
              for k in range(5))
        for u, i in zip(users, items, strict=True)
    ]
    np.testing.assert_allclose(true_mean(truth, users, items), expected, rtol=1e-12)


def test_true_mean_errors(default):
    _, truth, _ = default
    with pytest.raises(InputError, match="must be 1-d of the same length"):
        true_mean(truth, [0, 1], [0])
    with pytest.raises(InputError, match="user_codes must be integers in 0..942"):
        true_mean(truth, [943], [0])
    with pytest.raises(InputError, match="item_codes must be integers in 0..1681"):
        true_mean(truth, [0], [-1])


def test_discrete_ratings_are_rounded_noisy_means(default):
    ratings, truth, _ = default
    mean = true_mean(truth, ratings.user, ratings.item)
    # rounding to the nearest level and clipping: within noise of the truth, correlated with it
    assert np.corrcoef(mean, ratings.rating)[0, 1] > 0.5
    assert abs(np.mean(ratings.rating - np.clip(mean, 1, 5))) < 0.1


def test_continuous_variant_has_gaussian_noise():
    ratings, truth = simulate_ratings(300, 200, 20_000, scale=None, noise_sd=0.5, seed=2)
    assert not ratings.scale.is_discrete
    residual = ratings.rating - true_mean(truth, ratings.user, ratings.item)
    assert residual.std() == pytest.approx(0.5, rel=0.03)
    assert abs(residual.mean()) < 0.02
    assert ratings.scale.low < ratings.rating.min() and ratings.rating.max() < ratings.scale.high


def test_factor_variance_default():
    _, truth = simulate_ratings(200, 300, 5000, n_factors=4, seed=1)
    sd = float(truth.attrs["factor_sd"])
    assert 4 * sd**4 == pytest.approx(0.4)
    assert truth["item_factors"].std() == pytest.approx(sd, rel=0.1)


def test_biases_only_and_other_scale():
    ratings, truth = simulate_ratings(20, 30, 300, n_factors=0, scale=RatingScale.stars(), seed=3)
    assert truth.sizes["factor"] == 0
    assert ratings.scale == RatingScale.stars()
    assert np.isin(ratings.rating, np.arange(1, 11) / 2).all()


@pytest.mark.parametrize(("n_users", "n_items", "n_ratings"),
                         [(5, 10, 50), (5, 10, 49), (3, 40, 40), (40, 3, 40), (1, 1, 1)])
def test_dense_and_edge_sizes(n_users, n_items, n_ratings):
    ratings, _ = simulate_ratings(n_users, n_items, n_ratings, seed=1)
    assert len(ratings) == n_ratings == len(np.unique(_keys(ratings)))
    assert ratings.user_counts().min() >= 1 and ratings.item_counts().min() >= 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(n_users=10, n_items=10, n_ratings=5), r"n_ratings must be between max\(n_users, "
                                                    r"n_items\) = 10"),
        (dict(n_users=2, n_items=3, n_ratings=7), "and n_users \\* n_items = 6, got 7"),
        (dict(n_users=0), "need n_users >= 1"),
        (dict(n_items=2.5), "n_items must be an integer, got 2.5"),
        (dict(noise_sd=-1.0), "noise_sd must be a finite number >= 0"),
        (dict(factor_sd=np.nan), "factor_sd must be a finite number >= 0"),
        (dict(scale="0.5-5"), "must name integer ends"),
    ],
)
def test_argument_errors(kwargs, message):
    with pytest.raises(InputError, match=message):
        simulate_ratings(**{"n_users": 10, "n_items": 10, "n_ratings": 50, **kwargs})
