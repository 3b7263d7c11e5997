"""Non-Bayesian baselines: the yardsticks every model in the zoo is compared with.

Each baseline is a :class:`~bayesrec.models.base.Recommender` registered under a
name (``uniform``, ``global_mean``, ``mean_of_means``, ``biases``), so the CLI,
the evaluation code and the contract tests treat them like any model.  They fit
in milliseconds on MovieLens 100K: every statistic is a vectorised
``numpy.bincount`` over the observed ratings, never a dense users x items matrix.

Unknown ids (code -1) and users or items without training ratings are handled
by each baseline's documented fallback.  Point predictions are clipped to the
rating scale, and so is the predictive distribution (a Normal around the point,
clipped; :func:`bayesrec.predictions.from_normal`); rankings use the unclipped point
or that distribution (:meth:`~bayesrec.models.base.Recommender.recommend`, ``by=``).

Reference figures (MovieLens 100K, folds u1..u5, mean test RMSE; see
``benchmarks/baselines.py``): ``global_mean`` 1.126, ``mean_of_means`` 1.018,
``biases`` 0.946.
"""

from __future__ import annotations

from typing import Self

import numpy as np
import xarray as xr

from bayesrec.data.ratings import Ratings
from bayesrec.errors import InputError
from bayesrec.models.base import Recommender
from bayesrec.models.registry import register
from bayesrec.predictions import QUANTILES, from_normal, probabilities_from_cdf
from bayesrec.ranking import RankBy, scores_from_normal, scores_from_uniform

__all__ = ["UniformRandom", "GlobalMean", "MeanOfMeans", "Biases", "fit_biases"]

_PMF_EXAMPLE = "PyMC example gallery, 'Probabilistic Matrix Factorization for Making Personalized Recommendations'"


def _check_fitted_codes(train: Ratings, user_codes, item_codes) -> tuple[np.ndarray, np.ndarray]:
    """Codes as int64 arrays of equal length, within [-1, n); -1 means an unknown id."""
    user_codes = np.atleast_1d(np.asarray(user_codes)).astype(np.int64, copy=False)
    item_codes = np.atleast_1d(np.asarray(item_codes)).astype(np.int64, copy=False)
    if user_codes.shape != item_codes.shape or user_codes.ndim != 1:
        raise InputError(
            f"mismatched lengths: {user_codes.shape} user codes and {item_codes.shape} item "
            "codes; give one user and one item per pair"
        )
    for codes, n, what in ((user_codes, train.n_users, "user"), (item_codes, train.n_items, "item")):
        if codes.size and (codes.min() < -1 or codes.max() >= n):
            raise InputError(
                f"{what} codes must lie in [-1, {n - 1}] (-1 = unknown id), got values in "
                f"[{codes.min()}, {codes.max()}]"
            )
    return user_codes, item_codes


def _ids(index, codes: np.ndarray) -> np.ndarray:
    """Raw ids of codes; code -1 (unknown id) becomes None."""
    values = index.to_numpy()
    if (codes >= 0).all():
        return values[codes]
    out = np.empty(len(codes), dtype=object)
    out[codes >= 0] = values[codes[codes >= 0]]
    out[codes < 0] = None
    return out


def _lookup(values: np.ndarray, codes: np.ndarray, fill: float) -> np.ndarray:
    """``values[codes]``, with ``fill`` where the code is -1."""
    out = np.full(len(codes), fill, dtype=float)
    known = codes >= 0
    out[known] = values[codes[known]]
    return out


def _residual_sd(residuals: np.ndarray) -> float:
    """Root mean squared training residual: the plug-in predictive sd."""
    return float(np.sqrt(np.mean(np.square(residuals))))


def _check_train(train) -> Ratings:
    if not isinstance(train, Ratings):
        raise InputError(f"fit() needs a bayesrec.Ratings, got {type(train).__name__}")
    return train


class _PlugIn(Recommender):
    """A baseline with a Gaussian plug-in predictive: Normal(point, residual sd)."""

    residual_sd_: float | None = None

    def _point(self, user_codes: np.ndarray, item_codes: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def predict_codes(self, user_codes, item_codes) -> xr.Dataset:
        train = self._require_fitted()
        user_codes, item_codes = _check_fitted_codes(train, user_codes, item_codes)
        return from_normal(
            _ids(train.users, user_codes), _ids(train.items, item_codes),
            self._point(user_codes, item_codes), self.residual_sd_, train.scale,
            attrs={"model": self.name, "method": "fit"},
        )

    def ranking_scores(self, user_codes, item_codes, rank: RankBy) -> dict[str, np.ndarray]:
        """Scores of the plug-in predictive ``Normal(point, residual sd)`` clipped to the
        scale (see :mod:`bayesrec.ranking`)."""
        train = self._require_fitted()
        pred = self.predict_codes(user_codes, item_codes)
        expected = pred["expected"].values
        return {"score": scores_from_normal(expected, self.residual_sd_, rank, train.scale.low,
                                            train.scale.high, train.scale.levels),
                "expected": expected, "mean": pred["mean"].values, "sd": pred["sd"].values}


@register(
    "uniform", kind="baseline", title="Uniform random rating",
    reference=_PMF_EXAMPLE, predicts="point",
)
class UniformRandom(Recommender):
    """Uniform random rating: a draw from the uniform distribution on the scale.

    The point prediction of each pair (``mean``, ``median``; ``mode`` is the
    nearest level) is an independent draw from ``Uniform(low, high)`` of the
    training scale, as the "uniform random" baseline of the PyMC PMF example.
    The predictive distribution (``sd``, ``quantiles``) is that uniform
    distribution itself.  Unknown ids are treated like any other.

    Parameters
    ----------
    random_seed : int, optional
        Seeds a ``numpy.random.default_rng`` created at :meth:`fit`; each call to
        :meth:`predict_codes` continues its stream, so the same seed and the same
        sequence of calls give the same numbers.
    """

    name = "uniform"

    def __init__(self, *, random_seed: int | None = None):
        self.random_seed = random_seed
        self._rng: np.random.Generator | None = None

    def fit(self, train: Ratings) -> Self:
        self.train_ = _check_train(train)
        self._rng = np.random.default_rng(self.random_seed)
        return self

    def predict_codes(self, user_codes, item_codes) -> xr.Dataset:
        train = self._require_fitted()
        user_codes, item_codes = _check_fitted_codes(train, user_codes, item_codes)
        low, high = train.scale.low, train.scale.high
        draws = self._rng.uniform(low, high, size=len(user_codes))
        pred = from_normal(
            _ids(train.users, user_codes), _ids(train.items, item_codes), draws,
            (high - low) / np.sqrt(12.0), train.scale,
            attrs={"model": self.name, "method": "fit"},
        )
        quantiles = low + (high - low) * np.asarray(QUANTILES)
        pred["quantiles"] = (("pair", "quantile"), np.tile(quantiles, (len(draws), 1)))
        pred["sd"] = ("pair", np.full(len(draws), (high - low) / np.sqrt(12.0)))
        if train.scale.levels is not None:  # the uniform's mass on each level's interval
            cdf = np.clip((train.scale.edges - low) / (high - low), 0.0, 1.0)
            prob = probabilities_from_cdf(np.tile(cdf, (len(draws), 1)))
            pred["prob"] = (("pair", "rating_level"), prob)
            pred["mode"] = ("pair", train.scale.snap(draws))  # the random draw's level
        return pred

    def ranking_scores(self, user_codes, item_codes, rank: RankBy) -> dict[str, np.ndarray]:
        """Scores of the uniform predictive (the same for every pair, so ties are broken
        by the random point predictions: a random ranking whatever ``by``)."""
        train = self._require_fitted()
        pred = self.predict_codes(user_codes, item_codes)
        expected = pred["expected"].values
        return {"score": scores_from_uniform(expected, rank, train.scale.low, train.scale.high),
                "expected": expected, "mean": pred["mean"].values, "sd": pred["sd"].values}


@register(
    "global_mean", kind="baseline", title="Global mean rating",
    reference="Koren & Bell (2011), Advances in Collaborative Filtering, sec. 2.1",
)
class GlobalMean(_PlugIn):
    """The training mean rating for every pair; predictive Normal(mean, residual sd).

    The residual sd is the root mean squared training residual.  Unknown users
    and items get the same prediction as everyone else.
    """

    name = "global_mean"

    def __init__(self):
        self.mean_: float | None = None

    def fit(self, train: Ratings) -> Self:
        self.train_ = _check_train(train)
        self.mean_ = train.global_mean()
        self.residual_sd_ = _residual_sd(train.rating - self.mean_)
        return self

    def _point(self, user_codes, item_codes) -> np.ndarray:
        return np.full(len(user_codes), self.mean_)


@register(
    "mean_of_means", kind="baseline", title="Mean of global, user and item means",
    reference=_PMF_EXAMPLE,
)
class MeanOfMeans(_PlugIn):
    """The average of the global mean, the user's mean and the item's mean.

    As in the PyMC PMF example.  When the user or the item has no training
    ratings (or is unknown, code -1), the means that exist are averaged: a
    cold user gets ``(global + item mean) / 2``, a pair with both cold gets the
    global mean.  Predictive Normal(prediction, residual sd), with the root mean
    squared training residual of these predictions.
    """

    name = "mean_of_means"

    def __init__(self):
        self.global_mean_: float | None = None
        self.user_means_: np.ndarray | None = None
        self.item_means_: np.ndarray | None = None

    def fit(self, train: Ratings) -> Self:
        self.train_ = _check_train(train)
        self.global_mean_ = train.global_mean()
        self.user_means_ = train.user_means()
        self.item_means_ = train.item_means()
        self.residual_sd_ = _residual_sd(
            train.rating - train.scale.clip(self._point(train.user, train.item))
        )
        return self

    def _point(self, user_codes, item_codes) -> np.ndarray:
        means = np.column_stack([
            np.full(len(user_codes), self.global_mean_),
            _lookup(self.user_means_, user_codes, np.nan),
            _lookup(self.item_means_, item_codes, np.nan),
        ])
        return np.nanmean(means, axis=1)  # the global mean is never NaN


#: the most alternating sweeps :class:`Biases` accepts (they converge in tens)
MAX_SWEEPS = 1_000_000


def fit_biases(train: Ratings, *, reg_user: float, reg_item: float,
               n_iter: int) -> tuple[float, np.ndarray, np.ndarray]:
    """Regularised user and item biases by alternating ridge updates.

    Approximately minimises ``sum (r_ui - mu - b_u - b_i)^2 + reg_user sum b_u^2
    + reg_item sum b_i^2`` with ``mu`` the training mean, by ``n_iter`` sweeps of
    exact block updates (user biases given item biases, then item biases given
    user biases), as Surprise's ``BaselineOnly`` with ``method="als"``::

        b_u = sum_{i in I(u)} (r_ui - mu - b_i) / (reg_user + |I(u)|)
        b_i = sum_{u in U(i)} (r_ui - mu - b_u) / (reg_item + |U(i)|)

    Starting from zero biases; the sweeps converge to the ridge solution.
    Users and items without ratings keep bias 0.

    Returns
    -------
    mu, user_bias, item_bias
    """
    mu = train.global_mean()
    user_bias = np.zeros(train.n_users)
    item_bias = np.zeros(train.n_items)
    user_counts, item_counts = train.user_counts(), train.item_counts()
    centred = train.rating - mu
    # units without ratings keep bias 0 (with no regularisation 0 / 0 would give NaN)
    user_den = np.where(user_counts > 0, reg_user + user_counts, 1.0)
    item_den = np.where(item_counts > 0, reg_item + item_counts, 1.0)
    for _ in range(n_iter):
        previous = user_bias, item_bias
        user_bias = np.bincount(train.user, centred - item_bias[train.item], train.n_users)
        user_bias /= user_den
        item_bias = np.bincount(train.item, centred - user_bias[train.user], train.n_items)
        item_bias /= item_den
        if np.array_equal(user_bias, previous[0]) and np.array_equal(item_bias, previous[1]):
            break  # a fixed point to the last bit: every further sweep would repeat it
    return mu, user_bias, item_bias


@register(
    "biases", kind="baseline", title="Regularised user and item biases",
    reference="Koren (2010), Factor in the neighbors, TKDD 4(1), sec. 2.1; "
              "Surprise BaselineOnly (ALS)",
)
class Biases(_PlugIn):
    """Baseline predictor ``r_ui ~ mu + b_u + b_i`` with ridge-regularised biases.

    Fitted by :func:`fit_biases` (alternating ridge updates, Koren's baseline
    estimates as in Surprise's ``BaselineOnly``).  The defaults
    ``reg_user=15, reg_item=10, n_iter=10`` are Surprise's and reproduce its
    published figure: on MovieLens 100K folds u1..u5 the 5-fold mean test RMSE
    is 0.946 (0.9458).  Over ``reg_user`` in 5..25 and ``reg_item`` in 2..20 it
    ranges from 0.941 (5, 2) to 0.953 (25, 20); more than about five sweeps
    change it by < 0.0005 (grid in ``benchmarks/README.md``).  We keep the
    published defaults as the reference.  Unknown or cold users and items get bias 0;
    predictive Normal(prediction, residual sd), with the root mean squared
    training residual.

    Parameters
    ----------
    reg_user, reg_item : float
        Ridge penalties on the user and item biases (λ_u, λ_i), >= 0.
    n_iter : int
        Number of alternating sweeps, 1 to 1,000,000 (fewer are run when a sweep
        reaches a fixed point to the last bit: the result is the same).
    """

    name = "biases"

    def __init__(self, *, reg_user: float = 15.0, reg_item: float = 10.0, n_iter: int = 10):
        for key, value in (("reg_user", reg_user), ("reg_item", reg_item)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise InputError(f"{key} must be a number >= 0, got {value!r}")
        if isinstance(n_iter, bool) or not isinstance(n_iter, (int, np.integer)) \
                or not 1 <= n_iter <= MAX_SWEEPS:
            shown = f"{n_iter!r}" if len(repr(n_iter)) < 30 else f"{repr(n_iter)[:20]}..."
            raise InputError(f"n_iter must be an integer from 1 to {MAX_SWEEPS:,} (the sweeps "
                             f"converge in tens), got {shown}")
        self.reg_user = float(reg_user)
        self.reg_item = float(reg_item)
        self.n_iter = int(n_iter)
        self.mean_: float | None = None
        self.user_bias_: np.ndarray | None = None
        self.item_bias_: np.ndarray | None = None

    def fit(self, train: Ratings) -> Self:
        self.train_ = _check_train(train)
        self.mean_, self.user_bias_, self.item_bias_ = fit_biases(
            train, reg_user=self.reg_user, reg_item=self.reg_item, n_iter=self.n_iter
        )
        self.residual_sd_ = _residual_sd(
            train.rating - train.scale.clip(self._point(train.user, train.item))
        )
        return self

    def _point(self, user_codes, item_codes) -> np.ndarray:
        return (self.mean_ + _lookup(self.user_bias_, user_codes, 0.0)
                + _lookup(self.item_bias_, item_codes, 0.0))
