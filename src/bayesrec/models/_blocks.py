"""Building blocks every model factory shares: coords, data containers, priors, likelihoods."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pymc as pm

from bayesrec.data.ratings import Ratings
from bayesrec.data.validate import check_positive, check_positive_int
from bayesrec.errors import InputError

__all__ = [
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
