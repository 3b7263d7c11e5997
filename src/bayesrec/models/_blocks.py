"""Building blocks every model factory shares: coords, data containers, priors, likelihoods."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from pymc.distributions.shape_utils import rv_size_is_none
from pytensor.tensor.random.basic import NormalRV

from bayesrec.data.ratings import Ratings
from bayesrec.data.validate import check_positive, check_positive_int
from bayesrec.errors import InputError

__all__ = [
    "FactorNormal",
    "factor_rows",
    "symmetry_breaking",
    "check_link",
    "check_noise",
    "check_positive",
    "check_positive_int",
    "gaussian_likelihood",
    "merge_priors",
    "pair_data",
    "rating_coords",
    "with_biases",
]


def rating_coords(ratings: Ratings, **extra) -> dict[str, Any]:
    """Coords every factory uses: ``user``/``item`` labelled with raw ids, ``obs``."""
    coords = {
        "user": ratings.users.to_numpy(),
        "item": ratings.items.to_numpy(),
        "obs": np.arange(ratings.n_ratings),
    }
    if ratings.scale.levels is not None:
        coords["rating_level"] = np.asarray(ratings.scale.levels)
    coords.update(extra)
    return coords


def pair_data(ratings: Ratings):
    """The swappable data containers ``user_idx`` and ``item_idx`` (dims ``obs``).

    Must be called inside the model context.  Prediction swaps them for new
    pairs with :func:`pymc.set_data`.
    """
    user_idx = pm.Data("user_idx", ratings.user.astype(np.int64), dims="obs")
    item_idx = pm.Data("item_idx", ratings.item.astype(np.int64), dims="obs")
    return user_idx, item_idx


def symmetry_breaking(shape, scale):
    """A small, fixed, non-zero pattern of ``shape`` (a tensor): ``0.1 * scale * cos(...)``.

    All-zero factors are a saddle point of every factor model's posterior (the gradient
    of each side's factors vanishes when the other side's are zero), so PyMC's tools
    that start from a model's initial point (``pm.find_MAP()``, a sampler's default
    start) would stay there.  This deterministic pattern (no random state) is the
    initial point of factor rows instead: 10 % of their prior sd, every entry different.
    """
    size = pt.prod(shape)
    pattern = pt.cos(1.0 + 2.399963 * pt.arange(size, dtype="float64"))
    return 0.1 * scale * pattern.reshape(shape)


class FactorNormalRV(NormalRV):
    """:class:`~pytensor.tensor.random.basic.NormalRV` whose PyMC initial point is
    :func:`symmetry_breaking` instead of the mean (its density, draws and every backend's
    implementation are the Normal's, through the class hierarchy)."""

    name = "normal"  # the backends draw with rng.<name>: the Normal's draws
    _print_name = ("FactorNormal", "\\operatorname{FactorNormal}")


class FactorNormal(pm.Normal):
    """``pm.Normal`` whose initial value breaks the symmetry of factor models.

    The same distribution as ``pm.Normal(mu, sigma)``; only the model's initial point
    differs (:func:`symmetry_breaking` around ``mu``).  Initial values given as
    ``initval=`` would do that too, but PyMC's model transforms (``pm.do``,
    ``pm.observe``, ``pm.compute_log_likelihood``) refuse models that have them.
    """

    rv_op = FactorNormalRV()

    def support_point(rv, size, mu, sigma):
        mu, sigma = pt.broadcast_arrays(mu, sigma)
        if not rv_size_is_none(size):
            mu, sigma = pt.full(size, mu), pt.full(size, sigma)
        return mu + symmetry_breaking(mu.shape, sigma)


def factor_rows(name: str, sd, dims: tuple[str, ...]):
    """Factor rows ``Normal(0, sd^2)`` (inside a model context) whose initial point is the
    :func:`symmetry_breaking` pattern, not the all-zero saddle."""
    return FactorNormal(name, 0.0, sd, dims=dims)


def merge_priors(defaults: Mapping[str, Any], priors: Mapping[str, Any] | None,
                 model: str) -> dict[str, Any]:
    """Defaults overridden by the caller's ``priors``, checked when the model is built.

    Every prior setting of the zoo is a positive scale or concentration: a value
    that is not a positive finite number (a string, a distribution object, a
    boolean) raises here, naming the key, instead of failing deep inside PyTensor
    at fit time.  Unknown keys raise listing the valid ones.
    """
    if priors is not None and not isinstance(priors, Mapping):
        raise InputError(f"priors of {model} must be a dict of prior settings by name "
                         f"(valid keys: {sorted(defaults)}), got {type(priors).__name__}")
    priors = dict(priors or {})
    unknown = sorted(set(priors) - set(defaults))
    if unknown:
        raise InputError(
            f"unknown prior(s) {unknown} for {model}; valid keys are {sorted(defaults)}"
        )
    merged = {**defaults, **priors}
    for key, value in merged.items():
        if (isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating))
                or not np.isfinite(value) or value <= 0):
            raise InputError(f"prior {key!r} of {model} must be a positive number, got {value!r}"
                             + (" (a string: write the number without quotes)"
                                if isinstance(value, str) else ""))
        merged[key] = float(value)
    return merged


LINKS = ("identity", "logistic")


def check_link(link: str) -> str:
    if link not in LINKS:
        raise InputError(f"link must be one of {LINKS}, got {link!r}")
    return link


def check_noise(noise):
    """``"learned"`` or a fixed positive noise sd."""
    if isinstance(noise, str) and noise == "learned":
        return noise
    return check_positive(noise, "noise (a fixed noise sd, or 'learned')")


def with_biases(eta, ratings: Ratings, user_idx, item_idx, *, link: str, offset_sd: float,
                bias_sd, centre: float | None = None):
    """``offset + user_bias[u] + item_bias[i] + eta`` (inside a model context).

    ``bias_sd`` is a number, or a tensor (a hierarchical scale).  The offset is
    centred on the middle of the rating scale (identity link) or on 0 (logistic).
    """
    scale = ratings.scale
    if centre is None:
        centre = 0.0 if link == "logistic" else (scale.low + scale.high) / 2
    offset = pm.Normal("offset", centre, offset_sd)
    user_bias = pm.Normal("user_bias", 0.0, bias_sd, dims="user")
    item_bias = pm.Normal("item_bias", 0.0, bias_sd, dims="item")
    return offset + user_bias[user_idx] + item_bias[item_idx] + eta


def gaussian_likelihood(eta, ratings: Ratings, *, link: str, noise, noise_sd: float):
    """``mu = g(eta)`` as the deterministic ``mu`` and ``rating ~ Normal(mu, sigma)``.

    ``g`` is the identity, or ``low + (high - low) * logistic`` for ``link="logistic"``.
    ``noise`` is ``"learned"`` (``sigma ~ HalfNormal(noise_sd)``) or a fixed sd.
    """
    scale = ratings.scale
    if link == "logistic":
        eta = scale.low + scale.width * pm.math.sigmoid(eta)
    mu = pm.Deterministic("mu", eta, dims="obs")
    sigma = pm.HalfNormal("sigma", noise_sd) if noise == "learned" else noise
    return pm.Normal("rating", mu, sigma, observed=ratings.rating, dims="obs")
