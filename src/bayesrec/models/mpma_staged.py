r"""MPMA fitted in stages, as its paper does (Chen et al., IJCAI 2016).

The joint MAP of MPMA collapses onto one component (``benchmarks/README.md``): in
sample, the more flexible local components always fit the training ratings better.
The paper fits the mixture in stages instead, and so does :func:`staged_mpma`:

1. **Global component**, on all training ratings: a biased matrix factorisation
   :math:`m + b_u + c_i + U_u^\top V_i` by ridge alternating least squares (ALS),
   penalties ``factor_penalty`` on the factors and ``bias_penalty`` on the biases
   (in units of the noise variance: the MAP under Gaussian priors of variance
   :math:`\sigma^2 / \lambda`).  The offset and biases it finds are MPMA's shared
   ones.
2. **Local components**, each on its cluster's ratings, with priors centred on the
   global fit (penalty ``local_penalty``).  User-local: the ratings of the users of
   cluster :math:`c` give :math:`P_u` (centred on :math:`U_u`) and :math:`Q_{c,i}`
   (centred on :math:`V_i`), fitted to the residuals of the shared biases; the
   item-local component mirrors it.  With ``local_prior="offset"`` the offsets
   :math:`\Delta_{c,i}` (resp. :math:`E_{d,u}`) are the ridge solution centred on zero
   with the global factors held fixed.  Factors of a cluster without ratings of a
   unit stay at their prior mean: the global factors.
3. **Weights and noise scales by EM** on predictions the components did not train
   on: the training ratings are split into ``folds`` parts, stages 1-2 are refitted
   on all but one part and predict it, and EM of a Gaussian mixture with the
   component means held at these out-of-fold predictions gives the weights
   :math:`\pi` and noise sds :math:`\sigma_k` (MAP-EM under MPMA's Dirichlet and
   inverse-gamma / half-normal priors).  In-sample predictions would hand every
   weight to the most flexible component (the report's ``in_sample_weights`` shows
   it); out of fold, a component earns weight by predicting.

The point returned holds every free variable of :func:`~bayesrec.models.mpma.mpma`:
the components of stages 1-2 refitted on all training ratings, the weights and
sigmas of stage 3.  MPMA's likelihood at this point is the mixture of the
components' predictive distributions, which is what prediction draws from.

Everything here is plain NumPy/SciPy and deterministic given the seed (the random
start of the global factors and the split into folds).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import xarray as xr

from bayesrec.errors import InputError

__all__ = ["StagedData", "fit_components", "component_means", "component_moments",
           "out_of_fold_means", "out_of_fold_moments", "mixture_em", "noise_sds", "staged_mpma"]

#: Sd of the random start of the global factors.
START_SD = 0.1


@dataclass(frozen=True)
class StagedData:
    """What the stages need: the training ratings as codes and MPMA's structure."""

    user: np.ndarray
    item: np.ndarray
    rating: np.ndarray
    n_users: int
    n_items: int
    user_clusters: np.ndarray  # cluster of each user code
    item_clusters: np.ndarray
    n_user_clusters: int
    n_item_clusters: int
    n_factors: int
    components: tuple[str, ...]
    local_prior: str = "independent"
    biases: bool = True

    def subset(self, keep: np.ndarray) -> StagedData:
        """The same structure on the ratings selected by ``keep`` (the id universe is kept)."""
        return dataclasses.replace(self, user=self.user[keep], item=self.item[keep],
                                   rating=self.rating[keep])


# ---------------------------------------------------------------------------------------------
# ridge least squares, one block of rows at a time
# ---------------------------------------------------------------------------------------------
def _grouping(index: np.ndarray, n_groups: int) -> sp.csr_matrix:
    """(groups x ratings) indicator: row ``g`` sums the ratings whose index is ``g``."""
    n = len(index)
    return sp.csr_matrix((np.ones(n), (index, np.arange(n))), shape=(n_groups, n))


def _ridge_rows(grouping: sp.csr_matrix, x: np.ndarray, y: np.ndarray, penalty: np.ndarray,
                prior: np.ndarray) -> np.ndarray:
    r"""For every group :math:`g`, :math:`\arg\min_w \sum_{n \in g} (y_n - x_n^\top w)^2
    + \sum_j \lambda_j (w_j - w^0_{gj})^2`; a group without ratings gets its prior mean."""
    n, d = x.shape
    gram = (grouping @ (x[:, :, None] * x[:, None, :]).reshape(n, d * d)).reshape(-1, d, d)
    rhs = grouping @ (x * y[:, None]) + prior * penalty
    gram[:, np.arange(d), np.arange(d)] += penalty
    return np.linalg.solve(gram, rhs[:, :, None])[:, :, 0]


def _fit_global(data: StagedData, opts: Mapping, rng: np.random.Generator) -> dict:
    """Stage 1: biased MF by ridge ALS on all of ``data``'s ratings."""
    k, user, item, r = data.n_factors, data.user, data.item, data.rating
    by_user, by_item = _grouping(user, data.n_users), _grouping(item, data.n_items)
    U = rng.normal(0.0, START_SD, (data.n_users, k))
    V = rng.normal(0.0, START_SD, (data.n_items, k))
    b_u, c_i = np.zeros(data.n_users), np.zeros(data.n_items)
    offset = float(r.mean()) if data.biases and len(r) else 0.0
    if data.biases:
        penalty = np.r_[np.full(k, opts["factor_penalty"]), opts["bias_penalty"]]
    else:
        penalty = np.full(k, float(opts["factor_penalty"]))
    ones = np.ones((len(r), 1))
    for _ in range(opts["sweeps"]):
        if data.biases:
            x = np.hstack([V[item], ones])
            w = _ridge_rows(by_user, x, r - offset - c_i[item], penalty,
                            np.zeros((data.n_users, k + 1)))
            U, b_u = w[:, :k], w[:, k]
            x = np.hstack([U[user], ones])
            w = _ridge_rows(by_item, x, r - offset - b_u[user], penalty,
                            np.zeros((data.n_items, k + 1)))
            V, c_i = w[:, :k], w[:, k]
            offset = float(np.mean(r - b_u[user] - c_i[item] - (U[user] * V[item]).sum(1)))
        else:
            U = _ridge_rows(by_user, V[item], r, penalty, np.zeros((data.n_users, k)))
            V = _ridge_rows(by_item, U[user], r, penalty, np.zeros((data.n_items, k)))
    out = {"user_factors": U, "item_factors": V}
    if data.biases:
        out.update({"offset": np.asarray(offset), "user_bias": b_u, "item_bias": c_i})
    return out


def _base(params: Mapping, user: np.ndarray, item: np.ndarray) -> np.ndarray:
    if "offset" not in params:
        return np.zeros(len(user))
    return params["offset"] + params["user_bias"][user] + params["item_bias"][item]


def _fit_bilinear(rows_idx, cols_idx, n_rows, n_cols, y, rows0, cols0, penalty, sweeps):
    """Ridge ALS of ``y ~ A[rows_idx] . B[cols_idx]`` with both sides centred on a prior."""
    by_row, by_col = _grouping(rows_idx, n_rows), _grouping(cols_idx, n_cols)
    pen = np.full(rows0.shape[1], float(penalty))
    A, B = rows0.copy(), cols0.copy()
    for _ in range(sweeps):
        A = _ridge_rows(by_row, B[cols_idx], y, pen, rows0)
        B = _ridge_rows(by_col, A[rows_idx], y, pen, cols0)
    return A, B


def _fit_local(data: StagedData, name: str, glob: Mapping, opts: Mapping) -> dict:
    """Stage 2 for one local component, on the residuals of the shared biases."""
    user, item = data.user, data.item
    U, V = glob["user_factors"], glob["item_factors"]
    y = data.rating - _base(glob, user, item)
    penalty, k = opts["local_penalty"], data.n_factors
    if name == "user_local":
        n_cl, cell = data.n_user_clusters, data.user_clusters[user] * data.n_items + item
        if data.local_prior == "offset":
            d = _ridge_rows(_grouping(cell, n_cl * data.n_items), U[user],
                            y - (U[user] * V[item]).sum(1), np.full(k, float(penalty)),
                            np.zeros((n_cl * data.n_items, k)))
            return {"user_local_item_offsets": d.reshape(n_cl, data.n_items, k)}
        P, Q = _fit_bilinear(user, cell, data.n_users, n_cl * data.n_items, y, U,
                             np.tile(V, (n_cl, 1)), penalty, opts["sweeps"])
        return {"user_local_user_factors": P,
                "user_local_item_factors": Q.reshape(n_cl, data.n_items, k)}
    n_cl, cell = data.n_item_clusters, data.item_clusters[item] * data.n_users + user
    if data.local_prior == "offset":
        e = _ridge_rows(_grouping(cell, n_cl * data.n_users), V[item],
                        y - (U[user] * V[item]).sum(1), np.full(k, float(penalty)),
                        np.zeros((n_cl * data.n_users, k)))
        return {"item_local_user_offsets": e.reshape(n_cl, data.n_users, k)}
    S, T = _fit_bilinear(cell, item, n_cl * data.n_users, data.n_items, y,
                         np.tile(U, (n_cl, 1)), V, penalty, opts["sweeps"])
    return {"item_local_user_factors": S.reshape(n_cl, data.n_users, k),
            "item_local_item_factors": T}


def fit_components(data: StagedData, opts: Mapping, seed: int) -> dict[str, np.ndarray]:
    """Stages 1-2: every component's parameters under the names of MPMA's variables.

    The global component is always fitted (the local ones are centred on it, and its
    biases are shared), whether or not it is one of the mixture's components.
    """
    glob = _fit_global(data, opts, np.random.default_rng(seed))
    params = dict(glob)
    for name in data.components:
        if name != "global":
            params.update(_fit_local(data, name, glob, opts))
    return params


def component_means(data: StagedData, params: Mapping, user: np.ndarray,
                    item: np.ndarray) -> np.ndarray:
    """(pairs, components) expected rating of each component (shared biases included)."""
    base = _base(params, user, item)
    U, V = params["user_factors"], params["item_factors"]
    out = []
    for name in data.components:
        if name == "global":
            f = (U[user] * V[item]).sum(1)
        elif name == "user_local":
            c = data.user_clusters[user]
            if data.local_prior == "offset":
                f = (U[user] * (V[item] + params["user_local_item_offsets"][c, item])).sum(1)
            else:
                f = (params["user_local_user_factors"][user]
                     * params["user_local_item_factors"][c, item]).sum(1)
        else:
            d = data.item_clusters[item]
            if data.local_prior == "offset":
                f = ((U[user] + params["item_local_user_offsets"][d, user]) * V[item]).sum(1)
            else:
                f = (params["item_local_user_factors"][d, user]
                     * params["item_local_item_factors"][item]).sum(1)
        out.append(base + f)
    return np.stack(out, axis=1)


def fold_labels(n: int, folds: int, seed: int) -> np.ndarray:
    """A random split of ``n`` ratings into ``folds`` parts of (almost) equal size."""
    return np.random.default_rng(seed).permutation(np.arange(n) % folds)


def component_moments(data: StagedData, draws: list[Mapping], user: np.ndarray,
                      item: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(pairs, components) mean and variance over ``draws`` of :func:`component_means`
    (one draw, a point fit: its means and zero variance)."""
    if len(draws) == 1:
        means = component_means(data, draws[0], user, item)
        return means, np.zeros_like(means)
    total = square = 0.0
    for params in draws:
        means = component_means(data, params, user, item)
        total, square = total + means, square + means * means
    mean = total / len(draws)
    return mean, np.maximum(square / len(draws) - mean * mean, 0.0)


#: ``fit_draws(data, seed) -> [params, ...]``: one or more draws of the components' parameters
FitDraws = Callable[[StagedData, int], list]


def out_of_fold_moments(data: StagedData, labels: np.ndarray, seed: int, fit_draws: FitDraws,
                        progress: Callable[[str], None] | None = None
                        ) -> tuple[np.ndarray, np.ndarray]:
    """(ratings, components) mean and variance of each rating's component means over the
    draws of a fit without its fold (:func:`component_moments`)."""
    shape = (len(data.rating), len(data.components))
    means, variances = np.empty(shape), np.empty(shape)
    folds = np.unique(labels)
    seeds = np.random.SeedSequence(seed).generate_state(len(folds))
    for f, s in zip(folds, seeds, strict=True):
        if progress is not None:
            progress(f"components without fold {int(f) + 1} of {len(folds)}")
        held = labels == f
        draws = fit_draws(data.subset(~held), int(s))
        means[held], variances[held] = component_moments(data, draws, data.user[held],
                                                         data.item[held])
    return means, variances


def out_of_fold_means(data: StagedData, opts: Mapping, labels: np.ndarray, seed: int,
                      progress: Callable[[str], None] | None = None) -> np.ndarray:
    """(ratings, components): each rating's component means from a fit without its fold."""
    return out_of_fold_moments(data, labels, seed, _point_fit(opts), progress)[0]


def _point_fit(opts: Mapping) -> FitDraws:
    return lambda data, seed: [fit_components(data, opts, seed)]


# ---------------------------------------------------------------------------------------------
# stage 3: the mixture's weights and noise scales by EM, the means held fixed
# ---------------------------------------------------------------------------------------------
def _sigma_step(count: np.ndarray, squares: np.ndarray, noise_prior: str,
                noise_scale: float) -> np.ndarray:
    """The noise sds maximising ``-n log s - S / (2 s^2)`` plus the log prior of ``s``."""
    if noise_prior == "inverse_gamma":  # InvGamma(2, beta): (n + 3) s^2 - beta s - S = 0
        a = count + 3.0
        return (noise_scale + np.sqrt(noise_scale**2 + 4 * a * squares)) / (2 * a)
    # HalfNormal(s0): s^4 / s0^2 + n s^2 - S = 0
    s2 = noise_scale**2 * (-count + np.sqrt(count**2 + 4 * squares / noise_scale**2)) / 2
    return np.sqrt(np.maximum(s2, 1e-24))


def _log_prior(weights, sigmas, concentration, noise_prior, noise_scale) -> float:
    lp = float((concentration - 1.0) * np.log(weights).sum())
    if noise_prior == "inverse_gamma":
        return lp + float((-3.0 * np.log(sigmas) - noise_scale / sigmas).sum())
    return lp - float((sigmas**2 / (2 * noise_scale**2)).sum())


def mixture_em(rating: np.ndarray, means: np.ndarray, *, concentration: float = 1.0,
               noise_prior: str = "inverse_gamma", noise_scale: float = 2.0,
               maxiter: int = 5000, tol: float = 1e-9) -> tuple[np.ndarray, np.ndarray, dict]:
    r"""Weights and noise sds of :math:`\sum_k \pi_k \mathcal N(r_n \mid \mu_{nk}, \sigma_k^2)`
    with the means :math:`\mu_{nk}` fixed: MAP-EM under a Dirichlet(``concentration``)
    prior on the weights and MPMA's prior on the sds (``noise_prior``: inverse gamma
    with :math:`\alpha = 2, \beta =` ``noise_scale``, or half-normal of scale
    ``noise_scale``).  Stops when an iteration raises the log posterior by less than
    ``tol`` times its size.

    Returns
    -------
    weights, sigmas : arrays (components,)
    report : dict
        ``log_likelihood`` (of the ratings at the result, constants included), ``nit``,
        ``converged``.
    """
    rating, means = np.asarray(rating, float), np.asarray(means, float)
    n, k = means.shape
    if n == 0:
        raise InputError("mixture_em needs at least one rating")
    resid2 = (rating[:, None] - means) ** 2
    weights = np.full(k, 1.0 / k)
    sigmas = np.sqrt(np.maximum(resid2.mean(0), 1e-12))
    previous, converged, iterations, loglik = -np.inf, False, 0, -np.inf
    for nit in range(1, maxiter + 1):
        iterations = nit
        logd = np.log(weights) - np.log(sigmas) - 0.5 * resid2 / sigmas**2
        top = logd.max(1, keepdims=True)
        total = np.exp(logd - top).sum(1, keepdims=True)
        loglik = float((top + np.log(total)).sum() - 0.5 * n * np.log(2 * np.pi))
        logpost = loglik + _log_prior(weights, sigmas, concentration, noise_prior, noise_scale)
        if logpost - previous <= tol * abs(logpost):
            converged = True
            break
        previous = logpost
        resp = np.exp(logd - top) / total
        count = resp.sum(0)
        w = np.maximum(count + concentration - 1.0, 1e-12)
        weights = w / w.sum()
        sigmas = _sigma_step(count, (resp * resid2).sum(0), noise_prior, noise_scale)
    return weights, sigmas, {"log_likelihood": loglik, "nit": iterations,
                             "converged": converged}


# ---------------------------------------------------------------------------------------------
# the whole recipe
# ---------------------------------------------------------------------------------------------
def _rmse(rating: np.ndarray, pred: np.ndarray) -> np.ndarray:
    return np.sqrt(np.mean((rating[:, None] - pred) ** 2, axis=0))


def noise_sds(em_sigmas: np.ndarray, parameter_variance: np.ndarray) -> np.ndarray:
    r"""The noise sds of the components once the spread of their posterior means is taken out.

    EM on out-of-fold posterior means fits :math:`\sigma_k^2 \approx s_k^2 + v_k`: noise
    plus the error of a posterior mean, whose size the posterior states as the variance
    :math:`v_k` of the component's mean over draws (averaged over the ratings).  Draw-wise
    prediction adds :math:`v_k` back, so the noise is :math:`s_k = \sqrt{\sigma_k^2 - v_k}`,
    floored at half of :math:`\sigma_k`.  Zero variance (a point fit): :math:`\sigma_k`.
    """
    if not np.any(parameter_variance > 0):
        return em_sigmas
    return np.sqrt(np.maximum(em_sigmas**2 - parameter_variance, 0.25 * em_sigmas**2))


def staged_mpma(data: StagedData, opts: Mapping, seed: int, *, concentration: float,
                noise_prior: str, noise_scale: float,
                progress: Callable[[str], None] | None = None,
                fit_draws: FitDraws | None = None) -> tuple[dict | list[dict], xr.Dataset]:
    """Stages 1-3 (module docstring): MPMA's parameters and a report of the stages.

    ``opts``: ``factor_penalty``, ``bias_penalty``, ``local_penalty``, ``sweeps``,
    ``folds``, ``em_maxiter``, ``em_tol`` (the staged method's options).  ``fit_draws``
    fits the components of stages 1-2 (default: :func:`fit_components`, one point); when
    it returns several draws (:func:`~bayesrec.models.mpma_staged_gibbs.sample_components`),
    the EM runs on the out-of-fold posterior means, the noise sds are :func:`noise_sds`,
    and the result is a list of draws of every free variable (the weights and sds the
    same in each).
    """
    point_fit = fit_draws is None
    fit_draws = _point_fit(opts) if point_fit else fit_draws
    split_seed, oof_seed, final_seed = np.random.SeedSequence(seed).generate_state(3)
    labels = fold_labels(len(data.rating), opts["folds"], int(split_seed))
    oof, oof_var = out_of_fold_moments(data, labels, int(oof_seed), fit_draws, progress)
    em_opts = {"concentration": concentration, "noise_prior": noise_prior,
               "noise_scale": noise_scale, "maxiter": opts["em_maxiter"], "tol": opts["em_tol"]}
    if progress is not None:
        progress("weights and noise scales by EM on out-of-fold predictions")
    weights, em_sigmas, em = mixture_em(data.rating, oof, **em_opts)
    sigmas = noise_sds(em_sigmas, oof_var.mean(0))
    if progress is not None:
        progress("components on all training ratings")
    draws = fit_draws(data, int(final_seed))
    fitted, _ = component_moments(data, draws, data.user, data.item)
    in_weights, in_sigmas, _ = mixture_em(data.rating, fitted, **em_opts)
    mixed = {"sigma": sigmas, **({"weights": weights} if len(data.components) > 1 else {})}
    points = [{**params, **mixed} for params in draws]
    report = xr.Dataset(
        {"weights": ("component", weights), "sigma": ("component", sigmas),
         "out_of_fold_rmse": ("component", _rmse(data.rating, oof)),
         "training_rmse": ("component", _rmse(data.rating, fitted)),
         "in_sample_weights": ("component", in_weights),
         "in_sample_sigma": ("component", in_sigmas),
         "fold_size": ("fold", np.bincount(labels, minlength=opts["folds"])),
         "out_of_fold_mixture_rmse": float(_rmse(data.rating, (oof @ weights)[:, None])[0]),
         "out_of_fold_log_likelihood": em["log_likelihood"],
         "em_iterations": em["nit"], "em_converged": em["converged"]},
        coords={"component": list(data.components), "fold": np.arange(opts["folds"])},
    )
    if not point_fit:
        report["em_sigma"] = ("component", em_sigmas)
        report["out_of_fold_posterior_sd"] = ("component", np.sqrt(oof_var.mean(0)))
        report["draws"] = len(points)
    return (points[0] if point_fit else points), report
