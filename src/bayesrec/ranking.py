"""Top-N lists from a users x items matrix of scores (shared by every recommender)."""

from __future__ import annotations

import numpy as np
import xarray as xr

from bayesrec.data.ratings import Ratings
from bayesrec.errors import InputError

__all__ = ["check_n", "top_n_from_scores"]


def check_n(n, n_items: int) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise InputError(f"n must be a positive integer, got {n!r}")
    return int(min(n, n_items))


def top_n_from_scores(train: Ratings, users, ucodes, means, sds, n: int,
                      exclude_rated: bool, *, reported=None) -> xr.Dataset:
    """Top-``n`` items per row of a (users x items) score matrix, as a labelled Dataset.

    Items are ranked by ``means`` (the score) and reported with ``reported`` (default:
    the scores themselves; for example the score clipped to the rating scale) and
    ``sds``.  ``means``/``sds`` are dense only over the *requested* users (a batch),
    never the whole users x items matrix of the data.
    """
    reported = means if reported is None else reported
    scores = np.array(means, dtype=float, copy=True)
    if exclude_rated:
        known = ucodes >= 0
        rated = train.rated_mask()[ucodes[known]]
        rows, cols = rated.nonzero()
        scores[np.flatnonzero(known)[rows], cols] = -np.inf
    n = min(n, scores.shape[1])
    top = np.argpartition(-scores, n - 1, axis=1)[:, :n]
    order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
    top = np.take_along_axis(top, order, axis=1)
    item_ids = train.items.to_numpy()[top]
    valid = np.isfinite(np.take_along_axis(scores, top, axis=1))
    return xr.Dataset(
        {
            "item": (("user", "rank"), np.where(valid, item_ids, None) if not valid.all() else item_ids),
            "mean": (("user", "rank"), np.where(valid, np.take_along_axis(reported, top, axis=1),
                                                np.nan)),
            "sd": (("user", "rank"), np.where(valid, np.take_along_axis(sds, top, axis=1), np.nan)),
        },
        coords={"user": np.asarray(users), "rank": np.arange(1, n + 1)},
    )
