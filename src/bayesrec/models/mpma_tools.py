"""MPMA helpers: the user and item clusters, simulation, and per-pair responsibilities.

:func:`mpma_clusters` is the documented procedure :func:`bayesrec.models.mpma.mpma`
uses when the caller does not give the clusters: a regularised matrix
factorisation (a PMF MAP estimate, by alternating least squares) of the training
ratings, then k-means on its user factors and on its item factors.  It is plain
NumPy, deterministic given ``seed``, and takes well under a second on MovieLens
100K.  :func:`simulate_mpma` draws ratings from the model's generative process
(recovery tests); :func:`responsibilities` gives, for rated pairs, the posterior
probability of each component.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import xarray as xr

from bayesrec.data.ratings import Ratings
from bayesrec.data.scale import RatingScale
from bayesrec.errors import InputError
from bayesrec.models._common import check_positive, check_positive_int

__all__ = ["COMPONENTS", "mpma_clusters", "kmeans", "simulate_mpma", "responsibilities"]

#: The three low-rank approximations MPMA mixes, in component order.
COMPONENTS = ("global", "user_local", "item_local")


# ---------------------------------------------------------------------------------------------
# clusters
# ---------------------------------------------------------------------------------------------
def _als_factors(ratings: Ratings, n_factors: int, reg: float, n_sweeps: int,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """User and item factors of a biased MF fitted by regularised ALS (a PMF MAP)."""
    n_u, n_i, n = ratings.n_users, ratings.n_items, ratings.n_ratings
    user, item = ratings.user, ratings.item
    resid = ratings.rating - ratings.global_mean()
    b_u, b_i = np.zeros(n_u), np.zeros(n_i)
    for _ in range(5):  # biases first (damped means, as the biases baseline)
        b_i = np.bincount(item, resid - b_u[user], n_i) / (np.bincount(item, minlength=n_i) + 5.0)
        b_u = np.bincount(user, resid - b_i[item], n_u) / (np.bincount(user, minlength=n_u) + 5.0)
    resid = resid - b_u[user] - b_i[item]
    by_user = sp.csr_matrix((np.ones(n), (user, np.arange(n))), shape=(n_u, n))
    by_item = sp.csr_matrix((np.ones(n), (item, np.arange(n))), shape=(n_i, n))
    U = rng.normal(0.0, 0.1, (n_u, n_factors))
    V = rng.normal(0.0, 0.1, (n_i, n_factors))
    eye = reg * np.eye(n_factors)

    def solve(rows, other, other_idx):
        x = other[other_idx]
        gram = (rows @ (x[:, :, None] * x[:, None, :]).reshape(n, -1)).reshape(-1, n_factors,
                                                                                n_factors)
        rhs = rows @ (x * resid[:, None])
        return np.linalg.solve(gram + eye, rhs[:, :, None])[:, :, 0]

    for _ in range(n_sweeps):
        U = solve(by_user, V, item)
        V = solve(by_item, U, user)
    return U, V


def kmeans(x: np.ndarray, k: int, *, seed: int | None = 0, n_iter: int = 100) -> np.ndarray:
    """Cluster labels ``0..k-1`` of the rows of ``x``: k-means++ start, Lloyd iterations.

    Deterministic given ``seed``.  Labels are renumbered by decreasing cluster
    size (ties by first row), and an emptied cluster is re-seeded at the row
    farthest from its centre, so every label is used when ``k <= len(x)``.
    """
    x = np.asarray(x, dtype=float)
    n = len(x)
    k = check_positive_int(k, "k", maximum=max(n, 1))
    rng = np.random.default_rng(seed)
    centres = [x[rng.integers(n)]]
    for _ in range(1, k):  # k-means++
        d2 = np.min(((x[:, None, :] - np.asarray(centres)[None]) ** 2).sum(-1), axis=1)
        p = d2 / d2.sum() if d2.sum() > 0 else np.full(n, 1.0 / n)
        centres.append(x[rng.choice(n, p=p)])
    centres = np.asarray(centres)
    labels = np.full(n, -1)
    for _ in range(n_iter):
        d2 = ((x[:, None, :] - centres[None]) ** 2).sum(-1)
        new = np.argmin(d2, axis=1)
        for c in range(k):
            if not (new == c).any():  # re-seed an empty cluster at the worst-fitted row
                far = int(np.argmax(d2[np.arange(n), new]))
                new[far] = c
        if np.array_equal(new, labels):
            break
        labels = new
        centres = np.stack([x[labels == c].mean(0) for c in range(k)])
    sizes = np.bincount(labels, minlength=k)
    first = np.array([np.flatnonzero(labels == c)[0] for c in range(k)])
    order = np.lexsort((first, -sizes))
    return np.argsort(order)[labels]


def mpma_clusters(ratings: Ratings, n_user_clusters: int, n_item_clusters: int, *,
                  n_factors: int = 10, reg: float | None = None, n_sweeps: int = 15,
                  seed: int | None = 0) -> tuple[np.ndarray, np.ndarray]:
    r"""User and item clusters for MPMA's local components, from the training ratings.

    The procedure (the MPMA paper groups similar users and similar items but does
    not fix how; this is ours):

    1. Fit a biased matrix factorisation with ``n_factors`` factors by
       alternating least squares: damped-mean biases, then ``n_sweeps`` sweeps of
       ridge solves with penalty ``reg`` (default :math:`\sigma^2/\sigma_f^2` with
       :math:`\sigma = h/2` and :math:`\sigma_f = 0.2\sqrt{h/2}` for a scale of
       half-width :math:`h`: 25 on 1..5 stars), from factors drawn with ``seed``.
       This is the MAP estimate of PMF under Gaussian priors.
    2. Scale each user's and each item's factor vector to unit length (its
       direction: the kind of taste, not how strongly it shows, which on
       MovieLens otherwise gives one large cluster of weakly estimated users or
       items and a few tiny ones), then run k-means (:func:`kmeans`, k-means++
       start with ``seed``) on the users' and, separately, on the items'.

    Users or items without ratings have zero factors and join whichever cluster
    centre is nearest.  Labels are numbered by decreasing cluster size.

    Returns
    -------
    user_clusters, item_clusters : int arrays
        The cluster of each user code (``ratings.users`` order) and item code.
    """
    if not isinstance(ratings, Ratings):
        raise InputError(f"mpma_clusters needs a bayesrec.Ratings, got {type(ratings).__name__}")
    n_user_clusters = check_positive_int(n_user_clusters, "n_user_clusters",
                                         maximum=ratings.n_users)
    n_item_clusters = check_positive_int(n_item_clusters, "n_item_clusters",
                                         maximum=ratings.n_items)
    n_factors = check_positive_int(n_factors, "n_factors")
    n_sweeps = check_positive_int(n_sweeps, "n_sweeps")
    if reg is None:
        h = ratings.scale.width / 2 if ratings.scale.width else 2.0
        reg = (h / 2) ** 2 / (0.2 * np.sqrt(h / 2)) ** 2
    reg = check_positive(reg, "reg")
    rng = np.random.default_rng(seed)
    U, V = _als_factors(ratings, n_factors, reg, n_sweeps, rng)
    seeds = rng.integers(0, 2**31, size=2)
    return (kmeans(_directions(U), n_user_clusters, seed=int(seeds[0])),
            kmeans(_directions(V), n_item_clusters, seed=int(seeds[1])))


def _directions(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero): clusters of taste, not of activity."""
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norm, 1e-12)


# ---------------------------------------------------------------------------------------------
# simulation
# ---------------------------------------------------------------------------------------------
def simulate_mpma(n_users: int, n_items: int, n_ratings: int, *, n_factors: int = 2,
                  n_user_clusters: int = 2, n_item_clusters: int = 2,
                  weights=(0.5, 0.3, 0.2), sigmas=(0.3, 0.6, 1.0), factor_sd: float = 0.8,
                  global_mean: float = 3.5, bias_sd: float = 0.3,
                  seed: int | None = 0) -> tuple[Ratings, dict[str, np.ndarray]]:
    """Ratings drawn from MPMA's generative process (``local_prior="independent"``).

    Draws balanced random clusters, every factor matrix of the three components
    (``N(0, factor_sd^2)``), biases ``N(0, bias_sd^2)``, then ``n_ratings`` distinct
    pairs uniformly at random and, for each, a component ``z ~ weights`` and
    ``r = m + b_u + c_i + f^{(z)}_{ui} + N(0, sigmas[z]^2)``.  Ratings are not
    rounded: the scale is continuous (the data range widened by 5 % each side).

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


# ---------------------------------------------------------------------------------------------
# responsibilities
# ---------------------------------------------------------------------------------------------
def responsibilities(fit: xr.DataTree, pairs: Ratings | None = None, *, model=None,
                     max_draws: int | None = 200) -> xr.DataArray:
    r"""Posterior probability of each MPMA component for rated pairs.

    For a rating :math:`r_{ui}` and a posterior draw,
    :math:`\gamma_k = \pi_k \mathcal N(r_{ui} \mid \mu^{(k)}_{ui}, \sigma_k^2) / \sum_j
    \pi_j \mathcal N(r_{ui} \mid \mu^{(j)}_{ui}, \sigma_j^2)`; the result averages
    :math:`\gamma` over (at most ``max_draws``) draws.  Responsibilities need the
    rating: for pairs without one, the weights ``pi`` are the answer.

    Parameters
    ----------
    fit : DataTree
        A fit of an ``mpma`` model (:func:`bayesrec.inference.fit`).
    pairs : Ratings, optional
        Rated pairs with ids in the fit's universe (default: the training ratings).
    model : pm.Model, optional
        The fitted model (rebuilt from the fit when omitted).

    Returns
    -------
    xarray.DataArray
        Dims ``(pair, component)``; coords ``user``/``item`` (raw ids) along ``pair``,
        ``component`` names; rows sum to one.
    """
    from scipy.special import logsumexp

    from bayesrec.inference.fitdata import (
        check_fit,
        fit_universe,
        id_codes,
        model_from_fit,
        ratings_from_fit,
        swapped_pairs,
        thin_posterior,
    )

    check_fit(fit)
    if fit.attrs.get("bayesrec_model") != "mpma" and model is None:
        raise InputError(f"responsibilities need an mpma fit, got a "
                         f"{fit.attrs.get('bayesrec_model')!r} fit")
    model = model if model is not None else model_from_fit(fit)
    pairs = pairs if pairs is not None else ratings_from_fit(fit)
    user_index, item_index, _ = fit_universe(fit)
    ucodes = id_codes(user_index, pairs.user_ids, "user")
    icodes = id_codes(item_index, pairs.item_ids, "item")
    names = list(model.coords["component"])
    draws = thin_posterior(fit["posterior"].to_dataset(), max_draws, 1).stack(
        sample=("chain", "draw")).transpose("sample", ...)
    outs = [model["component_mu"], model["sigma"]]
    if len(names) > 1:
        outs.append(model["weights"])
    fn = model.compile_fn(outs, inputs=model.free_RVs, on_unused_input="ignore",
                          point_fn=False)
    values = [draws[rv.name].values for rv in model.free_RVs]
    r = np.asarray(pairs.rating, dtype=float)[:, None]
    total = np.zeros((len(r), len(names)))
    with swapped_pairs(model, ucodes, icodes):
        for s in range(draws.sizes["sample"]):
            out = fn(*[v[s] for v in values])
            mu, sigma = out[0], out[1]
            log_w = np.log(out[2]) if len(names) > 1 else np.zeros(1)
            lp = log_w - np.log(sigma) - 0.5 * ((r - mu) / sigma) ** 2
            total += np.exp(lp - logsumexp(lp, axis=1, keepdims=True))
    return xr.DataArray(
        total / draws.sizes["sample"], dims=("pair", "component"),
        coords={"user": ("pair", user_index.to_numpy()[ucodes]),
                "item": ("pair", item_index.to_numpy()[icodes]), "component": names},
        name="responsibility",
    )
