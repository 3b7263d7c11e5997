r"""Every simulator of the zoo, and the embedded data set made by one of them.

* :func:`simulate_ratings`: a biased low-rank model with skewed activity and
  popularity, ratings rounded to 1..5 (PMF / BPMF's generative story);
  :func:`load_synthetic` is the embedded MovieLens-sized data set (943 users,
  1682 items, 100,000 ratings), regenerated from seed 0 every time, and
  :func:`true_mean` the noiseless expected rating of pairs.
* :func:`simulate_mmsbm`: the MMSBM's generative process (categorical ratings).
* :func:`simulate_mpma`: MPMA's mixture of a global and two local low-rank models.
* :func:`simulate_side_information`: a biased low-rank model whose user and item
  biases and factor means are planted linear functions of user and item metadata
  (PMF / BPMF with ``user_features`` / ``item_features``).
* :func:`simulate_ordinal_ratings`: the ordered probit (or logit) PMF / BPMF with
  biases, and :func:`true_level_probs` its true level probabilities of pairs.

Each returns the true parameters next to the ratings, so tests and notebooks can
check that a model recovers what generated the data.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Sequence
from numbers import Integral

import numpy as np
import xarray as xr

from bayesrec.data.ratings import Ratings
from bayesrec.data.scale import RatingScale
from bayesrec.data.validate import check_positive, check_positive_int
from bayesrec.errors import InputError

__all__ = ["simulate_ratings", "load_synthetic", "true_mean", "simulate_mmsbm", "simulate_mpma",
           "simulate_ordinal_ratings", "true_level_probs", "simulate_side_information"]

LOW_RANK_VARIANCE = 0.4  # Var(U_u . V_i) = K * factor_sd**4 when factor_sd is not given
MAX_USER_SHARE = 0.5  # no user rates more than half the items (unless n_ratings needs it)

_T_START = 874_724_710  # 1997-09-20, the first MovieLens 100K timestamp
_T_END = 893_286_638  # 1998-04-22, the last
_MAX_TOPUP_ROUNDS = 30


def simulate_ratings(
    n_users: int = 943,
    n_items: int = 1682,
    n_ratings: int = 100_000,
    *,
    n_factors: int = 5,
    global_mean: float = 3.5,
    user_bias_sd: float = 0.35,
    item_bias_sd: float = 0.45,
    factor_sd: float | None = None,
    noise_sd: float = 0.8,
    scale: RatingScale | str | None = "1-5",
    activity_skew: float = 1.0,
    popularity_skew: float = 1.5,
    seed=0,
) -> tuple[Ratings, xr.Dataset]:
    r"""Simulate explicit ratings from a biased matrix factorisation with known truth.

    The generative process, for user :math:`u`, item :math:`i` and factor
    :math:`k = 1..K`:

    .. math::

        b_u &\sim \mathcal N(0, \sigma_{b_u}^2), \qquad
        b_i \sim \mathcal N(0, \sigma_{b_i}^2), \qquad
        U_{uk}, V_{ik} \sim \mathcal N(0, \sigma_f^2) \\
        m_{ui} &= \mu + b_u + b_i + U_u \cdot V_i \\
        y_{ui} &= m_{ui} + \varepsilon_{ui}, \qquad
        \varepsilon_{ui} \sim \mathcal N(0, \sigma^2) \\
        r_{ui} &= \operatorname{clip}_{[\text{low}, \text{high}]}
                  \big(\text{nearest level of } y_{ui}\big)

    With ``scale=None`` there is no rounding or clipping: :math:`r_{ui} = y_{ui}`
    exactly (Gaussian noise, for recovery tests), on the continuous scale
    ``[min - 5%, max + 5%]`` of the data range.  With the defaults
    :math:`\operatorname{Var}(U_u \cdot V_i) = K \sigma_f^4 = 0.4` (about 30 % of the
    variance of :math:`y`), and the rounded ratings have mean about 3.45 (clipping
    at 5 pulls it below :math:`\mu`) and sd about 1.1; MovieLens 100K has 3.53 and 1.13.

    Which pairs are observed: user :math:`u` rates :math:`n_u` items, with
    :math:`n_u - 1` multinomial over users with log-normal activity weights
    (log-sd ``activity_skew``), capped at half the items; its items are drawn
    without repetition with probability proportional to log-normal popularity
    weights (log-sd ``popularity_skew``).  An item left unrated then takes over one
    rating of an item rated at least twice.  Every user and every item has at
    least one rating, no pair repeats, and there are exactly ``n_ratings`` ratings.
    The pairs are drawn in rounds (draw, drop repeats, top up), never by
    enumerating all user x item pairs: 70,000 x 10,000 x 10M ratings take about
    15 s and 1.5 GB.

    Timestamps (Unix seconds, within the MovieLens 100K period): each user starts
    at a uniform time and rates in one burst whose length is log-normal (median
    one hour, sometimes months); the ratings are returned in time order.

    Parameters
    ----------
    n_users, n_items, n_ratings : int
        Sizes; ``max(n_users, n_items) <= n_ratings <= n_users * n_items``.
    n_factors : int
        :math:`K`, the rank of the interaction term (0 for biases only).
    global_mean, user_bias_sd, item_bias_sd, noise_sd : float
        :math:`\mu`, :math:`\sigma_{b_u}`, :math:`\sigma_{b_i}`, :math:`\sigma`.
    factor_sd : float, optional
        :math:`\sigma_f`; default :math:`(0.4 / K)^{1/4}`.
    scale : RatingScale, "low-high" string, or None
        Discrete scale to round to (default 1..5); a continuous ``RatingScale``
        clips only; None for continuous, unclipped ratings.
    activity_skew, popularity_skew : float
        Log-sd of user activity and item popularity weights (0: uniform).
    seed : int, optional
        Seed of ``np.random.default_rng``; the same seed gives the same data.

    Returns
    -------
    ratings : Ratings
        User and item ids are the integers ``1..n_users`` and ``1..n_items``
        (code = id - 1).
    truth : xarray.Dataset
        ``user_factors (user, factor)``, ``item_factors (item, factor)``,
        ``user_bias (user)``, ``item_bias (item)``, scalars ``global_mean`` and
        ``noise_sd``; coords ``user``/``item`` equal ``ratings.users``/``items``;
        attrs record every setting and the seed.
    """
    n_users, n_items, n_ratings, n_factors = _check_sizes(n_users, n_items, n_ratings, n_factors)
    sds = {"user_bias_sd": user_bias_sd, "item_bias_sd": item_bias_sd, "noise_sd": noise_sd,
           "activity_skew": activity_skew, "popularity_skew": popularity_skew}
    if factor_sd is None:
        factor_sd = (LOW_RANK_VARIANCE / n_factors) ** 0.25 if n_factors else 0.0
    sds["factor_sd"] = factor_sd
    for name, value in sds.items():
        if not (np.isfinite(value) and value >= 0):
            raise InputError(f"{name} must be a finite number >= 0, got {value!r}")
    if not np.isfinite(global_mean):
        raise InputError(f"global_mean must be finite, got {global_mean!r}")
    if scale is not None:
        try:
            scale = RatingScale.coerce(scale)
        except ValueError as exc:
            raise InputError(str(exc)) from None

    rng = np.random.default_rng(seed)
    user_ids = np.arange(1, n_users + 1)
    item_ids = np.arange(1, n_items + 1)
    truth = xr.Dataset(
        {
            "user_factors": (("user", "factor"), rng.normal(0, factor_sd, (n_users, n_factors))),
            "item_factors": (("item", "factor"), rng.normal(0, factor_sd, (n_items, n_factors))),
            "user_bias": ("user", rng.normal(0, user_bias_sd, n_users)),
            "item_bias": ("item", rng.normal(0, item_bias_sd, n_items)),
            "global_mean": float(global_mean),
            "noise_sd": float(noise_sd),
        },
        coords={"user": user_ids, "item": item_ids, "factor": np.arange(n_factors)},
    )
    user, item = _sample_pairs(rng, n_users, n_items, n_ratings, activity_skew, popularity_skew)
    timestamp = _sample_times(rng, user, n_users)
    order = np.argsort(timestamp, kind="stable")
    user, item, timestamp = user[order], item[order], timestamp[order]

    values = true_mean(truth, user, item) + rng.normal(0, noise_sd, n_ratings)
    if scale is None:
        pad = 0.05 * max(np.ptp(values), 1e-6)
        scale = RatingScale.interval(values.min() - pad, values.max() + pad)
    else:
        values = scale.snap(values)
    ratings = Ratings.from_arrays(
        user_ids[user], item_ids[item], values, timestamps=timestamp, scale=scale,
        user_ids=user_ids, item_ids=item_ids,
    )
    truth.attrs = {
        "generator": "bayesrec.data.simulate.simulate_ratings",
        "n_users": n_users, "n_items": n_items, "n_ratings": n_ratings,
        "n_factors": n_factors, "global_mean": float(global_mean),
        **{k: float(v) for k, v in sds.items()},
        "scale": json.dumps(scale.to_dict()),
        "continuous": int(not scale.is_discrete),
        "seed": "None" if seed is None else str(seed),
    }
    return ratings, truth


def load_synthetic(**overrides) -> tuple[Ratings, xr.Dataset]:
    """The embedded default data set: :func:`simulate_ratings` with its defaults, seed 0.

    Any keyword of :func:`simulate_ratings` may be overridden, for example
    ``load_synthetic(n_users=100, n_items=50, n_ratings=2000)`` for a small copy.
    """
    valid = set(inspect.signature(simulate_ratings).parameters)
    unknown = sorted(set(overrides) - valid)
    if unknown:
        raise InputError(f"unknown setting(s) {unknown} for load_synthetic; valid: {sorted(valid)}")
    settings = {"seed": 0, **overrides}
    return simulate_ratings(**settings)


def true_mean(truth: xr.Dataset, user_codes, item_codes) -> np.ndarray:
    r"""The noiseless expected rating :math:`\mu + b_u + b_i + U_u \cdot V_i` of pairs.

    Parameters
    ----------
    truth : xarray.Dataset
        As returned by :func:`simulate_ratings`.
    user_codes, item_codes : array-like of int
        Codes (positions along ``truth.user`` / ``truth.item``), one per pair.
    """
    user_codes = np.asarray(user_codes)
    item_codes = np.asarray(item_codes)
    if user_codes.shape != item_codes.shape or user_codes.ndim != 1:
        raise InputError(
            f"user_codes and item_codes must be 1-d of the same length, got shapes "
            f"{user_codes.shape} and {item_codes.shape}"
        )
    for what, codes in (("user", user_codes), ("item", item_codes)):
        n = truth.sizes[what]
        if codes.size and (codes.dtype.kind not in "iu" or codes.min() < 0 or codes.max() >= n):
            raise InputError(f"{what}_codes must be integers in 0..{n - 1}")
    U = truth["user_factors"].to_numpy()
    V = truth["item_factors"].to_numpy()
    interaction = np.einsum("nk,nk->n", U[user_codes], V[item_codes])
    return (
        float(truth["global_mean"])
        + truth["user_bias"].to_numpy()[user_codes]
        + truth["item_bias"].to_numpy()[item_codes]
        + interaction
    )


# ----------------------------------------------------------------------------------------------
# MMSBM and MPMA
# ----------------------------------------------------------------------------------------------
def simulate_ordinal_ratings(
    n_users: int = 100,
    n_items: int = 80,
    n_ratings: int = 3000,
    *,
    n_factors: int = 2,
    user_bias_sd: float = 0.5,
    item_bias_sd: float = 0.5,
    factor_sd: float = 0.6,
    cutpoints: Sequence[float] | None = None,
    scale: RatingScale | Sequence[float] | str = "1-5",
    likelihood: str = "ordered_probit",
    seed=0,
) -> tuple[Ratings, xr.Dataset]:
    r"""Ordinal ratings from the ordered probit (or logit) factor model, with the truth.

    .. math::

        \eta_{ui} = b_u + c_i + U_u \cdot V_i, \qquad
        z_{ui} = \eta_{ui} + \varepsilon_{ui}, \qquad
        r_{ui} = \text{level } k \text{ when } \gamma_{k-1} < z_{ui} \le \gamma_k

    with ``b_u ~ N(0, user_bias_sd^2)``, ``c_i ~ N(0, item_bias_sd^2)``, factor entries
    ``N(0, factor_sd^2)``, :math:`\varepsilon` standard normal (``"ordered_probit"``) or
    standard logistic (``"ordered_logit"``): the generative process of ``pmf`` / ``bpmf``
    with that ``likelihood``.  The pairs are drawn as in :func:`simulate_ratings`
    (skewed activity and popularity, every user and item rated).

    Parameters
    ----------
    cutpoints : sequence of float, optional
        Increasing, one fewer than the levels; default evenly spaced from -1.5 to 1.5
        (x 1.7 for the logit), the centre of the models' cutpoint prior.
    scale : RatingScale, levels or "low-high" string
        A discrete scale (half stars, 1..10, ...).

    Returns
    -------
    ratings : Ratings
    truth : xarray.Dataset
        ``user_factors``, ``item_factors``, ``user_bias``, ``item_bias`` and
        ``cutpoints (cutpoint)``; attrs record the settings.
    """
    n_users, n_items, n_ratings, n_factors = _check_sizes(n_users, n_items, n_ratings, n_factors)
    try:
        scale = RatingScale.coerce(scale)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    if scale.levels is None:
        raise InputError("simulate_ordinal_ratings needs a discrete scale (levels)")
    if likelihood not in ("ordered_probit", "ordered_logit"):
        raise InputError(f"likelihood must be 'ordered_probit' or 'ordered_logit', got "
                         f"{likelihood!r}")
    levels = np.asarray(scale.levels, dtype=float)
    spread = 1.0 if likelihood == "ordered_probit" else 1.7
    cut = (spread * np.linspace(-1.5, 1.5, len(levels) - 1) if cutpoints is None
           else np.asarray(cutpoints, dtype=float))
    if cut.shape != (len(levels) - 1,) or not np.all(np.diff(cut) > 0):
        raise InputError(f"cutpoints must be {len(levels) - 1} increasing numbers (one fewer "
                         f"than the {len(levels)} levels), got {cut.tolist()}")
    for name, value in (("user_bias_sd", user_bias_sd), ("item_bias_sd", item_bias_sd),
                        ("factor_sd", factor_sd)):
        if not (np.isfinite(value) and value >= 0):
            raise InputError(f"{name} must be a finite number >= 0, got {value!r}")
    rng = np.random.default_rng(seed)
    user_ids, item_ids = np.arange(1, n_users + 1), np.arange(1, n_items + 1)
    truth = xr.Dataset(
        {
            "user_factors": (("user", "factor"), rng.normal(0, factor_sd, (n_users, n_factors))),
            "item_factors": (("item", "factor"), rng.normal(0, factor_sd, (n_items, n_factors))),
            "user_bias": ("user", rng.normal(0, user_bias_sd, n_users)),
            "item_bias": ("item", rng.normal(0, item_bias_sd, n_items)),
            "cutpoints": ("cutpoint", cut),
        },
        coords={"user": user_ids, "item": item_ids, "factor": np.arange(n_factors)},
    )
    user, item = _sample_pairs(rng, n_users, n_items, n_ratings, 1.0, 1.5)
    noise = (rng.standard_normal(n_ratings) if likelihood == "ordered_probit"
             else rng.logistic(size=n_ratings))
    latent = _eta(truth, user, item) + noise
    level = np.searchsorted(cut, latent, side="left")  # c_{k-1} < z <= c_k
    ratings = Ratings.from_arrays(user_ids[user], item_ids[item], levels[level], scale=scale,
                                  user_ids=user_ids, item_ids=item_ids)
    truth.attrs = {"generator": "bayesrec.data.simulate.simulate_ordinal_ratings",
                   "likelihood": likelihood, "n_factors": n_factors,
                   "user_bias_sd": float(user_bias_sd), "item_bias_sd": float(item_bias_sd),
                   "factor_sd": float(factor_sd), "scale": json.dumps(scale.to_dict()),
                   "seed": "None" if seed is None else str(seed)}
    return ratings, truth


def _eta(truth: xr.Dataset, user_codes, item_codes) -> np.ndarray:
    u, i = np.asarray(user_codes), np.asarray(item_codes)
    return (truth["user_bias"].values[u] + truth["item_bias"].values[i]
            + np.einsum("nk,nk->n", truth["user_factors"].values[u],
                        truth["item_factors"].values[i]))


def true_level_probs(truth: xr.Dataset, user_codes, item_codes) -> np.ndarray:
    """The true level probabilities ``(pairs, levels)`` of a :func:`simulate_ordinal_ratings` truth."""
    from scipy.special import expit, ndtr

    cdf = ndtr if truth.attrs.get("likelihood", "ordered_probit") == "ordered_probit" else expit
    below = cdf(truth["cutpoints"].values[None, :] - _eta(truth, user_codes, item_codes)[:, None])
    below = np.concatenate([np.zeros((len(below), 1)), below, np.ones((len(below), 1))], axis=1)
    return np.diff(below, axis=1)


def simulate_mmsbm(n_users: int, n_items: int, n_ratings: int, *, n_user_groups: int = 3,
                   n_item_groups: int = 3, scale: RatingScale | Sequence[float] | str = "1-5",
                   membership_concentration: float = 0.2, p_concentration: float = 0.3,
                   seed: int | None = 0) -> tuple[Ratings, dict[str, np.ndarray]]:
    """Ratings drawn from the MMSBM's generative process, with the true parameters.

    Draws ``theta_u ~ Dirichlet(c)``, ``eta_i ~ Dirichlet(c)`` (``c`` =
    ``membership_concentration``; small values give nearly pure memberships),
    ``p_kl ~ Dirichlet(p_concentration)``, then ``n_ratings`` distinct (user, item)
    pairs uniformly at random and, for each, a user group ``k ~ theta_u``, an item
    group ``l ~ eta_i`` and a rating level ``r ~ p_kl``.

    Returns
    -------
    ratings : Ratings
        User and item ids are ``0..n_users-1`` and ``0..n_items-1`` (codes equal ids).
    truth : dict
        ``theta`` (users x K), ``eta`` (items x L), ``p`` (K x L x levels).
    """
    n_users, n_items = check_positive_int(n_users, "n_users"), check_positive_int(n_items, "n_items")
    n_ratings = check_positive_int(n_ratings, "n_ratings", maximum=n_users * n_items)
    n_user_groups = check_positive_int(n_user_groups, "n_user_groups")
    n_item_groups = check_positive_int(n_item_groups, "n_item_groups")
    membership_concentration = check_positive(membership_concentration, "membership_concentration")
    p_concentration = check_positive(p_concentration, "p_concentration")
    scale = RatingScale.coerce(scale, None)
    if scale.levels is None:
        raise InputError("simulate_mmsbm needs a discrete scale (levels), got a continuous one")
    levels = np.asarray(scale.levels)
    rng = np.random.default_rng(seed)
    theta = rng.dirichlet(np.full(n_user_groups, membership_concentration), n_users)
    eta = rng.dirichlet(np.full(n_item_groups, membership_concentration), n_items)
    p = rng.dirichlet(np.full(len(levels), p_concentration), (n_user_groups, n_item_groups))
    pairs = rng.choice(n_users * n_items, size=n_ratings, replace=False)
    user, item = pairs // n_items, pairs % n_items
    k = _draw_categorical(theta[user], rng)
    l = _draw_categorical(eta[item], rng)  # noqa: E741 (the paper's notation)
    level = _draw_categorical(p[k, l], rng)
    ratings = Ratings.from_arrays(user, item, levels[level], scale=scale,
                                  user_ids=np.arange(n_users), item_ids=np.arange(n_items))
    return ratings, {"theta": theta, "eta": eta, "p": p}


def _draw_categorical(prob: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    cdf = np.cumsum(prob, axis=-1)
    u = rng.random(prob.shape[0])[:, None] * cdf[:, -1:]
    return np.minimum((cdf < u).sum(axis=-1), prob.shape[-1] - 1)


def _draw_categorical(prob: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    cdf = np.cumsum(prob, axis=-1)
    u = rng.random(prob.shape[0])[:, None] * cdf[:, -1:]
    return np.minimum((cdf < u).sum(axis=-1), prob.shape[-1] - 1)


def simulate_mpma(n_users: int, n_items: int, n_ratings: int, *, n_factors: int = 2,
                  n_user_clusters: int = 2, n_item_clusters: int = 2,
                  weights=(0.5, 0.3, 0.2), sigmas=(0.3, 0.6, 1.0), factor_sd: float = 0.8,
                  global_mean: float = 3.5, bias_sd: float = 0.3,
                  local_sd: float | None = None,
                  seed: int | None = 0) -> tuple[Ratings, dict[str, np.ndarray]]:
    """Ratings drawn from MPMA's generative process (``local_prior="independent"``).

    Draws balanced random clusters, every factor matrix of the three components
    (``N(0, factor_sd^2)``), biases ``N(0, bias_sd^2)``, then ``n_ratings`` distinct
    pairs uniformly at random and, for each, a component ``z ~ weights`` and
    ``r = m + b_u + c_i + f^{(z)}_{ui} + N(0, sigmas[z]^2)``.  Ratings are not
    rounded: the scale is continuous (the data range widened by 5 % each side).

    With ``local_sd`` the local components are deviations from the global one, as
    the paper's staged fit assumes (priors centred on the global fit): each local
    factor is its global counterpart plus ``N(0, local_sd^2)`` (``P_u = U_u + ...``,
    ``Q_{c,i} = V_i + ...``, ``S_{d,u} = U_u + ...``, ``T_i = V_i + ...``).  The random
    stream is the same either way, so ``local_sd=None`` (independent local factors,
    the default) gives the data it always gave.

    Returns
    -------
    ratings : Ratings
        Ids ``0..n_users-1`` / ``0..n_items-1`` (codes equal ids; every id is in
        the universe even if unrated).
    truth : dict
        ``weights``, ``sigmas``, ``user_clusters``, ``item_clusters``, ``component``
        (z of each rating, in ``ratings`` order), ``component_mu`` (ratings x 3), and
        ``params``: every other parameter under the name of its variable in
        :func:`~bayesrec.models.mpma.mpma` (factor matrices, biases, offset).
    """
    rng = np.random.default_rng(seed)
    weights = np.asarray(weights, dtype=float)
    sigmas = np.asarray(sigmas, dtype=float)
    if weights.shape != (3,) or sigmas.shape != (3,) or not np.isclose(weights.sum(), 1.0):
        raise InputError("weights (summing to 1) and sigmas must have one entry per component")
    if n_ratings > n_users * n_items:
        raise InputError(f"n_ratings={n_ratings} exceeds the {n_users * n_items} possible pairs")
    user_cl = rng.permutation(np.arange(n_users) % n_user_clusters)
    item_cl = rng.permutation(np.arange(n_items) % n_item_clusters)

    def draw(*shape):
        return rng.normal(0.0, factor_sd, (*shape, n_factors))

    U, V, P, Q = draw(n_users), draw(n_items), draw(n_users), draw(n_user_clusters, n_items)
    T, S = draw(n_items), draw(n_item_clusters, n_users)
    if local_sd is not None:  # the same draws, rescaled into deviations from the global
        shrink = check_positive(local_sd, "local_sd") / factor_sd
        P, Q, T, S = U + shrink * P, V + shrink * Q, V + shrink * T, U + shrink * S
    b_u, b_i = rng.normal(0, bias_sd, n_users), rng.normal(0, bias_sd, n_items)
    flat = np.sort(rng.choice(n_users * n_items, size=n_ratings, replace=False))
    user, item = flat // n_items, flat % n_items
    base = global_mean + b_u[user] + b_i[item]
    comp_mu = np.stack([
        base + (U[user] * V[item]).sum(1),
        base + (P[user] * Q[user_cl[user], item]).sum(1),
        base + (S[item_cl[item], user] * T[item]).sum(1),
    ], axis=1)
    z = rng.choice(3, size=n_ratings, p=weights)
    r = comp_mu[np.arange(n_ratings), z] + rng.normal(0, 1, n_ratings) * sigmas[z]
    pad = 0.05 * (r.max() - r.min())
    ratings = Ratings.from_arrays(user, item, r,
                                  scale=RatingScale.interval(r.min() - pad, r.max() + pad),
                                  user_ids=np.arange(n_users), item_ids=np.arange(n_items))
    truth = {"weights": weights, "sigmas": sigmas, "user_clusters": user_cl,
             "item_clusters": item_cl, "component": z, "component_mu": comp_mu,
             "params": {"user_factors": U, "item_factors": V, "user_local_user_factors": P,
                        "user_local_item_factors": Q, "item_local_item_factors": T,
                        "item_local_user_factors": S, "user_bias": b_u, "item_bias": b_i,
                        "offset": np.asarray(global_mean, dtype=float)}}
    return ratings, truth


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------
def _check_sizes(n_users, n_items, n_ratings, n_factors) -> tuple[int, int, int, int]:
    values = {"n_users": n_users, "n_items": n_items, "n_ratings": n_ratings,
              "n_factors": n_factors}
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, Integral):
            raise InputError(f"{name} must be an integer, got {value!r}")
    if n_users < 1 or n_items < 1 or n_factors < 0:
        raise InputError(
            f"need n_users >= 1, n_items >= 1 and n_factors >= 0, got {n_users}, {n_items}, "
            f"{n_factors}"
        )
    if not max(n_users, n_items) <= n_ratings <= n_users * n_items:
        raise InputError(
            f"n_ratings must be between max(n_users, n_items) = {max(n_users, n_items)} (every "
            f"user and item rated once) and n_users * n_items = {n_users * n_items}, "
            f"got {n_ratings}"
        )
    return int(n_users), int(n_items), int(n_ratings), int(n_factors)


def _lognormal_weights(rng: np.random.Generator, n: int, sd: float) -> np.ndarray:
    w = rng.lognormal(0.0, sd, n)
    return w / w.sum()


def _user_counts(rng, n_users, n_items, n_ratings, activity_skew) -> np.ndarray:
    """Ratings per user: 1 + multinomial by activity, capped (at half the items if possible)."""
    cap = max(int(np.ceil(MAX_USER_SHARE * n_items)), -(-n_ratings // n_users))
    weights = _lognormal_weights(rng, n_users, activity_skew)
    counts = 1 + rng.multinomial(n_ratings - n_users, weights)
    while (excess := int(np.maximum(counts - cap, 0).sum())) > 0:
        counts = np.minimum(counts, cap)
        room = counts < cap
        w = np.where(room, weights, 0.0)
        counts += rng.multinomial(excess, w / w.sum())
    return counts


def _sample_pairs(rng, n_users, n_items, n_ratings, activity_skew, popularity_skew):
    """Distinct (user, item) code pairs: exact user counts, every item covered."""
    counts = _user_counts(rng, n_users, n_items, n_ratings, activity_skew)
    popularity = _lognormal_weights(rng, n_items, popularity_skew)
    cdf = np.cumsum(popularity)
    cdf[-1] = 1.0
    keys = np.empty(0, dtype=np.int64)  # sorted, unique codes user * n_items + item
    need = counts.copy()
    for _ in range(_MAX_TOPUP_ROUNDS):
        if not need.any():
            break
        users = np.repeat(np.arange(n_users, dtype=np.int64), need)
        items = np.searchsorted(cdf, rng.random(len(users)), side="right")
        new = _sorted_unique(users * n_items + np.minimum(items, n_items - 1))
        pos = np.minimum(np.searchsorted(keys, new), max(len(keys) - 1, 0))
        if len(keys):
            new = new[keys[pos] != new]
        # both parts are sorted: the stable sort (timsort) merges them in linear time
        keys = np.sort(np.concatenate([keys, new]), kind="stable")
        need -= np.bincount(new // n_items, minlength=n_users)
    if need.any():  # saturated heavy users: draw exactly from their unrated items
        extra = _fill_exactly(rng, keys, need, n_items, popularity)
        keys = np.sort(np.concatenate([keys, extra]), kind="stable")
    user, item = keys // n_items, keys % n_items
    item = _cover_items(rng, user, item, n_items)
    return user, item


def _fill_exactly(rng, keys, need, n_items, popularity) -> np.ndarray:
    extra = []
    for u in np.flatnonzero(need):
        lo, hi = np.searchsorted(keys, [u * n_items, (u + 1) * n_items])
        free = np.setdiff1d(np.arange(n_items), keys[lo:hi] % n_items)
        p = popularity[free] / popularity[free].sum()
        extra.append(u * n_items + rng.choice(free, size=need[u], replace=False, p=p))
    return np.sort(np.concatenate(extra)).astype(np.int64)


def _sorted_unique(keys: np.ndarray) -> np.ndarray:
    """Sorted distinct values (by sorting: faster than hashing for large int arrays)."""
    keys = np.sort(keys)
    return keys[np.r_[True, keys[1:] != keys[:-1]]] if len(keys) else keys


def _cover_items(rng, user, item, n_items) -> np.ndarray:
    """Give each unrated item one rating, taken from an item rated at least twice.

    A random sample of ratings is visited in random order; a rating may give up
    its item while that item keeps at least one other rating.  An unrated item has
    no rater, so no pair repeats.  The sample grows until it has enough donors;
    the full set always does (it has ``n_ratings - n_rated_items >= n_unrated``).
    """
    item_counts = np.bincount(item, minlength=n_items)
    missing = np.flatnonzero(item_counts == 0)
    if len(missing) == 0:
        return item
    candidates = np.flatnonzero(item_counts[item] >= 2)
    size = min(len(candidates), 4 * len(missing) + 64)
    while True:
        sample = rng.choice(candidates, size=size, replace=False)
        by_item = np.argsort(item[sample], kind="stable")
        sorted_items = item[sample][by_item]
        starts = np.flatnonzero(np.r_[True, sorted_items[1:] != sorted_items[:-1]])
        rank = np.arange(size) - np.repeat(starts, np.diff(np.r_[starts, size]))
        allowed = np.sort(by_item[rank < item_counts[sorted_items] - 1])
        if len(allowed) >= len(missing) or size == len(candidates):
            break
        size = min(2 * size, len(candidates))
    donors = sample[allowed[: len(missing)]]
    item = item.copy()
    item[donors] = rng.permutation(missing)
    return item


def _sample_times(rng, user, n_users) -> np.ndarray:
    """Unix seconds: each user rates in one burst starting at a uniform time."""
    start = rng.uniform(_T_START, _T_END, n_users)
    span = np.minimum(rng.lognormal(np.log(3600.0), 3.0, n_users), _T_END - start)
    offset = rng.random(len(user)) * span[user]
    return (start[user] + offset).astype(np.int64)


def simulate_side_information(n_users: int = 300, n_items: int = 200, n_ratings: int = 4000,
                              *, n_factors: int = 1, noise_sd: float = 0.5,
                              bias_sd: float = 0.15, factor_sd: float = 0.2,
                              seed: int | None = 0) -> tuple[Ratings, dict]:
    r"""Ratings whose biases and factor means are planted linear functions of metadata.

    Users have ``age`` (numeric), ``gender`` ("F"/"M") and ``student`` (boolean);
    items have ``action``, ``drama`` (booleans) and ``release_date`` (a date).  With
    :math:`x_u`, :math:`x_i` the features encoded by
    :func:`bayesrec.data.features.encode_features`,

    .. math::

        r_{ui} = 3 + b_u + c_i + U_u^\top V_i + \varepsilon, \quad
        b_u = x_u^\top \beta_U + \mathcal N(0, s_b^2), \quad
        U_u = x_u^\top B_U + \mathcal N(0, s_f^2)

    (the same for items), :math:`\varepsilon \sim \mathcal N(0, \sigma^2)`, on a
    continuous scale.  Returns the ratings (with ``user_info`` / ``item_info``) and a
    dict of the truth: ``user_bias_coef``, ``item_bias_coef`` (Series by feature name),
    ``user_feature_coef``, ``item_feature_coef`` (DataFrames feature x factor),
    ``user_features``, ``item_features`` (the encoded matrices), ``user_factors``,
    ``item_factors``, ``user_bias``, ``item_bias``, ``offset`` and ``noise_sd``.
    """
    import pandas as pd

    from bayesrec.data.features import encode_features

    n_users, n_items = check_positive_int(n_users, "n_users"), check_positive_int(n_items,
                                                                                   "n_items")
    n_ratings, n_factors = check_positive_int(n_ratings, "n_ratings"), check_positive_int(
        n_factors, "n_factors")
    rng = np.random.default_rng(seed)
    users, items = np.arange(1, n_users + 1), np.arange(1, n_items + 1)
    user_info = pd.DataFrame({
        "age": rng.integers(18, 70, n_users).astype(float),
        "gender": rng.choice(["F", "M"], n_users),
        "student": rng.random(n_users) < 0.3,
    }, index=pd.Index(users, name="user"))
    days = rng.integers(0, 365 * 30, n_items)
    item_info = pd.DataFrame({
        "action": rng.random(n_items) < 0.4,
        "drama": rng.random(n_items) < 0.4,
        "release_date": pd.Timestamp("1970-01-01") + pd.to_timedelta(days, unit="D"),
    }, index=pd.Index(items, name="item"))
    xu, u_names = encode_features(user_info, users, "user")
    xi, i_names = encode_features(item_info, items, "item")
    truth = {
        "user_bias_coef": pd.Series(np.resize([0.4, -0.3, 0.3, 0.5], len(u_names)),
                                    index=u_names),
        "item_bias_coef": pd.Series(np.resize([0.5, -0.4, 0.3], len(i_names)), index=i_names),
        "user_feature_coef": pd.DataFrame(
            rng.choice([-0.5, 0.5], (len(u_names), n_factors)), index=u_names),
        "item_feature_coef": pd.DataFrame(
            rng.choice([-0.5, 0.5], (len(i_names), n_factors)), index=i_names),
        "user_features": xu, "item_features": xi, "offset": 3.0, "noise_sd": float(noise_sd),
    }
    truth["user_bias"] = xu @ truth["user_bias_coef"].to_numpy() + rng.normal(0, bias_sd, n_users)
    truth["item_bias"] = xi @ truth["item_bias_coef"].to_numpy() + rng.normal(0, bias_sd, n_items)
    truth["user_factors"] = (xu @ truth["user_feature_coef"].to_numpy()
                             + rng.normal(0, factor_sd, (n_users, n_factors)))
    truth["item_factors"] = (xi @ truth["item_feature_coef"].to_numpy()
                             + rng.normal(0, factor_sd, (n_items, n_factors)))
    user, item = _sample_pairs(rng, n_users, n_items, n_ratings, 0.5, 0.5)
    values = (3.0 + truth["user_bias"][user] + truth["item_bias"][item]
              + (truth["user_factors"][user] * truth["item_factors"][item]).sum(-1)
              + rng.normal(0, noise_sd, len(user)))
    ratings = Ratings.from_arrays(
        users[user], items[item], values,
        scale=RatingScale.interval(float(values.min()) - 0.5, float(values.max()) + 0.5),
        user_ids=users, item_ids=items, user_info=user_info, item_info=item_info)
    return ratings, truth
