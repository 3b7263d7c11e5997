"""One format for predicted ratings, whatever made them.

A *prediction* is an :class:`xarray.Dataset` over the dimension ``pair`` (one entry
per (user, item) pair asked for), with the non-index coordinates ``user`` and
``item`` holding the raw ids.  Its variables:

``mean`` (pair)
    Expected rating (posterior-predictive mean, averaged over draws), clipped to
    the rating scale.  RMSE uses it.
``median`` (pair)
    Median of the predictive distribution, clipped.  MAE uses it.
``mode`` (pair)
    Most probable rating level (discrete scales; nearest level to ``mean`` for
    models that do not give level probabilities).  Exact-rating accuracy uses it.
``sd`` (pair)
    Standard deviation of the predictive distribution (includes rating noise).
``quantiles`` (pair, quantile)
    Predictive quantiles at :data:`QUANTILES`, clipped to the scale; central
    intervals (and their coverage) come from these.
``prob`` (pair, rating_level), optional
    Probability of each rating level, for models that predict categories.
``mu`` (chain, draw, pair), optional
    Expected rating per posterior draw.
``rating`` (chain, draw, pair), optional
    Posterior-predictive rating draws.

Builders here turn draws, Gaussian parameters or level probabilities into this
format, so that models, baselines and metrics agree on it.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy import stats

from bayesrec.data.scale import RatingScale

__all__ = [
    "QUANTILES",
    "from_draws",
    "from_normal",
    "from_probabilities",
    "central_interval",
    "draw_quantiles",
]

#: Quantile levels stored in every prediction: central intervals at 50, 80, 90 and 95 %.
QUANTILES = (0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.975)


def draw_quantiles(draws: np.ndarray, probs) -> np.ndarray:
    """Quantiles ``probs`` of ``draws`` (samples x pairs) per pair: (len(probs), pairs).

    The same numbers as ``np.quantile(draws, probs, axis=0)`` (its default
    ``"linear"`` method), from one sort along the sample axis: about three times
    faster than numpy's partition-based quantiles for thousands of draws of tens of
    thousands of pairs, which is most of the time a prediction's summary takes.
    """
    draws = np.sort(np.asarray(draws, dtype=float), axis=0)
    position = np.asarray(probs, dtype=float) * (draws.shape[0] - 1)
    below = np.floor(position).astype(np.int64)
    above = np.minimum(below + 1, draws.shape[0] - 1)
    weight = (position - below)[:, None]
    return draws[below] * (1 - weight) + draws[above] * weight


def _frame(users, items, scale: RatingScale, data: dict, attrs: dict | None = None) -> xr.Dataset:
    coords = {
        "user": ("pair", np.asarray(users)),
        "item": ("pair", np.asarray(items)),
        "quantile": np.asarray(QUANTILES),
    }
    if scale.levels is not None:
        coords["rating_level"] = np.asarray(scale.levels)
    ds = xr.Dataset(data, coords=coords)
    ds.attrs.update({"scale": str(scale), "scale_low": scale.low, "scale_high": scale.high})
    if scale.levels is not None:
        ds.attrs["scale_levels"] = np.asarray(scale.levels)
    ds.attrs.update(attrs or {})
    return ds


def _mode_from_mean(mean: np.ndarray, scale: RatingScale) -> np.ndarray:
    return scale.snap(mean) if scale.levels is not None else scale.clip(mean)


def from_normal(users, items, mean, sd, scale: RatingScale, *, attrs: dict | None = None) -> xr.Dataset:
    """Prediction from a Gaussian predictive ``Normal(mean, sd)`` per pair (plug-in baselines)."""
    mean = np.asarray(mean, dtype=float)
    sd = np.broadcast_to(np.asarray(sd, dtype=float), mean.shape)
    q = stats.norm.ppf(np.asarray(QUANTILES))[None, :] * sd[:, None] + mean[:, None]
    data = {
        "mean": ("pair", scale.clip(mean)),
        "median": ("pair", scale.clip(mean)),
        "mode": ("pair", _mode_from_mean(mean, scale)),
        "sd": ("pair", sd.copy()),
        "quantiles": (("pair", "quantile"), scale.clip(q)),
    }
    return _frame(users, items, scale, data, attrs)


def from_probabilities(users, items, prob, scale: RatingScale, *, prob_draws=None,
                       attrs: dict | None = None) -> xr.Dataset:
    """Prediction from level probabilities ``prob`` (pair, rating_level).

    ``prob_draws`` (chain, draw, pair, rating_level), when given, is kept as
    posterior uncertainty about the probabilities (``prob`` is then its mean).
    """
    levels = np.asarray(scale.levels)
    prob = np.asarray(prob, dtype=float)
    prob = prob / prob.sum(axis=-1, keepdims=True)
    mean = prob @ levels
    sd = np.sqrt(np.maximum(prob @ levels**2 - mean**2, 0.0))
    cdf = np.cumsum(prob, axis=-1)
    qidx = (cdf[:, None, :] < np.asarray(QUANTILES)[None, :, None] - 1e-12).sum(-1)
    quantiles = levels[np.minimum(qidx, len(levels) - 1)]
    data = {
        "mean": ("pair", mean),
        "median": ("pair", quantiles[:, QUANTILES.index(0.5)]),
        "mode": ("pair", levels[np.argmax(prob, axis=-1)]),
        "sd": ("pair", sd),
        "quantiles": (("pair", "quantile"), quantiles),
        "prob": (("pair", "rating_level"), prob),
    }
    if prob_draws is not None:
        data["prob_draws"] = (("chain", "draw", "pair", "rating_level"), np.asarray(prob_draws))
    return _frame(users, items, scale, data, attrs)


def from_draws(users, items, rating_draws, scale: RatingScale, *, mu_draws=None,
               prob=None, keep_draws: bool = True, attrs: dict | None = None) -> xr.Dataset:
    """Prediction from posterior-predictive draws ``rating_draws`` (chain, draw, pair).

    ``mu_draws`` (chain, draw, pair) are expected ratings per draw: when given,
    ``mean`` averages them (less Monte Carlo noise than averaging rating draws).
    ``prob`` (pair, rating_level), when the model gives level probabilities (the
    posterior-mean predictive distribution), sets ``mode`` and is stored, and
    ``median``, ``quantiles`` and ``sd`` are computed from it exactly rather than
    from the draws; otherwise ``mode`` is the level nearest ``mean``.
    """
    rating_draws = np.asarray(rating_draws, dtype=float)
    flat = rating_draws.reshape(-1, rating_draws.shape[-1])
    mean = (np.asarray(mu_draws, dtype=float).reshape(-1, flat.shape[-1]).mean(0)
            if mu_draws is not None else flat.mean(0))
    q = draw_quantiles(flat, QUANTILES).T
    data = {
        "mean": ("pair", scale.clip(mean)),
        "median": ("pair", scale.clip(q[:, QUANTILES.index(0.5)])),
        "mode": ("pair", _mode_from_mean(mean, scale)),
        "sd": ("pair", flat.std(0, ddof=1) if flat.shape[0] > 1 else np.zeros(flat.shape[1])),
        "quantiles": (("pair", "quantile"), scale.clip(q)),
    }
    if prob is not None:
        exact = from_probabilities(users, items, prob, scale)
        for name in ("prob", "mode", "median", "quantiles", "sd"):
            data[name] = exact[name].variable
    if keep_draws:
        data["rating"] = (("chain", "draw", "pair"), rating_draws)
        if mu_draws is not None:
            data["mu"] = (("chain", "draw", "pair"), np.asarray(mu_draws, dtype=float))
    return _frame(users, items, scale, data, attrs)


def central_interval(prediction: xr.Dataset, level: float = 0.9) -> tuple[xr.DataArray, xr.DataArray]:
    """Lower and upper ends of the central predictive interval at ``level``."""
    lo, hi = round((1 - level) / 2, 10), round((1 + level) / 2, 10)
    available = [round(float(q), 10) for q in prediction["quantile"].values]
    if lo not in available or hi not in available:
        raise ValueError(
            f"level {level} needs the quantiles {lo} and {hi}; a prediction holds {available}"
        )
    return (prediction["quantiles"].sel(quantile=lo, method="nearest"),
            prediction["quantiles"].sel(quantile=hi, method="nearest"))
