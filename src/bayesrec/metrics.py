"""Accuracy, calibration and ranking metrics on observed (user, item) pairs.

Everything works on sparse pairs: one entry per test rating, never a dense
users x items matrix.  :func:`score` reads a prediction dataset (see
:mod:`bayesrec.predictions`) the way the whole package does:

======================  ==========================================================
metric                  computed on
======================  ==========================================================
``rmse``                ``prediction.mean`` (the expected rating)
``mae``                 ``prediction.median`` (the MAE-optimal point prediction)
``accuracy``            ``prediction.mode`` (fraction of exactly right levels; the most
                        probable level when the prediction has ``prob``)
``lpd``                 ``prediction.prob``: mean log probability of the true level
                        (the held-out log predictive density per rating, in nats;
                        uniform guessing on 5 levels scores -1.609)
``coverage_<level>``    central predictive intervals from ``prediction.quantiles``
======================  ==========================================================

Ranking metrics (:func:`precision_at_k`, :func:`recall_at_k`, :func:`ndcg_at_k`,
:func:`ranking_scores`) follow the recipe of Surprise's FAQ ("How to compute
precision@k and recall@k"): each user's *test* pairs are ranked by predicted
mean and the top ``k`` of them count as recommended; a test item is relevant
when its true rating is at least ``threshold``.  For a user ``u`` with test
items ``T(u)``, top-``k`` set ``R(u)`` (``min(k, |T(u)|)`` items) and relevant
set ``Rel(u)``::

    precision@k = |R(u) & Rel(u)| / |R(u)|
    recall@k    = |R(u) & Rel(u)| / |Rel(u)|
    nDCG@k      = sum_{j <= |R(u)|} rel_j / log2(j + 1)  /  sum_{j <= min(k, |Rel(u)|)} 1 / log2(j + 1)

with binary relevance ``rel_j`` of the item at rank ``j``.  Each is averaged
over the users with at least one relevant test item.  Unlike Surprise's recipe,
a top-``k`` item need not also have a *predicted* rating above ``threshold``
(so a model whose predictions all fall below it is still ranked).  Ties in the
predicted mean are broken by the order of the pairs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from bayesrec.data.ratings import Ratings
from bayesrec.errors import InputError
from bayesrec.predictions import central_interval

__all__ = [
    "rmse",
    "mae",
    "accuracy",
    "coverage",
    "log_predictive_density",
    "score",
    "precision_at_k",
    "recall_at_k",
    "ndcg_at_k",
    "ranking_scores",
    "check_aligned",
]

#: Default central interval levels scored by :func:`score`.
LEVELS = (0.5, 0.8, 0.9, 0.95)

_LEVEL_TOL = 1e-9


# ----------------------------------------------------------------------------------------------
# validation
# ----------------------------------------------------------------------------------------------
def _values(x, what: str) -> np.ndarray:
    if isinstance(x, xr.DataArray):
        x = x.values
    try:
        arr = np.asarray(x, dtype=float)
    except (TypeError, ValueError):
        raise InputError(f"{what} must be numbers, got {type(x).__name__}") from None
    if arr.ndim != 1:
        raise InputError(f"{what} must be one-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        raise InputError(f"{what} is empty: a metric needs at least one pair")
    if not np.isfinite(arr).all():
        bad = np.flatnonzero(~np.isfinite(arr))
        raise InputError(
            f"{what} has {len(bad)} missing or infinite value(s), at position(s) "
            f"{bad[:5].tolist()}"
        )
    return arr


def _arrays(**named) -> list[np.ndarray]:
    arrays = {name: _values(x, name) for name, x in named.items()}
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise InputError(f"mismatched lengths: {lengths}; give one value per pair")
    return list(arrays.values())


def check_aligned(prediction: xr.Dataset, test: Ratings) -> None:
    """Raise :class:`InputError` unless ``prediction`` holds exactly the pairs of ``test``.

    The prediction's ``user``/``item`` coordinates (raw ids along ``pair``) must
    equal the test ratings' ids, in the same order.
    """
    if not isinstance(test, Ratings):
        raise InputError(f"test must be a bayesrec.Ratings, got {type(test).__name__}")
    if not isinstance(prediction, xr.Dataset) or "pair" not in prediction.dims:
        raise InputError(
            "prediction must be an xarray.Dataset over 'pair' (see bayesrec.predictions), got "
            f"{type(prediction).__name__}"
        )
    n_pred = prediction.sizes["pair"]
    if n_pred != len(test):
        raise InputError(
            f"mismatched lengths: the prediction has {n_pred} pairs but the test set has "
            f"{len(test)} ratings; predict with model.predict_ratings(test)"
        )
    for what, ids in (("user", test.user_ids), ("item", test.item_ids)):
        if what not in prediction.coords:
            raise InputError(f"the prediction has no '{what}' coordinate along 'pair'")
        predicted = np.asarray(prediction[what].values, dtype=object)
        differ = np.flatnonzero(predicted != np.asarray(ids, dtype=object))
        if len(differ):
            k = differ[0]
            raise InputError(
                f"the prediction's pairs are not the test set's: {len(differ)} {what} id(s) "
                f"differ, first at pair {k} ({predicted[k]!r} vs {ids[k]!r}); predict with "
                "model.predict_ratings(test)"
            )


# ----------------------------------------------------------------------------------------------
# accuracy and calibration
# ----------------------------------------------------------------------------------------------
def rmse(y_true, y_pred) -> float:
    """Root mean squared error."""
    y_true, y_pred = _arrays(y_true=y_true, y_pred=y_pred)
    return float(np.sqrt(np.mean(np.square(y_true - y_pred))))


def mae(y_true, y_pred) -> float:
    """Mean absolute error."""
    y_true, y_pred = _arrays(y_true=y_true, y_pred=y_pred)
    return float(np.mean(np.abs(y_true - y_pred)))


def accuracy(y_true, y_pred) -> float:
    """Fraction of pairs whose predicted level equals the true rating exactly."""
    y_true, y_pred = _arrays(y_true=y_true, y_pred=y_pred)
    return float(np.mean(np.abs(y_true - y_pred) <= _LEVEL_TOL))


def coverage(y_true, lower, upper) -> float:
    """Fraction of true ratings inside ``[lower, upper]`` (ends included)."""
    y_true, lower, upper = _arrays(y_true=y_true, lower=lower, upper=upper)
    if (lower > upper + _LEVEL_TOL).any():
        bad = np.flatnonzero(lower > upper + _LEVEL_TOL)
        raise InputError(f"lower > upper at {len(bad)} pair(s), first at {bad[:5].tolist()}")
    inside = (y_true >= lower - _LEVEL_TOL) & (y_true <= upper + _LEVEL_TOL)
    return float(np.mean(inside))


def log_predictive_density(prediction: xr.Dataset, test: Ratings) -> float:
    """Mean log probability of the true rating level (nats per rating), from ``prob``.

    NaN when the prediction has no level probabilities (a continuous scale).  A level
    given probability 0 scores ``-inf``: a model that rules out what happened.
    """
    if "prob" not in prediction:
        return float("nan")
    if test.scale.levels is None:
        raise InputError("the log predictive density of levels needs a discrete scale")
    prob = np.asarray(prediction["prob"].transpose("pair", "rating_level").values, dtype=float)
    levels = np.asarray(prediction["rating_level"].values, dtype=float)
    if not np.allclose(levels, np.asarray(test.scale.levels, dtype=float)):
        raise InputError(f"the prediction's levels {levels.tolist()} are not the test's scale "
                         f"{list(test.scale.levels)}")
    picked = prob[np.arange(len(test)), test.level_codes]
    with np.errstate(divide="ignore"):
        return float(np.mean(np.log(picked)))


def _coverage_key(level: float) -> str:
    return f"coverage_{level * 100:g}"


def score(prediction: xr.Dataset, test: Ratings, *, levels=LEVELS) -> dict[str, float]:
    """RMSE, MAE, accuracy and interval coverage of a prediction of ``test``'s pairs.

    Parameters
    ----------
    prediction : xarray.Dataset
        A prediction of exactly the test pairs, in order (``model.predict_ratings(test)``).
    test : Ratings
        The held-out ratings.
    levels : sequence of float
        Central interval levels; each gives a key ``coverage_<100 * level>``
        (``coverage_50``, ``coverage_80``, ``coverage_90``, ``coverage_95`` by default).

    Returns
    -------
    dict
        ``rmse`` (on ``mean``), ``mae`` (on ``median``), ``accuracy`` (on ``mode``; NaN
        on a continuous scale, which has no levels to hit), ``lpd`` (on ``prob``; NaN
        without level probabilities, as on a continuous scale) and the coverages.
    """
    check_aligned(prediction, test)
    y = test.rating
    out = {
        "rmse": rmse(y, prediction["mean"]),
        "mae": mae(y, prediction["median"]),
        # exact hits of a level mean nothing on a continuous scale
        "accuracy": (accuracy(y, prediction["mode"]) if test.scale.levels is not None
                     else float("nan")),
        "lpd": log_predictive_density(prediction, test),
    }
    for level in levels:
        try:
            lower, upper = central_interval(prediction, level)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        out[_coverage_key(level)] = coverage(y, lower, upper)
    return out


# ----------------------------------------------------------------------------------------------
# ranking
# ----------------------------------------------------------------------------------------------
def _per_user(users, y_true, y_score, k: int, threshold: float) -> pd.DataFrame:
    """Per-user counts for the ranking metrics (one row per user with a relevant item)."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InputError(f"k must be a positive integer, got {k!r}")
    if not np.isfinite(threshold):
        raise InputError(f"threshold must be a finite number, got {threshold!r}")
    y_true, y_score = _arrays(y_true=y_true, y_score=y_score)
    users = np.asarray(users.values if isinstance(users, xr.DataArray) else users)
    if users.shape != y_true.shape:
        raise InputError(
            f"mismatched lengths: {users.shape[0] if users.ndim else 0} users and "
            f"{len(y_true)} ratings; give one user per pair"
        )
    codes, uniques = pd.factorize(users)
    n = len(codes)
    # rank within user by predicted score (descending), ties by position
    order = np.lexsort((np.arange(n), -y_score, codes))
    group = codes[order]
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    sizes = np.diff(np.r_[starts, n])
    rank = np.arange(n) - np.repeat(starts, sizes)  # 0-based
    relevant = y_true[order] >= threshold
    top = rank < k
    n_users = len(uniques)
    table = pd.DataFrame({
        "n_relevant": np.bincount(group, relevant, n_users),
        "n_top": np.bincount(group, top, n_users),
        "n_hits": np.bincount(group, relevant & top, n_users),
        "dcg": np.bincount(group, (relevant & top) / np.log2(rank + 2), n_users),
    }, index=pd.Index(uniques, name="user"))
    ideal = np.r_[0.0, np.cumsum(1.0 / np.log2(np.arange(k) + 2))]
    table["idcg"] = ideal[np.minimum(table["n_relevant"].to_numpy().astype(int), k)]
    table = table[table["n_relevant"] > 0]
    if table.empty:
        raise InputError(
            f"no user has a test rating >= threshold {threshold}: ranking metrics are "
            "undefined; lower the threshold"
        )
    return table


def precision_at_k(users, y_true, y_score, *, k: int = 10, threshold: float = 4.0) -> float:
    """Mean over users of the share of relevant items among their top ``k`` test items."""
    t = _per_user(users, y_true, y_score, k, threshold)
    return float((t["n_hits"] / t["n_top"]).mean())


def recall_at_k(users, y_true, y_score, *, k: int = 10, threshold: float = 4.0) -> float:
    """Mean over users of the share of their relevant test items found in their top ``k``."""
    t = _per_user(users, y_true, y_score, k, threshold)
    return float((t["n_hits"] / t["n_relevant"]).mean())


def ndcg_at_k(users, y_true, y_score, *, k: int = 10, threshold: float = 4.0) -> float:
    """Mean over users of the normalised discounted cumulative gain (binary relevance)."""
    t = _per_user(users, y_true, y_score, k, threshold)
    return float((t["dcg"] / t["idcg"]).mean())


def ranking_scores(prediction: xr.Dataset, test: Ratings, k: int = 10,
                   threshold: float = 4.0) -> dict[str, float]:
    """Precision, recall and nDCG at ``k`` of the test pairs ranked by ``prediction.mean``.

    Returns a dict with keys ``precision_at_<k>``, ``recall_at_<k>``,
    ``ndcg_at_<k>`` and ``n_users`` (users with at least one relevant test item,
    over whom the metrics are averaged).  See the module docstring for the
    definitions.
    """
    check_aligned(prediction, test)
    t = _per_user(test.user, test.rating, prediction["mean"].values, k, threshold)
    return {
        f"precision_at_{k}": float((t["n_hits"] / t["n_top"]).mean()),
        f"recall_at_{k}": float((t["n_hits"] / t["n_relevant"]).mean()),
        f"ndcg_at_{k}": float((t["dcg"] / t["idcg"]).mean()),
        "n_users": len(t),
    }
