"""Mixture probabilistic matrix approximation (Chen, Li, Lv, Yan, Shang & Chu, IJCAI 2016)."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from pymc.distributions.dist_math import normal_lcdf
from pytensor.gradient import disconnected_grad

from bayesrec.data.ratings import Ratings
from bayesrec.data.scale import RatingScale
from bayesrec.errors import InputError
from bayesrec.models._blocks import (
    check_positive,
    check_positive_int,
    factor_rows,
    merge_priors,
    pair_data,
    rating_coords,
    with_biases,
)
from bayesrec.models.hooks import StagedFit
from bayesrec.models.mpma_clusters import mpma_clusters
from bayesrec.models.mpma_staged import StagedData, staged_mpma
from bayesrec.models.mpma_staged_gibbs import sample_components
from bayesrec.models.pmf import POINT_ESTIMATE_FACTOR_SCALE, pmf_default_priors
from bayesrec.models.registry import BAYESIAN_METHODS, FastSettings, model_info, register

__all__ = ["mpma", "mpma_default_priors", "COMPONENTS"]

#: The three low-rank approximations MPMA mixes, in component order.
COMPONENTS = ("global", "user_local", "item_local")

NOISE_PRIORS = ("inverse_gamma", "halfnormal")
LOCAL_PRIORS = ("independent", "offset")


def mpma_default_priors(scale: RatingScale) -> dict[str, float]:
    """Default prior settings of :func:`mpma`, in rating units, for a rating scale.

    The factor, bias and offset scales are PMF's (:func:`~bayesrec.models.pmf.pmf_default_priors`:
    factor sd ``0.3 * sqrt(h / 2)``, bias sd ``h / 2``, offset sd ``h`` for a scale
    of half-width ``h``); every component's factors get the same sd
    (``local_factor_sd`` for the local ones).  Noise: ``noise_sd = h``
    (HalfNormal scale, ``noise_prior="halfnormal"``) and ``noise_beta = h``
    (``noise_prior="inverse_gamma"``: :math:`\\sigma_k \\sim \\text{InvGamma}(2, \\beta)`,
    mode ``h / 3``).  Mixture weights: ``weight_concentration = 1`` (uniform on the
    simplex).
    """
    p = pmf_default_priors(scale)
    h = scale.width / 2
    return {**p, "local_factor_sd": p["user_factor_sd"], "noise_beta": h,
            "weight_concentration": 1.0}


def _check_components(components) -> tuple[str, ...]:
    if isinstance(components, str):
        components = (components,)
    components = tuple(components)
    bad = [c for c in components if c not in COMPONENTS]
    if not components or bad or len(set(components)) != len(components):
        raise InputError(
            f"components must be distinct names among {COMPONENTS}, got {components!r}"
        )
    return tuple(c for c in COMPONENTS if c in components)  # canonical order


def _check_clusters(clusters, n_clusters: int, ratings: Ratings, what: str) -> np.ndarray:
    """One cluster per code; codes past the given ones (unrated units only) join cluster 0.

    A fit's model is rebuilt for prediction with new, unrated users or items
    appended to the id universe (:mod:`bayesrec.inference.population`); their
    cluster cannot be learned from ratings they do not have, so they join cluster
    0 (the largest, for derived clusters).  Their local factors come from the
    prior, so the cluster only sets which shared factors they are combined with.
    """
    n = ratings.n_users if what == "user" else ratings.n_items
    arr = np.asarray(clusters)
    if arr.ndim != 1 or len(arr) > n or not np.issubdtype(arr.dtype, np.integer):
        raise InputError(
            f"{what}_clusters must be one integer cluster per {what} code ({n} of them, in "
            f"ratings.{what}s order), got an array of shape {arr.shape} and dtype {arr.dtype}"
        )
    codes = ratings.user if what == "user" else ratings.item
    if len(arr) < n and len(codes) and codes.max() >= len(arr):
        raise InputError(
            f"{what}_clusters has {len(arr)} entries but {what} code {int(codes.max())} has "
            f"ratings: give a cluster for every {what} ({n})"
        )
    if len(arr) and (arr.min() < 0 or arr.max() >= n_clusters):
        raise InputError(
            f"{what}_clusters must lie in 0..n_{what}_clusters-1 = 0..{n_clusters - 1}, "
            f"got values from {arr.min()} to {arr.max()}"
        )
    return np.concatenate([arr.astype(np.int64), np.zeros(n - len(arr), np.int64)])


def _rows(x):
    """(clusters, n, factor) -> (clusters * n, factor)."""
    return x.reshape((x.shape[0] * x.shape[1], x.shape[2]))


def _local_means(components, p: dict, local_prior: str, user_idx, item_idx,
                 user_cluster, item_cluster, U, V) -> list:
    """The factor part of each component's mean for the observed pairs.

    Cluster-specific factors (cluster, user or item, factor) are gathered as rows
    of their (cluster * n, factor) reshape: one integer index per pair, which
    compiles to a gather (and a scatter-add gradient) as fast as ``U[user_idx]``,
    where a two-array index into the 3-d tensor is about ten times slower.
    """
    n_users, n_items = U.shape[0], V.shape[0]
    means = []
    for name in components:
        if name == "global":
            means.append((U[user_idx] * V[item_idx]).sum(-1))
        elif name == "user_local":
            cell = user_cluster[user_idx] * n_items + item_idx  # row of (cluster, item)
            if local_prior == "offset":
                d = factor_rows("user_local_item_offsets", p["local_factor_sd"],
                                ("user_cluster", "item", "factor"))
                means.append((U[user_idx] * (V[item_idx] + _rows(d)[cell])).sum(-1))
            else:
                P = factor_rows("user_local_user_factors", p["local_factor_sd"],
                                ("user", "factor"))
                Q = factor_rows("user_local_item_factors", p["local_factor_sd"],
                                ("user_cluster", "item", "factor"))
                means.append((P[user_idx] * _rows(Q)[cell]).sum(-1))
        else:
            cell = item_cluster[item_idx] * n_users + user_idx  # row of (cluster, user)
            if local_prior == "offset":
                d = factor_rows("item_local_user_offsets", p["local_factor_sd"],
                                ("item_cluster", "user", "factor"))
                means.append(((U[user_idx] + _rows(d)[cell]) * V[item_idx]).sum(-1))
            else:
                T = factor_rows("item_local_item_factors", p["local_factor_sd"],
                                ("item", "factor"))
                S = factor_rows("item_local_user_factors", p["local_factor_sd"],
                                ("item_cluster", "user", "factor"))
                means.append((_rows(S)[cell] * T[item_idx]).sum(-1))
    return means


def _priors(ratings: Ratings, factor_scale: float, priors) -> dict[str, float]:
    """The model's prior settings: the defaults (factor sds scaled) under ``priors``."""
    defaults = mpma_default_priors(ratings.scale)
    for key in ("user_factor_sd", "item_factor_sd", "local_factor_sd"):
        defaults[key] *= factor_scale
    return merge_priors(defaults, priors, "mpma")


def _staged_fit(model: pm.Model, options, seed: int, progress, rows):
    """MPMA's :class:`~bayesrec.models.hooks.StagedFit`: the paper's procedure
    (:mod:`bayesrec.models.mpma_staged`) on the model's ratings, clusters and priors;
    with ``components="gibbs"`` its components sampled by block Gibbs
    (:mod:`bayesrec.models.mpma_staged_gibbs`, rows drawn by ``rows``)."""
    info = model_info(model)
    config, ratings = info.config, info.ratings
    p = _priors(ratings, config["factor_scale"], config["priors"])
    data = StagedData(
        user=ratings.user, item=ratings.item, rating=np.asarray(ratings.rating, dtype=float),
        n_users=ratings.n_users, n_items=ratings.n_items,
        user_clusters=np.asarray(model["user_cluster_idx"].get_value(), dtype=np.int64),
        item_clusters=np.asarray(model["item_cluster_idx"].get_value(), dtype=np.int64),
        n_user_clusters=len(model.coords["user_cluster"]),
        n_item_clusters=len(model.coords["item_cluster"]),
        n_factors=len(model.coords["factor"]), components=tuple(model.coords["component"]),
        local_prior=config["local_prior"], biases=config["biases"])
    noise_scale = p["noise_beta"] if config["noise_prior"] == "inverse_gamma" else p["noise_sd"]
    fit_draws = None
    if options.get("components", "map") == "gibbs":
        fit_draws = functools.partial(_sampled, options=options, rows=rows)
    return staged_mpma(data, options, seed, concentration=p["weight_concentration"],
                       noise_prior=config["noise_prior"], noise_scale=noise_scale,
                       progress=progress, fit_draws=fit_draws)


def _sampled(data: StagedData, seed: int, *, options, rows) -> list[dict]:
    return sample_components(data, options, seed, rows=rows)


@register(
    "mpma",
    title="Mixture probabilistic matrix approximation",
    reference="Chen, Li, Lv, Yan, Shang & Chu, MPMA: Mixture Probabilistic Matrix "
              "Approximation for Collaborative Filtering, IJCAI 2016",
    predicts="gaussian",
    methods=BAYESIAN_METHODS + ("staged",),
    default_method="map",
    presets={"point_estimate": {"factor_scale": POINT_ESTIMATE_FACTOR_SCALE}},
    staged_fit=StagedFit(_staged_fit, "global component on all ratings, local ones on their "
                         "clusters' ratings (ridge ALS, or block Gibbs with "
                         "components='gibbs'), weights and sigmas by out-of-fold EM"),
    fast=FastSettings(
        method="map",
        options={"n_factors": 3, "n_user_clusters": 2, "n_item_clusters": 2},
        fit={"map": {"maxiter": 400}, "nuts": {"draws": 200, "tune": 200, "chains": 2},
             "advi": {"n": 4000, "draws": 200},
             "fullrank_advi": {"n": 4000, "draws": 200},
             "minibatch_advi": {"n": 4000, "draws": 200}},
    ),
)
def mpma(
    ratings: Ratings,
    *,
    n_factors: int = 10,
    n_user_clusters: int = 4,
    n_item_clusters: int = 4,
    components: Sequence[str] = COMPONENTS,
    user_clusters: Sequence[int] | None = None,
    item_clusters: Sequence[int] | None = None,
    cluster_seed: int = 0,
    local_prior: Literal["independent", "offset"] = "independent",
    biases: bool = True,
    noise_prior: Literal["inverse_gamma", "halfnormal"] = "inverse_gamma",
    factor_scale: float = 1.0,
    priors: Mapping[str, float] | None = None,
) -> pm.Model:
    r"""Mixture probabilistic matrix approximation as a PyMC model.

    .. math::

        r_{ui} &\sim \sum_{k} \pi_k\, \mathcal N(b_{ui} + f^{(k)}_{ui},\ \sigma_k^2),
        \qquad b_{ui} = m + b_u + c_i \\
        f^{(g)}_{ui} &= U_u^\top V_i \hfill \text{(global)} \\
        f^{(u)}_{ui} &= P_u^\top Q_{c(u), i} \hfill \text{(user-local)} \\
        f^{(i)}_{ui} &= S_{d(i), u}^\top T_i \hfill \text{(item-local)} \\
        \pi &\sim \text{Dirichlet}(a \mathbf 1), \quad
        \sigma_k \sim \text{InvGamma}(2, \beta) \text{ or HalfNormal}(s_\sigma) \\
        U, V, P, Q, S, T &\sim \mathcal N(0, \sigma_f^2) \text{ elementwise}, \quad
        b, c \sim \mathcal N(0, \sigma_b^2), \quad m \sim \mathcal N(\text{centre}, \sigma_m^2)

    :math:`c(u)` is the cluster of user :math:`u` among ``n_user_clusters`` and
    :math:`d(i)` that of item :math:`i`.  The user-local component is a low-rank
    approximation learned within each user cluster: its user factors :math:`P_u`
    and, for each cluster, its own item factors :math:`Q_{c,i}` (shared by the
    users of that cluster).  The item-local component mirrors it: item factors
    :math:`T_i` and, per item cluster, user factors :math:`S_{d,u}`.  The
    component indicator of each rating is marginalised (``pm.NormalMixture``), so
    MAP, NUTS and ADVI all apply.  The expected rating ``mu`` is the mixture mean
    :math:`b_{ui} + \sum_k \pi_k f^{(k)}_{ui}`; the predictive (intervals,
    coverage) is the full mixture.  :func:`bayesrec.diagnostics.mpma.responsibilities`
    gives each component's posterior probability for rated pairs.

    Relation to the paper.  The paper learns the global factors on all ratings
    and the local ones on the sub-matrices of user / item clusters by SGD, and
    the weights and variances by EM, with Gaussian priors on the factors; we
    write the same three-component Gaussian mixture as one Bayesian model and fit
    everything jointly (MAP, NUTS or ADVI), or in stages as the paper does with
    ``fit(model, "staged")`` (:mod:`bayesrec.models.mpma_staged`: components by
    ridge ALS, the weights and noise scales by EM on out-of-fold predictions; the
    joint MAP collapses onto one component, ``benchmarks/README.md``).  Deviations: we add the shared
    biases :math:`m + b_u + c_i` (``biases=False`` drops them); Dirichlet and
    inverse-gamma priors on the weights and noise scales (the inverse gamma keeps
    a point estimate away from the :math:`\sigma_k \to 0` spikes that make a
    Gaussian mixture's likelihood unbounded); the clustering procedure (the paper
    does not fix one; see :func:`~bayesrec.models.mpma_clusters.mpma_clusters`).
    ``local_prior="offset"`` is a further, optional deviation: the local
    components reuse the global factors plus cluster-specific offsets,
    :math:`f^{(u)} = U_u^\top (V_i + \Delta_{c(u), i})` and
    :math:`f^{(i)} = (U_u + E_{d(i), u})^\top V_i`, shrinking sparse clusters
    towards the global model.

    With ``components=("global",)`` and ``noise_prior="halfnormal"`` the model is
    PMF (:func:`~bayesrec.models.pmf.pmf`): same variables, same log-density.

    Parameters
    ----------
    ratings : Ratings
        Training ratings.
    n_factors : int
        Latent dimension of every component.
    n_user_clusters, n_item_clusters : int
        Number of user clusters (user-local component) and item clusters
        (item-local component).
    components : sequence of {"global", "user_local", "item_local"}
        The components to mix (default all three, in that order).
    user_clusters, item_clusters : sequence of int, optional
        The cluster of each user / item code (``ratings.users`` / ``ratings.items``
        order), values in ``0..n_*_clusters-1``; units past the end of the list
        must be unrated and join cluster 0 (how new users and items are handled at
        prediction time).  When omitted they are derived by
        :func:`~bayesrec.models.mpma_clusters.mpma_clusters` (ALS matrix factorisation
        of ``ratings``, then k-means; seed ``cluster_seed``), and the derived
        assignments are recorded in the model's config (so a saved fit rebuilds
        exactly this model without recomputing them).
    cluster_seed : int
        Seed of the derivation of the clusters.
    local_prior : {"independent", "offset"}
        Local factors with their own zero-mean priors (as in the paper), or
        offsets from the global factors (see above).
    biases : bool
        Include the offset ``m`` and the user and item biases, shared by all
        components.
    noise_prior : {"inverse_gamma", "halfnormal"}
        Prior on each component's noise sd.
    factor_scale : float
        Multiplies the default factor prior sds (not those given in ``priors``);
        the ``"point_estimate"`` preset uses 2/3, as for PMF.
    priors : dict, optional
        Override by name: ``user_factor_sd``, ``item_factor_sd`` (global factors),
        ``local_factor_sd``, ``bias_sd``, ``offset_sd``, ``noise_sd``,
        ``noise_beta``, ``weight_concentration``.  Defaults:
        :func:`mpma_default_priors`.

    Returns
    -------
    pm.Model
        Variables ``user_factors (user, factor)``, ``item_factors (item, factor)``,
        the local factors (``user_local_*``, ``item_local_*``, with ``user_cluster`` /
        ``item_cluster`` dims), ``offset``, ``user_bias``, ``item_bias``,
        ``weights (component)`` (several components only), ``sigma (component)``;
        deterministics ``mu (obs)`` and ``component_mu (obs, component)``; observed
        ``rating (obs)``; data ``user_idx``, ``item_idx``, ``user_cluster_idx (user)``,
        ``item_cluster_idx (item)``.
    """
    n_factors = check_positive_int(n_factors, "n_factors")
    components = _check_components(components)
    factor_scale = check_positive(factor_scale, "factor_scale")
    if noise_prior not in NOISE_PRIORS:
        raise InputError(f"noise_prior must be one of {NOISE_PRIORS}, got {noise_prior!r}")
    if local_prior not in LOCAL_PRIORS:
        raise InputError(f"local_prior must be one of {LOCAL_PRIORS}, got {local_prior!r}")
    p = _priors(ratings, factor_scale, priors)
    n_user_clusters = check_positive_int(n_user_clusters, "n_user_clusters",
                                         maximum=max(ratings.n_users, 1))
    n_item_clusters = check_positive_int(n_item_clusters, "n_item_clusters",
                                         maximum=max(ratings.n_items, 1))
    user_cl, item_cl, derived = _clusters(ratings, n_user_clusters, n_item_clusters,
                                          user_clusters, item_clusters, cluster_seed,
                                          n_factors, components)

    coords = rating_coords(ratings, factor=np.arange(n_factors), component=list(components),
                           user_cluster=np.arange(n_user_clusters),
                           item_cluster=np.arange(n_item_clusters))
    with pm.Model(coords=coords) as model:
        user_idx, item_idx = pair_data(ratings)
        user_cluster = pm.Data("user_cluster_idx", user_cl, dims="user")
        item_cluster = pm.Data("item_cluster_idx", item_cl, dims="item")
        U = factor_rows("user_factors", p["user_factor_sd"], ("user", "factor"))
        V = factor_rows("item_factors", p["item_factor_sd"], ("item", "factor"))
        means = _local_means(components, p, local_prior, user_idx, item_idx, user_cluster,
                             item_cluster, U, V)
        base = 0.0
        if biases:
            base = with_biases(0.0, ratings, user_idx, item_idx, link="identity",
                               offset_sd=p["offset_sd"], bias_sd=p["bias_sd"])
        _likelihood(ratings, components, means, base, p, noise_prior)
    if derived:
        model.bayesrec_derived_options = {"user_clusters": user_cl.tolist(),
                                          "item_clusters": item_cl.tolist()}
    return model


def _clusters(ratings, n_user_clusters, n_item_clusters, user_clusters, item_clusters,
              cluster_seed, n_factors, components):
    """Checked cluster assignments (given, or derived) and whether they were derived."""
    if (user_clusters is None) != (item_clusters is None):
        raise InputError("give both user_clusters and item_clusters, or neither (derived)")
    if user_clusters is None:
        if set(components) == {"global"}:  # no local component: clusters are unused
            return (np.zeros(ratings.n_users, np.int64), np.zeros(ratings.n_items, np.int64),
                    False)
        uc, ic = mpma_clusters(ratings, n_user_clusters, n_item_clusters,
                               n_factors=n_factors, seed=cluster_seed)
        return uc, ic, True
    return (_check_clusters(user_clusters, n_user_clusters, ratings, "user"),
            _check_clusters(item_clusters, n_item_clusters, ratings, "item"), False)


def _likelihood(ratings, components, means, base, p, noise_prior):
    """``mu`` (mixture mean), ``component_mu`` and the marginalised mixture likelihood."""
    k = len(components)
    if noise_prior == "inverse_gamma":
        sigma = pm.InverseGamma("sigma", alpha=2.0, beta=p["noise_beta"], dims="component")
    else:
        sigma = pm.HalfNormal("sigma", p["noise_sd"], dims="component")
    mus = [base + f for f in means]
    component_mu = pm.Deterministic("component_mu", pt.stack(mus, axis=-1),
                                    dims=("obs", "component"))
    if k == 1:
        mu = pm.Deterministic("mu", mus[0], dims="obs")
        return pm.Normal("rating", mu, sigma[0], observed=ratings.rating, dims="obs")
    weights = pm.Dirichlet("weights", a=np.full(k, p["weight_concentration"]), dims="component")
    pm.Deterministic("mu", (component_mu * weights).sum(-1), dims="obs")
    params = [*mus, *(weights[j] for j in range(k)), *(sigma[j] for j in range(k))]
    return pm.CustomDist("rating", *params, dist=_mixture_dist, logp=_mixture_logp,
                         logcdf=_mixture_logcdf,
                         observed=ratings.rating, dims="obs")


def _split(params):
    k = len(params) // 3
    return params[:k], params[k:2 * k], params[2 * k:]


def _mixture_dist(*args):
    """The mixture as a random variable (prediction draws from it); the last arg is size."""
    *params, size = args
    mus, weights, sigmas = _split(params)
    return pm.NormalMixture.dist(w=pt.stack(weights, -1), mu=pt.stack(mus, -1),
                                 sigma=pt.stack(sigmas, -1), size=size)


def _mixture_logcdf(value, *params):
    r""":math:`\log \sum_k \pi_k \Phi((r - \mu_k) / \sigma_k)`: the mixture's CDF (level
    probabilities of its predictive)."""
    mus, weights, sigmas = _split(params)
    terms = [pt.log(w) + normal_lcdf(m, s, value)
             for m, w, s in zip(mus, weights, sigmas, strict=True)]
    return pm.math.logsumexp(pt.stack(terms, axis=0), axis=0, keepdims=False)


def _mixture_logp(value, *params):
    r""":math:`\log \sum_k \pi_k \mathcal N(r \mid \mu_k, \sigma_k^2)`, one vector per component.

    The same value as ``pm.NormalMixture``'s log-density, about three times faster
    with its gradient: the components stay separate vectors (no reduction over a
    length-3 axis) and the log-sum-exp shift is cut from the gradient (the result
    does not depend on it, so the gradient is exact).
    """
    mus, weights, sigmas = _split(params)
    terms = [pt.log(w) - pt.log(s) - 0.5 * pt.square((value - m) / s)
             for m, w, s in zip(mus, weights, sigmas, strict=True)]
    top = terms[0]
    for term in terms[1:]:
        top = pt.maximum(top, term)
    top = disconnected_grad(top)
    total = terms[0] - top
    total = pt.exp(total)
    for term in terms[1:]:
        total = total + pt.exp(term - top)
    return top + pt.log(total) - 0.5 * np.log(2 * np.pi)
