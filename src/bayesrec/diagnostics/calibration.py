"""Calibration of predictive intervals on held-out ratings.

A predictive distribution is calibrated when its central ``p`` intervals hold a
share ``p`` of the held-out ratings, for every ``p``.  :func:`interval_coverage`
reads the intervals a prediction stores (its ``quantiles``, central 50, 80, 90
and 95 %); :func:`calibration_table` computes intervals at finer levels from
the prediction's predictive draws (``rating (chain, draw, pair)``) when it kept
them.

Ratings on a discrete scale are compared with interval ends included; a
predictive that is itself discrete (level probabilities) therefore covers at
least its nominal level, and usually more.

:func:`level_reliability` checks the level probabilities themselves (``prob``,
every model on a discrete scale): of all the (rating, level) pairs given a
probability near ``p``, a share ``p`` should be the rating's true level.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from bayesrec.data.ratings import Ratings
from bayesrec.errors import InputError
from bayesrec.metrics import LEVELS, check_aligned
from bayesrec.predictions import central_interval, draw_quantiles

__all__ = ["interval_coverage", "calibration_table", "coverage_dataset", "level_reliability",
           "FINE_LEVELS"]

#: Levels of :func:`calibration_table` when the prediction holds draws.
FINE_LEVELS = tuple(np.round(np.arange(0.05, 1.0, 0.05), 2)) + (0.98, 0.99)

_TOL = 1e-9


def coverage_dataset(rating, lower, upper, levels) -> xr.Dataset:
    """Coverage of intervals ``lower, upper (level, pair)`` of ``rating (pair)``, over ``level``.

    Variables: ``coverage`` (share of ratings inside, ends included), ``below`` and
    ``above`` (shares outside on each side), ``width`` (mean interval width),
    ``nominal`` (the level itself) and ``n`` (the number of ratings).
    """
    rating = np.asarray(rating, dtype=float)[None, :]
    lower, upper = np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)
    below = (rating < lower - _TOL).mean(-1)
    above = (rating > upper + _TOL).mean(-1)
    levels = np.asarray(levels, dtype=float)
    ds = xr.Dataset(
        {"coverage": ("level", 1.0 - below - above), "below": ("level", below),
         "above": ("level", above), "width": ("level", (upper - lower).mean(-1)),
         "nominal": ("level", levels)},
        coords={"level": levels},
    )
    ds["n"] = rating.shape[1]
    ds["coverage"].attrs["long_name"] = "share of held-out ratings inside the central interval"
    return ds


def interval_coverage(prediction: xr.Dataset, test: Ratings, levels=LEVELS) -> xr.Dataset:
    """Coverage of the prediction's central intervals at ``levels`` on ``test``'s ratings.

    Parameters
    ----------
    prediction : Dataset
        A prediction of exactly ``test``'s pairs (see :mod:`bayesrec.predictions`).
    test : Ratings
    levels : sequence of float
        Central interval levels the prediction's ``quantiles`` support (default
        0.5, 0.8, 0.9, 0.95).

    Returns
    -------
    xarray.Dataset
        Over ``level``: ``coverage``, ``below``, ``above``, ``width``, ``nominal``, ``n``.
    """
    check_aligned(prediction, test)
    bounds = []
    for level in levels:
        try:
            lo, hi = central_interval(prediction, level)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        bounds.append((lo.values, hi.values))
    lower = np.stack([b[0] for b in bounds])
    upper = np.stack([b[1] for b in bounds])
    ds = coverage_dataset(test.rating, lower, upper, levels)
    ds.attrs["source"] = "quantiles"
    return ds


def calibration_table(prediction: xr.Dataset, test: Ratings, levels=None) -> xr.Dataset:
    """Coverage of central predictive intervals at many levels (a calibration curve).

    With the predictive draws ``rating (chain, draw, pair)`` in the prediction,
    intervals are their empirical quantiles at ``levels`` (default
    :data:`FINE_LEVELS`, 0.05 to 0.99), clipped to the rating scale like the
    stored quantiles; without draws, the levels the stored quantiles support.

    Returns
    -------
    xarray.Dataset
        As :func:`interval_coverage`; ``attrs["source"]`` says ``"draws"`` or
        ``"quantiles"``.  ``.to_dataframe()`` gives the table.
    """
    check_aligned(prediction, test)
    if "rating" not in prediction:
        return interval_coverage(prediction, test, LEVELS if levels is None else levels)
    levels = np.asarray(FINE_LEVELS if levels is None else levels, dtype=float)
    if levels.ndim != 1 or not ((levels > 0) & (levels < 1)).all():
        raise InputError(f"levels must be numbers strictly between 0 and 1, got {levels}")
    draws = prediction["rating"].transpose("chain", "draw", "pair").values
    flat = draws.reshape(-1, draws.shape[-1])
    probs = np.concatenate([(1 - levels) / 2, (1 + levels) / 2])
    q = draw_quantiles(flat, probs)
    low, high = prediction.attrs.get("scale_low"), prediction.attrs.get("scale_high")
    if low is not None and high is not None:
        q = np.clip(q, low, high)
    ds = coverage_dataset(test.rating, q[:len(levels)], q[len(levels):], levels)
    ds.attrs["source"] = "draws"
    ds.attrs["n_draws"] = int(flat.shape[0])
    return ds


def level_reliability(prediction: xr.Dataset, test: Ratings, bins: int = 10) -> xr.Dataset:
    """Reliability of the level probabilities ``prob (pair, rating_level)`` on ``test``.

    Every (held-out rating, level) pair is one forecast: the probability the
    prediction gave that level, and whether the rating was that level.  The
    forecasts are grouped into ``bins`` equal-width bins of probability; a
    calibrated prediction has, in every bin, an observed frequency equal to the
    bin's mean probability (the diagonal of a reliability diagram).

    Returns
    -------
    xarray.Dataset
        Over ``bin`` (the bins' centres): ``predicted`` (mean probability in the
        bin), ``observed`` (share of those forecasts whose level was the rating),
        ``count`` (forecasts in the bin; empty bins are NaN), ``se`` (the binomial
        standard error of ``observed`` under calibration,
        ``sqrt(p (1 - p) / count)``).  ``attrs["ece"]`` is the expected
        calibration error, the count-weighted mean of ``|observed - predicted|``.
    """
    check_aligned(prediction, test)
    if "prob" not in prediction:
        raise InputError("level_reliability needs level probabilities 'prob (pair, "
                         "rating_level)': predictions on a discrete rating scale have them")
    if not isinstance(bins, int | np.integer) or bins < 1:
        raise InputError(f"bins must be a positive integer, got {bins!r}")
    prob = prediction["prob"].transpose("pair", "rating_level")
    levels = np.asarray(prob["rating_level"].values, dtype=float)
    hit = np.isclose(np.asarray(test.rating, dtype=float)[:, None], levels[None, :])
    p, hit = prob.values.ravel(), hit.ravel()
    # a probability on a bin's edge (to rounding: 0.2 may be stored as 0.19999...) goes up
    which = np.clip(np.floor(p * bins + 1e-9), 0, bins - 1).astype(int)
    count = np.bincount(which, minlength=bins).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        predicted = np.bincount(which, weights=p, minlength=bins) / count
        observed = np.bincount(which, weights=hit, minlength=bins) / count
        se = np.sqrt(predicted * (1 - predicted) / count)
    centres = (np.arange(bins) + 0.5) / bins
    filled = count > 0
    ds = xr.Dataset(
        {"predicted": ("bin", predicted), "observed": ("bin", observed),
         "count": ("bin", count), "se": ("bin", se)},
        coords={"bin": centres},
    )
    ds["observed"].attrs["long_name"] = "share of forecasts whose level was the rating"
    ds.attrs["ece"] = float(np.sum(count[filled] * np.abs(observed[filled] - predicted[filled]))
                            / count.sum())
    ds.attrs["n_ratings"] = len(test)
    return ds
