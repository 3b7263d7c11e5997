"""Top-N lists: what to rank on, its value for each kind of predictive, and the lists.

Every recommender ranks a user's items on a *score*, chosen with ``by=``:

``"mean"`` (default)
    the expected rating, **not clipped** to the scale: an item predicted at 5.6 on a
    1..5 scale ranks above one at 5.2, although both are reported as 5.0;
``"prob_at_least"`` (with ``threshold=``)
    the predictive probability that the rating reaches ``threshold``, e.g.
    ``by="prob_at_least", threshold=4``: the chance the user rates the item 4 or more;
``"quantile"`` (with ``q=``)
    a lower predictive quantile, e.g. ``by="quantile", q=0.1``: a rating the user
    gives the item with probability 0.9 or more (a cautious ranking that prefers
    items the model is sure about).  Like the mean it is not clipped.

The predictive is the one of :mod:`bayesrec.predictions` (a continuous likelihood's
latent rating clipped to the scale, so ``P(rating >= 4)`` of a Gaussian model is
``P(latent >= 4)``; level probabilities for categorical models).  Ties in the score
(common with probabilities estimated from draws, or level-valued quantiles) are broken
by the unclipped expected rating, then by the item's position in the id universe.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr
from scipy.special import ndtr, ndtri

from bayesrec.data.ratings import Ratings
from bayesrec.errors import InputError

__all__ = ["BY", "RankBy", "check_n", "latent_threshold", "rank_by", "scores_from_draws", "scores_from_levels",
           "scores_from_normal", "scores_from_uniform", "top_n_from_scores"]

#: What a ranking can be based on.
BY = ("mean", "prob_at_least", "quantile")
_TOL = 1e-9


def check_n(n, n_items: int) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise InputError(f"n must be a positive integer, got {n!r}")
    return int(min(n, n_items))


@dataclass(frozen=True)
class RankBy:
    """A checked ranking choice (see :func:`rank_by`)."""

    by: str = "mean"
    threshold: float | None = None
    q: float | None = None

    @property
    def needs_draws(self) -> bool:
        """Whether the score needs the predictive distribution, not only the mean."""
        return self.by != "mean"

    @property
    def label(self) -> str:
        """What the score is, in words (stored with the top-N list)."""
        if self.by == "prob_at_least":
            return f"P(rating >= {self.threshold:g})"
        if self.by == "quantile":
            return f"{self.q:g} predictive quantile (not clipped)"
        return "expected rating (not clipped)"


def _number(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InputError(f"{what} must be a number, got {value!r}")
    if not np.isfinite(value):
        raise InputError(f"{what} must be finite, got {value!r}")
    return float(value)


def rank_by(by="mean", threshold=None, q=None) -> RankBy:
    """Check a ranking choice: ``by`` in :data:`BY`, with ``threshold`` for
    ``"prob_at_least"`` and ``q`` in (0, 1) for ``"quantile"``."""
    if isinstance(by, RankBy):
        return by
    if by not in BY:
        raise InputError(f"by must be one of {list(BY)}, got {by!r}")
    if by == "prob_at_least":
        if threshold is None:
            raise InputError("by='prob_at_least' needs threshold=, the rating to reach "
                             "(e.g. threshold=4)")
        return RankBy(by, threshold=_number(threshold, "threshold"))
    if by == "quantile":
        if q is None:
            raise InputError("by='quantile' needs q=, the predictive quantile to rank on "
                             "(e.g. q=0.1)")
        q = _number(q, "q")
        if not 0 < q < 1:
            raise InputError(f"q must lie strictly between 0 and 1, got {q}")
        return RankBy(by, q=q)
    given = [name for name, v in (("threshold", threshold), ("q", q)) if v is not None]
    if given:
        raise InputError(f"{' and '.join(given)} only apply to by='prob_at_least' "
                         f"(threshold) or by='quantile' (q), not by={by!r}")
    return RankBy(by)


# ---------------------------------------------------------------------------------------------
# the score of each kind of predictive
# ---------------------------------------------------------------------------------------------
def latent_threshold(threshold: float, levels=None) -> float:
    """The continuous value a latent rating must reach for "rating >= threshold": on a
    discrete scale the edge below the lowest level at or above ``threshold`` (the midpoint
    with the level beneath, as the level probabilities of a prediction read a continuous
    predictive), so that ``P(rating >= 4)`` is the mass of levels 4 and 5; on a
    continuous scale ``threshold`` itself."""
    if levels is None:
        return threshold
    levels = np.asarray(levels, dtype=float)
    at_or_above = np.flatnonzero(levels >= threshold - _TOL)
    if len(at_or_above) == 0:
        return np.inf
    k = at_or_above[0]
    return -np.inf if k == 0 else float((levels[k - 1] + levels[k]) / 2)


def scores_from_draws(draws, rank: RankBy, low: float, high: float,
                      levels=None) -> np.ndarray:
    """Scores from predictive draws (samples x pairs) of the latent (unclipped) rating;
    ``levels``: the scale's levels (discrete scales, see :func:`latent_threshold`)."""
    draws = np.asarray(draws, dtype=float)
    if rank.by == "prob_at_least":
        if levels is not None:
            return (draws >= latent_threshold(rank.threshold, levels)).mean(0)
        return (np.clip(draws, low, high) >= rank.threshold - _TOL).mean(0)
    if rank.by == "quantile":
        sorted_ = np.sort(draws, axis=0)
        position = rank.q * (draws.shape[0] - 1)
        below = int(np.floor(position))
        above = min(below + 1, draws.shape[0] - 1)
        return sorted_[below] * (1 - (position - below)) + sorted_[above] * (position - below)
    return draws.mean(0)


def scores_from_levels(prob, levels, rank: RankBy) -> np.ndarray:
    """Scores from level probabilities ``prob`` (pairs x levels)."""
    prob = np.asarray(prob, dtype=float)
    prob = prob / prob.sum(-1, keepdims=True)
    levels = np.asarray(levels, dtype=float)
    if rank.by == "prob_at_least":  # rounded: sums that differ in the last bits are ties
        return np.round(prob[:, levels >= rank.threshold - _TOL].sum(-1), 12)
    if rank.by == "quantile":
        index = (np.cumsum(prob, -1) < rank.q - 1e-12).sum(-1)
        return levels[np.minimum(index, len(levels) - 1)]
    return prob @ levels


def scores_from_normal(loc, sd, rank: RankBy, low: float, high: float,
                       levels=None) -> np.ndarray:
    """Scores of a Gaussian predictive ``Normal(loc, sd)`` clipped to ``[low, high]``;
    ``levels``: the scale's levels (discrete scales, see :func:`latent_threshold`)."""
    loc = np.asarray(loc, dtype=float)
    sd = np.broadcast_to(np.asarray(sd, dtype=float), loc.shape)
    if rank.by == "prob_at_least":
        if rank.threshold <= low + _TOL:
            return np.ones_like(loc)
        if rank.threshold > high + _TOL:
            return np.zeros_like(loc)
        threshold = latent_threshold(rank.threshold, levels)
        safe = np.where(sd > 0, sd, 1.0)
        return np.where(sd > 0, ndtr((loc - threshold) / safe),
                        (loc >= threshold).astype(float))
    if rank.by == "quantile":
        return loc + sd * ndtri(rank.q)
    return loc.copy()


def scores_from_uniform(expected, rank: RankBy, low: float, high: float) -> np.ndarray:
    """Scores of the uniform predictive on ``[low, high]`` (every pair alike; ``expected``
    is the pairs' expected ratings, returned for ``by="mean"``)."""
    expected = np.asarray(expected, dtype=float)
    if rank.by == "prob_at_least":
        return np.full(expected.shape, float(np.clip((high - rank.threshold) / (high - low),
                                                     0.0, 1.0)))
    if rank.by == "quantile":
        return np.full(expected.shape, low + rank.q * (high - low))
    return expected.copy()


# ---------------------------------------------------------------------------------------------
# top-N lists
# ---------------------------------------------------------------------------------------------
def top_n_from_scores(train: Ratings, users, ucodes, means, sds, n: int,
                      exclude_rated: bool, *, reported=None, tiebreak=None,
                      rank: RankBy | None = None) -> xr.Dataset:
    """Top-``n`` items per row of a (users x items) score matrix, as a labelled Dataset.

    Items are ranked by ``means`` (the score), ties broken by ``tiebreak`` (e.g. the
    unclipped expected rating) and then by item position.  They are reported with
    ``reported`` (default: the scores themselves; for example the expected rating
    clipped to the rating scale) as ``mean``, with ``sds`` as ``sd`` and the score
    as ``score``.  ``means``/``sds`` are dense only over the *requested* users (a
    batch), never the whole users x items matrix of the data.
    """
    rank = rank or RankBy()
    scores = np.array(means, dtype=float, copy=True)
    reported = scores if reported is None else np.asarray(reported, dtype=float)
    tiebreak = np.zeros_like(scores) if tiebreak is None else np.asarray(tiebreak, dtype=float)
    if exclude_rated:
        known = ucodes >= 0
        rated = train.rated_mask()[ucodes[known]]
        rows, cols = rated.nonzero()
        scores[np.flatnonzero(known)[rows], cols] = -np.inf
    n = min(n, scores.shape[1])
    position = np.broadcast_to(np.arange(scores.shape[1]), scores.shape)
    order = np.lexsort((position, -tiebreak, -scores), axis=-1)[:, :n]
    item_ids = train.items.to_numpy()[order]
    picked = np.take_along_axis(scores, order, axis=1)
    valid = np.isfinite(picked)

    def take(values):
        return np.where(valid, np.take_along_axis(values, order, axis=1), np.nan)

    out = xr.Dataset(
        {
            "item": (("user", "rank"), np.where(valid, item_ids, None) if not valid.all()
                     else item_ids),
            "mean": (("user", "rank"), take(reported)),
            "sd": (("user", "rank"), take(np.asarray(sds, dtype=float))),
            "score": (("user", "rank"), np.where(valid, picked, np.nan)),
        },
        coords={"user": np.asarray(users), "rank": np.arange(1, n + 1)},
    )
    out["score"].attrs["long_name"] = rank.label
    out.attrs.update({"by": rank.by, "score": rank.label})
    for key in ("threshold", "q"):
        if getattr(rank, key) is not None:
            out.attrs[key] = getattr(rank, key)
    return out
