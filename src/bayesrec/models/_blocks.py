"""Building blocks every model factory shares: coords, data containers, priors, likelihoods."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from pymc.distributions.dist_math import log_diff_normal_cdf, normal_lccdf, normal_lcdf
from pymc.distributions.shape_utils import rv_size_is_none
from pytensor.tensor.random.basic import NormalRV

from bayesrec.data.ratings import Ratings
from bayesrec.data.validate import check_positive, check_positive_int
from bayesrec.errors import InputError

__all__ = [
    "FactorNormal",
    "factor_rows",
    "symmetry_breaking",
    "LIKELIHOODS",
    "check_likelihood",
    "ordinal_likelihood",
    "ordinal_log_probs",
    "ordinal_probs",
    "check_link",
    "check_noise",
    "check_positive",
    "check_positive_int",
    "gaussian_likelihood",
    "likelihood_of",
    "merge_priors",
    "pair_data",
    "rating_coords",
    "with_biases",
]


def rating_coords(ratings: Ratings, **extra) -> dict[str, Any]:
    """Coords every factory uses: ``user``/``item`` labelled with raw ids, ``obs``; for a
    discrete scale ``rating_level`` (the levels) and ``cutpoint`` (labels ``"1|2"``, ...)."""
    coords = {
        "user": ratings.users.to_numpy(),
        "item": ratings.items.to_numpy(),
        "obs": np.arange(ratings.n_ratings),
    }
    if ratings.scale.levels is not None:
        levels = np.asarray(ratings.scale.levels)
        coords["rating_level"] = levels
        coords["cutpoint"] = [f"{a:g}|{b:g}" for a, b in zip(levels[:-1], levels[1:],
                                                              strict=True)]
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


def factor_rows(name: str, sd, dims: tuple[str, ...], mean=0.0):
    """Factor rows ``Normal(mean, sd^2)`` (inside a model context) whose initial point is
    the :func:`symmetry_breaking` pattern around the mean, not the all-zero saddle."""
    return FactorNormal(name, mean, sd, dims=dims)


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
                bias_sd, centre: float | None = None, offset: bool = True,
                user_mean=0.0, item_mean=0.0):
    """``offset + user_bias[u] + item_bias[i] + eta`` (inside a model context).

    ``bias_sd`` is a number, or a tensor (a hierarchical scale).  ``user_mean`` and
    ``item_mean`` are the biases' prior means (0, or a tensor per user / item: the
    feature part of a model with side information).  The offset is
    centred on the middle of the rating scale (identity link) or on 0 (logistic);
    ``offset=False`` leaves it out (ordinal likelihoods: the cutpoints place the levels).
    """
    scale = ratings.scale
    if centre is None:
        centre = 0.0 if link == "logistic" else (scale.low + scale.high) / 2
    user_bias = pm.Normal("user_bias", user_mean, bias_sd, dims="user")
    item_bias = pm.Normal("item_bias", item_mean, bias_sd, dims="item")
    eta = user_bias[user_idx] + item_bias[item_idx] + eta
    return pm.Normal("offset", centre, offset_sd) + eta if offset else eta


def likelihood_of(eta, ratings: Ratings, *, likelihood: str, link: str, noise, p: dict):
    """The Gaussian likelihood, or an ordinal one with cutpoints (see :func:`ordinal_likelihood`)."""
    if likelihood == "gaussian":
        return gaussian_likelihood(eta, ratings, link=link, noise=noise, noise_sd=p["noise_sd"])
    return ordinal_likelihood(eta, ratings, likelihood=likelihood, cutpoint_sd=p["cutpoint_sd"])


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


# ---------------------------------------------------------------------------------------------
# ratings as ordered categories
# ---------------------------------------------------------------------------------------------
LIKELIHOODS = ("gaussian", "ordered_probit", "ordered_logit")


def check_likelihood(likelihood: str, ratings: Ratings, *, link: str, noise) -> str:
    """A valid ``likelihood``; the ordinal ones need a discrete scale and no Gaussian options."""
    if likelihood not in LIKELIHOODS:
        raise InputError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}")
    if likelihood == "gaussian":
        return likelihood
    if ratings.scale.levels is None:
        raise InputError(
            f"likelihood={likelihood!r} models ratings as ordered categories and needs a "
            f"discrete rating scale, got {ratings.scale}; declare the levels, e.g. "
            "scale=[1, 2, 3, 4, 5]")
    if link != "identity" or noise != "learned":
        raise InputError(
            f"link and noise belong to the Gaussian likelihood; likelihood={likelihood!r} has "
            "a latent noise of unit scale and its cutpoints map onto the levels: leave "
            "link='identity' and noise='learned'")
    return likelihood


def ordinal_log_probs(eta, cutpoints, likelihood: str):
    r"""``log P(r = level k | eta)`` for every level: ``(..., n_levels)``.

    The rating is level :math:`k` when a latent :math:`z = \eta + \varepsilon` falls
    between the cutpoints :math:`c_{k-1} < z \le c_k` (:math:`c_{-1} = -\infty`,
    :math:`c_{K-1} = +\infty`), with :math:`\varepsilon` standard normal (ordered probit)
    or standard logistic (ordered logit): :math:`P(k) = F(c_k - \eta) - F(c_{k-1} - \eta)`.
    Computed in log space without cancellation (PyMC's ``log_diff_normal_cdf`` for the
    probit; :math:`\log F(b) + \log(1 - e^{\log F(a) - \log F(b)})` for the logit).
    """
    eta = pt.shape_padright(pt.as_tensor_variable(eta))
    centred = cutpoints - eta  # (..., K - 1): c_k - eta
    if likelihood == "ordered_probit":
        inner = log_diff_normal_cdf(0.0, 1.0, centred[..., 1:], centred[..., :-1])
        first = normal_lcdf(0.0, 1.0, centred[..., :1])
        last = normal_lccdf(0.0, 1.0, centred[..., -1:])
    else:
        log_f = -pt.softplus(-centred)  # log F(c_k - eta), F the logistic CDF
        inner = log_f[..., 1:] + pm.math.log1mexp(log_f[..., :-1] - log_f[..., 1:])
        first = log_f[..., :1]
        last = -pt.softplus(centred[..., -1:])  # log(1 - F(c_last - eta))
    return pt.concatenate([first, inner, last], axis=-1)


def ordinal_probs(eta, cutpoints, likelihood: str):
    """``P(r = level k | eta)`` for every level, ``(..., n_levels)``, as differences of the
    latent CDF at the cutpoints: the same numbers as ``exp(ordinal_log_probs)`` to double
    precision in absolute terms, several times faster (prediction evaluates it for every
    pair and draw; the log-likelihood keeps the log-space form)."""
    eta = pt.shape_padright(pt.as_tensor_variable(eta))
    centred = cutpoints - eta
    if likelihood == "ordered_probit":
        cdf, sf = 0.5 * pt.erfc(-centred / np.sqrt(2.0)), 0.5 * pt.erfc(centred / np.sqrt(2.0))
    else:
        cdf, sf = pt.sigmoid(centred), pt.sigmoid(-centred)
    zeros = pt.zeros_like(cdf[..., :1])
    cdf = pt.concatenate([zeros, cdf, zeros + 1.0], axis=-1)
    sf = pt.concatenate([zeros + 1.0, sf, zeros], axis=-1)
    upper = pt.concatenate([centred, zeros + 1.0], axis=-1)  # c_k - eta at each upper edge
    # each level from the side where it is accurate: a level far in the upper tail keeps
    # its tiny probability instead of 1 - 1 = 0
    return pt.maximum(pt.switch(upper <= 0, cdf[..., 1:] - cdf[..., :-1],
                                sf[..., :-1] - sf[..., 1:]), 0.0)


def _ordinal_logp(value, eta, cutpoints, likelihood):
    log_p = ordinal_log_probs(eta, cutpoints, likelihood)
    return pt.take_along_axis(log_p, pt.shape_padright(value), axis=-1)[..., 0]


def _ordinal_dist(eta, cutpoints, likelihood, size):
    # inverse CDF: the level is the number of cumulative probabilities (all but the last)
    # below a uniform draw (a vectorised graph; pm.Categorical's draw loops over pairs)
    prob = pt.exp(ordinal_log_probs(eta, cutpoints, likelihood))
    u = pm.Uniform.dist(0.0, 1.0, size=prob.shape[:-1] if size is None else size)
    return pt.lt(pt.cumsum(prob, axis=-1)[..., :-1], u[..., None]).sum(axis=-1).astype("int64")


def ordinal_likelihood(eta, ratings: Ratings, *, likelihood: str, cutpoint_sd: float):
    """Cutpoints, level probabilities ``prob``, ``mu`` and the observed level codes.

    Inside a model context whose coords hold ``rating_level`` and ``cutpoint``.  The
    cutpoints are ordered, with ``Normal`` priors centred on evenly spaced values from
    -1.5 to 1.5 latent units (x 1.7 for the logit, whose latent sd is pi/sqrt(3)) and sd
    ``cutpoint_sd`` (same scaling): identified, since the latent noise has unit scale
    and the linear predictor has no free offset.
    """
    n_levels = len(ratings.scale.levels)
    spread = 1.0 if likelihood == "ordered_probit" else 1.7
    cutpoints = pm.Normal("cutpoints", mu=spread * np.linspace(-1.5, 1.5, n_levels - 1),
                          sigma=spread * cutpoint_sd, dims="cutpoint",
                          transform=pm.distributions.transforms.ordered)
    prob = pm.Deterministic("prob", ordinal_probs(eta, cutpoints, likelihood),
                            dims=("obs", "rating_level"))
    pm.Deterministic("mu", prob @ np.asarray(ratings.scale.levels, dtype=float), dims="obs")
    return pm.CustomDist(
        "rating", eta, cutpoints,
        logp=lambda value, e, c: _ordinal_logp(value, e, c, likelihood),
        dist=lambda e, c, size: _ordinal_dist(e, c, likelihood, size),
        signature="(),(c)->()", dtype="int64", observed=ratings.level_codes, dims="obs")
