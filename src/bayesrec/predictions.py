"""One format for predicted ratings, whatever made them.

A *prediction* is an :class:`xarray.Dataset` over the dimension ``pair`` (one entry
per (user, item) pair asked for), with the non-index coordinates ``user`` and
``item`` holding the raw ids.  Its variables:

``mean`` (pair)
    Expected rating (posterior mean of the model's expected rating ``mu``), clipped
    to the rating scale.  RMSE uses it.
``expected`` (pair)
    The same expectation *not* clipped: an item predicted above the top of the
    scale keeps its order, so rankings use it.
``median`` (pair)
    Median of the predictive distribution.  MAE uses it.
``mode`` (pair)
    Most probable rating level (discrete scales: the level of largest ``prob``;
    on a continuous scale, ``mean`` clipped).  Exact-rating accuracy uses it.
``sd`` (pair)
    Standard deviation of the predictive distribution (includes rating noise).
``quantiles`` (pair, quantile)
    Predictive quantiles at :data:`QUANTILES`; central intervals (and their
    coverage) come from these.
``prob`` (pair, rating_level), on discrete scales
    Probability of each rating level.  Models that predict categories (MMSBM, the
    ordinal likelihoods) give it directly; for a continuous predictive it is the
    predictive mass of each level's interval between the midpoints of adjacent
    levels (:attr:`~bayesrec.data.scale.RatingScale.edges`; the ends take the tails),
    the posterior mean over draws of the exact mass given each draw.  So every model,
    baselines included, has level probabilities, and the log predictive density of
    :func:`bayesrec.metrics.score` compares them all.
``mu`` (chain, draw, pair), optional
    Expected rating per posterior draw (the model's, not clipped).
``rating`` (chain, draw, pair), optional
    Posterior-predictive rating draws, on the scale.

**The predictive distribution lives on the scale.**  A model with a Gaussian (or
other continuous) likelihood predicts a latent rating that may leave the scale; its
predictive rating is that latent value *clipped* to ``[low, high]`` (a censored
distribution: the mass beyond an end sits on the end).  This one convention holds
for every scale, discrete or continuous, and for everything derived from the
predictive: the stored ``rating`` draws, ``median``, ``sd``, ``quantiles`` and so
the interval coverage of :func:`bayesrec.metrics.score`.  Draws are not rounded onto
the levels of a discrete scale: rounding makes a central interval on a five-level
scale cover far more than its nominal level (as the level-valued intervals of
categorical models do), which would hide a miscalibrated model.  Models that predict
categories (MMSBM) draw levels, and their median and quantiles are levels.  ``mean``
is not the mean of the clipped draws: it is the posterior mean of the expected
rating, clipped (what RMSE has always scored).

Builders here turn draws, Gaussian parameters or level probabilities into this
format, so that models, baselines and metrics agree on it; :class:`DrawSummary`
builds it block by block, so that a prediction of many pairs never holds all their
draws at once.
"""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr
from scipy.special import ndtr, ndtri

from bayesrec.data.scale import RatingScale
from bayesrec.errors import FitError, FitWarning

__all__ = [
    "QUANTILES",
    "DrawSummary",
    "censored_normal_sd",
    "central_interval",
    "draw_quantiles",
    "from_draws",
    "from_normal",
    "from_probabilities",
    "level_summary",
    "normal_level_probabilities",
    "on_scale",
    "probabilities_from_cdf",
]

#: Quantile levels stored in every prediction: central intervals at 50, 80, 90 and 95 %.
QUANTILES = (0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.975)
_MEDIAN = QUANTILES.index(0.5)


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


def on_scale(draws, scale: RatingScale) -> np.ndarray:
    """Predictive draws on the scale: clipped to ``[low, high]`` (a new float array)."""
    return scale.clip(draws)


def _normal_pdf(x: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * np.square(x)) / np.sqrt(2 * np.pi)


def censored_normal_sd(mean, sd, low: float, high: float) -> np.ndarray:
    """Standard deviation of ``clip(X, low, high)`` for ``X ~ Normal(mean, sd)``.

    The censored Normal is the predictive of a Gaussian plug-in on a bounded scale
    (see the module docstring); with ``X`` within the scale it is ``sd`` itself.
    """
    mean = np.asarray(mean, dtype=float)
    sd = np.broadcast_to(np.asarray(sd, dtype=float), mean.shape)
    safe = np.where(sd > 0, sd, 1.0)
    a, b = (low - mean) / safe, (high - mean) / safe
    cdf_a, cdf_b = ndtr(a), ndtr(-b)  # mass at low, mass at high
    pdf_a, pdf_b = _normal_pdf(a), _normal_pdf(b)
    inside = np.maximum(1.0 - cdf_a - cdf_b, 0.0)
    # moments of X restricted to (low, high), each weighted by its probability
    first = mean * inside + safe * (pdf_a - pdf_b)
    second = ((mean**2 + safe**2) * inside + 2 * mean * safe * (pdf_a - pdf_b)
              + safe**2 * (a * pdf_a - b * pdf_b))
    m1 = low * cdf_a + high * cdf_b + first
    m2 = low**2 * cdf_a + high**2 * cdf_b + second
    out = np.sqrt(np.maximum(m2 - m1**2, 0.0))
    return np.where(sd > 0, out, 0.0)


def _frame(users, items, scale: RatingScale, data: dict, attrs: dict | None = None) -> xr.Dataset:
    mean = np.asarray(data["mean"][1], dtype=float)
    if not np.isfinite(mean).all():  # NaN never leaves a prediction
        bad = np.flatnonzero(~np.isfinite(mean))
        raise FitError(
            f"{len(bad)} of {len(mean)} predicted ratings are not finite (for example the "
            f"pair of user {np.asarray(users)[bad[0]]!r} and item {np.asarray(items)[bad[0]]!r}"
            "): the fit has degenerated (a parameter went to NaN or infinity); refit it, "
            "with another method, more regularisation or the model's default prior")
    sd = np.asarray(data["sd"][1], dtype=float) if "sd" in data else None
    if sd is not None and len(sd) > 1 and not (sd > 1e-6 * scale.width).any():
        warnings.warn(
            f"every one of the {len(sd)} predictions has no spread (sd < 1e-6 of the scale, "
            "zero-width "
            "intervals): the fit's noise scale has collapsed (one user, one item or identical "
            "ratings give a MAP no reason to keep any); its intervals claim a certainty it "
            "does not have; use a posterior method or more data", FitWarning, stacklevel=3)
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
    """Prediction from a Gaussian predictive ``Normal(mean, sd)`` per pair (plug-in baselines).

    The predictive rating is that Normal clipped to the scale (see the module
    docstring): quantiles are the Normal's, clipped; ``sd`` is the clipped
    distribution's (:func:`censored_normal_sd`); ``mean`` is ``mean`` clipped and
    ``expected`` is ``mean`` itself.
    """
    mean = np.asarray(mean, dtype=float)
    sd = np.broadcast_to(np.asarray(sd, dtype=float), mean.shape)
    q = ndtri(np.asarray(QUANTILES))[None, :] * sd[:, None] + mean[:, None]
    data = {
        "mean": ("pair", scale.clip(mean)),
        "expected": ("pair", mean.copy()),
        "median": ("pair", scale.clip(mean)),
        "mode": ("pair", _mode_from_mean(mean, scale)),
        "sd": ("pair", censored_normal_sd(mean, sd, scale.low, scale.high)),
        "quantiles": (("pair", "quantile"), scale.clip(q)),
    }
    if scale.levels is not None:  # the Normal's mass on each level; mode: the most probable
        prob = normal_level_probabilities(mean, sd, scale)
        data["prob"] = (("pair", "rating_level"), prob)
        data["mode"] = ("pair", np.asarray(scale.levels)[np.argmax(prob, axis=-1)])
    return _frame(users, items, scale, data, attrs)


def probabilities_from_cdf(cdf: np.ndarray) -> np.ndarray:
    """Level probabilities ``(..., n_levels)`` from a predictive CDF at the scale's
    :attr:`~bayesrec.data.scale.RatingScale.edges` ``(..., n_levels - 1)``: the mass of
    each level's interval (non-negative, summing to 1)."""
    cdf = np.maximum.accumulate(np.clip(np.asarray(cdf, dtype=float), 0.0, 1.0), axis=-1)
    pad = np.zeros((*cdf.shape[:-1], 1))
    return np.diff(np.concatenate([pad, cdf, pad + 1.0], axis=-1), axis=-1)


def normal_level_probabilities(mean, sd, scale: RatingScale) -> np.ndarray:
    """``(pair, rating_level)``: the mass of ``Normal(mean, sd)`` on each level's interval
    (sd 0: all mass on the level whose interval holds ``mean``)."""
    mean = np.asarray(mean, dtype=float)[:, None]
    sd = np.broadcast_to(np.asarray(sd, dtype=float), mean.shape[:1])[:, None]
    edges = scale.edges[None, :]
    safe = np.where(sd > 0, sd, 1.0)
    z = (edges - mean) / safe
    cdf = np.where(sd > 0, ndtr(z), (edges >= mean).astype(float))
    sf = np.where(sd > 0, ndtr(-z), (edges < mean).astype(float))
    below = probabilities_from_cdf(cdf)
    pad = np.ones_like(z[:, :1])
    sf_full = np.concatenate([pad, sf, 0 * pad], axis=1)
    above = np.maximum(sf_full[:, :-1] - sf_full[:, 1:], 0.0)
    upper_z = np.concatenate([z, pad], axis=1)  # each interval from its accurate side
    return np.where(upper_z <= 0, below, above)


def level_summary(prob: np.ndarray, scale: RatingScale) -> dict[str, np.ndarray]:
    """``mean``, ``median``, ``mode``, ``sd``, ``quantiles`` and ``prob`` of level
    probabilities ``prob`` (pair, rating_level), as arrays (quantiles: the smallest
    level whose cumulative probability reaches the quantile's)."""
    levels = np.asarray(scale.levels)
    prob = np.asarray(prob, dtype=float)
    prob = prob / prob.sum(axis=-1, keepdims=True)
    mean = prob @ levels
    sd = np.sqrt(np.maximum(prob @ levels**2 - mean**2, 0.0))
    cdf = np.cumsum(prob, axis=-1)
    qidx = (cdf[:, None, :] < np.asarray(QUANTILES)[None, :, None] - 1e-12).sum(-1)
    quantiles = levels[np.minimum(qidx, len(levels) - 1)]
    return {"mean": mean, "median": quantiles[:, _MEDIAN],
            "mode": levels[np.argmax(prob, axis=-1)], "sd": sd, "quantiles": quantiles,
            "prob": prob}


def from_probabilities(users, items, prob, scale: RatingScale, *, prob_draws=None,
                       attrs: dict | None = None) -> xr.Dataset:
    """Prediction from level probabilities ``prob`` (pair, rating_level).

    ``prob_draws`` (chain, draw, pair, rating_level), when given, is kept as
    posterior uncertainty about the probabilities (``prob`` is then its mean).
    """
    summary = level_summary(prob, scale)
    data = {name: (_DIMS[name], value) for name, value in summary.items()}
    data["expected"] = ("pair", summary["mean"].copy())
    if prob_draws is not None:
        data["prob_draws"] = (("chain", "draw", "pair", "rating_level"), np.asarray(prob_draws))
    return _frame(users, items, scale, data, attrs)


_DIMS = {"mean": ("pair",), "expected": ("pair",), "median": ("pair",), "mode": ("pair",),
         "sd": ("pair",), "quantiles": ("pair", "quantile"), "prob": ("pair", "rating_level")}


class DrawSummary:
    """A prediction of ``n_pairs`` pairs built block by block from predictive draws.

    Each :meth:`add` summarises the draws of a block of pairs (``rating`` and ``mu``,
    samples x block) and keeps only the summaries (about 15 numbers per pair, plus
    the level probabilities of categorical models), so the memory a prediction
    needs is that of one block's draws, whatever the number of pairs.  With
    ``keep_draws`` (``n_chain`` x ``n_draw`` samples) it also fills the full draw
    arrays ``rating`` and ``mu`` (chain, draw, pair).

    The summaries of a block are exactly those of :func:`from_draws` on its draws.
    """

    def __init__(self, n_pairs: int, scale: RatingScale, *, with_prob: bool = False,
                 keep_draws: bool = False, n_chain: int = 1, n_draw: int = 1,
                 categorical: bool = True):
        self.scale, self.n_pairs, self.categorical = scale, int(n_pairs), categorical
        self.keep_draws, self.shape = keep_draws, (int(n_chain), int(n_draw))
        n = self.n_pairs
        self.data = {name: np.empty(n) for name in ("mean", "expected", "median", "mode", "sd")}
        self.data["quantiles"] = np.empty((n, len(QUANTILES)))
        if with_prob:
            self.data["prob"] = np.empty((n, scale.n_levels))
        self.draws = ({"rating": np.empty((*self.shape, n)), "mu": None} if keep_draws
                      else None)

    def add(self, where: slice, rating, mu=None, prob=None) -> None:
        """Summarise one block: ``rating`` draws (samples x block; clipped here),
        ``mu`` (samples x block, optional) and ``prob`` (block x levels, optional:
        the posterior-mean level probabilities)."""
        rating = on_scale(rating, self.scale)
        for name, value in summarise_draws(rating, self.scale, mu=mu, prob=prob,
                                           clipped=True, categorical=self.categorical).items():
            self.data[name][where] = value
        if self.draws is not None:
            self.draws["rating"][..., where] = rating.reshape(*self.shape, -1)
            if mu is not None:
                if self.draws["mu"] is None:
                    self.draws["mu"] = np.empty((*self.shape, self.n_pairs))
                self.draws["mu"][..., where] = np.asarray(mu, dtype=float).reshape(
                    *self.shape, -1)

    def add_levels(self, where: slice, prob) -> None:
        """Summarise one block of a categorical model from its posterior-mean level
        probabilities ``prob`` (block x levels) alone: its exact predictive distribution,
        whose mean is the posterior mean of the expected rating."""
        exact = level_summary(prob, self.scale)
        for name, value in exact.items():
            self.data[name][where] = value
        self.data["expected"][where] = exact["mean"]

    def dataset(self, users, items, attrs: dict | None = None) -> xr.Dataset:
        """The prediction (see the module docstring)."""
        data = {name: (_DIMS[name], value) for name, value in self.data.items()}
        if self.draws is not None:
            for name, value in self.draws.items():
                if value is not None:
                    data[name] = (("chain", "draw", "pair"), value)
        return _frame(users, items, self.scale, data, attrs)


def summarise_draws(rating, scale: RatingScale, *, mu=None, prob=None,
                    clipped: bool = False, categorical: bool = True) -> dict[str, np.ndarray]:
    """Per-pair summaries of predictive draws ``rating`` (samples x pairs).

    ``rating`` is clipped to the scale first unless ``clipped``.  ``mean`` and
    ``expected`` average ``mu`` (samples x pairs) when given (less Monte Carlo noise
    than the rating draws).  With ``prob`` (pairs x levels), ``mode`` is its most
    probable level; for a ``categorical`` model (one that draws levels) ``median``,
    ``quantiles`` and ``sd`` are computed from it exactly too, while a continuous
    predictive keeps them from its (clipped, unrounded) draws.
    """
    rating = np.asarray(rating, dtype=float) if clipped else on_scale(rating, scale)
    expected = (np.asarray(mu, dtype=float).mean(0) if mu is not None else rating.mean(0))
    q = draw_quantiles(rating, QUANTILES).T
    mean = scale.clip(expected)
    out = {
        "mean": mean,
        "expected": expected,
        "median": q[:, _MEDIAN],
        "mode": _mode_from_mean(mean, scale),
        "sd": rating.std(0, ddof=1) if rating.shape[0] > 1 else np.zeros(rating.shape[1]),
        "quantiles": q,
    }
    if prob is not None:
        exact = level_summary(prob, scale)
        names = ("prob", "mode", "median", "quantiles", "sd") if categorical else ("prob",
                                                                                   "mode")
        for name in names:
            out[name] = exact[name]
    return out


def from_draws(users, items, rating_draws, scale: RatingScale, *, mu_draws=None,
               prob=None, keep_draws: bool = True, attrs: dict | None = None) -> xr.Dataset:
    """Prediction from posterior-predictive draws ``rating_draws`` (chain, draw, pair).

    The draws are clipped to the scale (see the module docstring).  ``mu_draws``
    (chain, draw, pair) are expected ratings per draw: when given, ``mean`` averages
    them (less Monte Carlo noise than averaging rating draws).  ``prob`` (pair,
    rating_level), when the model gives level probabilities (the posterior-mean
    predictive distribution), sets ``mode`` and is stored, and ``median``,
    ``quantiles`` and ``sd`` are computed from it exactly rather than from the
    draws; otherwise ``mode`` is the level nearest ``mean``.
    """
    rating_draws = np.asarray(rating_draws, dtype=float)
    n_chain, n_draw, n_pairs = rating_draws.shape
    summary = DrawSummary(n_pairs, scale, with_prob=prob is not None, keep_draws=keep_draws,
                          n_chain=n_chain, n_draw=n_draw)
    mu = None if mu_draws is None else np.asarray(mu_draws, dtype=float).reshape(-1, n_pairs)
    summary.add(slice(0, n_pairs), rating_draws.reshape(-1, n_pairs), mu=mu, prob=prob)
    return summary.dataset(users, items, attrs)


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
