r"""MPMA's components sampled by block Gibbs: the Bayesian version of the staged fit.

``fit(model, "staged", components="gibbs")`` runs the procedure of
:mod:`bayesrec.models.mpma_staged` with each component's penalised least squares
replaced by its posterior: the ridge penalties become Gaussian priors whose precisions
are learned (Gamma hyperpriors), and alternating least squares becomes block Gibbs
sampling (each row's exact Gaussian conditional drawn instead of solved for).

The chain starts at the point fit of the components (ALS, :func:`~bayesrec.models.
mpma_staged.fit_components`), so a short burn-in suffices.

* **Global component**: :math:`r_{ui} \sim \mathcal N(m + b_u + c_i + U_u^\top V_i,
  \tau_g^{-1})` with :math:`U_{uk} \sim \mathcal N(0, 1 / \alpha^U_k)`,
  :math:`V_{ik} \sim \mathcal N(0, 1 / \alpha^V_k)`, :math:`b_u, c_i \sim \mathcal
  N(0, 1 / \beta)`, a flat prior on :math:`m` and :math:`p(\tau_g) \propto 1 / \tau_g`;
  each precision :math:`\alpha^U_k, \alpha^V_k, \beta` is exponential with mean the
  staged penalty (``factor_penalty``, ``bias_penalty``) times the noise precision of the
  start (a diagonal, zero-mean cousin of BPMF's Normal-Wishart hyperprior).  One sweep
  draws all :math:`(U_u, b_u)`, then all :math:`(V_i, c_i)`, then :math:`m`,
  :math:`\tau_g` and the precisions (Gamma conditionals).
* **Local components**, on the residuals of the current draw of the shared biases, with
  priors centred on the current draw of the global factors: user-local
  :math:`P_u \sim \mathcal N(U_u, \gamma^{-1} I)`, :math:`Q_{c,i} \sim \mathcal N(V_i,
  \gamma^{-1} I)` (item-local mirrored; ``local_prior="offset"``: the offsets with
  zero-mean priors), their own noise precision :math:`\tau` and pull :math:`\gamma`
  (exponential with mean ``local_penalty`` times the start's noise precision).  Each
  sweep of a local component follows a sweep of the global one and conditions on it;
  the global component never sees the local ones (as in the staged point fit, a "cut":
  the local components do not feed back into the global fit), and the local factors
  move with their centre (their deviations from the global factors are the chain's
  state), so the local chain follows the global one.  This samples the cut posterior
  only approximately (a local sweep is one Gibbs update given the new global draw, not
  an exact draw given it).

Priors whose scale is tied to the noise (the penalties as fixed multiples of the noise
precision, normal-gamma) gave an over-regularised posterior mean on MovieLens 100K
(u1, global component alone: 0.933 against the ALS point's 0.924); learned
precisions gave 0.916, whatever the penalty (2 to 15) they start from.

The row draws are inference's (:data:`~bayesrec.models.hooks.GaussianRows`, the
block-Gibbs sampler's row kernel); this module only arranges them.  Deterministic
given the seed.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from bayesrec.models.hooks import GaussianRows
from bayesrec.models.mpma_staged import StagedData, _base, component_means, fit_components

__all__ = ["sample_components"]


def _draw_precision(rng, sum_sq: float, n: int, rate: float = 0.0) -> float:
    r"""A precision's Gamma conditional from ``n`` zero-mean Gaussian terms with sum of squares
    ``sum_sq``: under the prior :math:`\text{Gamma}(1, \text{rate})` (exponential of mean
    ``1 / rate``), or :math:`p(\tau) \propto 1 / \tau` with ``rate=0`` (the noise)."""
    shape = 0.5 * n + (1.0 if rate > 0 else 0.0)
    return float(rng.gamma(shape, 1.0 / max(rate + 0.5 * sum_sq, 1e-300)))


def _precision(residual: np.ndarray) -> float:
    """The noise precision of these residuals (a chain's start)."""
    return 1.0 / max(float(np.mean(residual**2)), 1e-6) if len(residual) else 1.0


class _Sampler:
    """The chain's state and its sweeps, for one :class:`StagedData`."""

    def __init__(self, data: StagedData, opts: Mapping, rows: GaussianRows, seed: int):
        self.data, self.rows = data, rows
        start_seed, chain_seed = np.random.SeedSequence(seed).generate_state(2)
        self.rng = np.random.default_rng(chain_seed)
        # the chain starts at the point fit (ALS): a short burn-in suffices
        start = fit_components(data, opts, int(start_seed))
        self.U, self.V = start["user_factors"], start["item_factors"]
        self.b = start.get("user_bias", np.zeros(data.n_users))
        self.c = start.get("item_bias", np.zeros(data.n_items))
        self.offset = float(start.get("offset", 0.0))
        self.tau = {"global": _precision(data.rating - _base(start, data.user, data.item)
                                         - (self.U[data.user] * self.V[data.item]).sum(1))}
        fitted = component_means(data, start, data.user, data.item)
        for j, name in enumerate(data.components):
            self.tau[name] = _precision(data.rating - fitted[:, j])
        # learned prior precisions, started at (and with hyperprior means) the penalties times
        # the start's noise precision
        k, tau0 = data.n_factors, self.tau["global"]
        self.prec = {"user_factors": np.full(k, float(opts["factor_penalty"]) * tau0),
                     "item_factors": np.full(k, float(opts["factor_penalty"]) * tau0),
                     "bias": float(opts["bias_penalty"]) * tau0,
                     **{name: float(opts["local_penalty"]) * self.tau[name]
                        for name in data.components if name != "global"}}
        self.hyper_rate = {key: 1.0 / np.mean(value) for key, value in self.prec.items()}
        self.dev = {}  # local components: the cluster side's deviations from its centre
        if "user_local_item_factors" in start:
            self.dev["user_local"] = (start["user_local_item_factors"].reshape(-1, k)
                                      - np.tile(self.V, (data.n_user_clusters, 1)))
        if "item_local_user_factors" in start:
            self.dev["item_local"] = (start["item_local_user_factors"].reshape(-1, k)
                                      - np.tile(self.U, (data.n_item_clusters, 1)))
        self.local = {}  # their current values

    def _draw(self, group, n_groups, x, y, penalty, prior, tau):
        eps = self.rng.standard_normal(prior.shape)
        return self.rows(group, n_groups, np.ascontiguousarray(x), y, penalty, prior, tau, eps)

    def _hyper(self, key: str, values: np.ndarray, axis=None) -> np.ndarray | float:
        """Draw the prior precision ``key`` of ``values`` (per column with ``axis=0``)."""
        sum_sq, n = (values**2).sum(axis=axis), values.size if axis is None else len(values)
        rate = self.hyper_rate[key]
        if axis is None:
            return _draw_precision(self.rng, float(sum_sq), n, rate)
        return np.array([_draw_precision(self.rng, float(q), n, rate) for q in sum_sq])

    def global_sweep(self) -> None:
        d, k = self.data, self.data.n_factors
        user, item, r, tau = d.user, d.item, d.rating, self.tau["global"]
        pen_u, pen_v = self.prec["user_factors"] / tau, self.prec["item_factors"] / tau
        if d.biases:
            ones, pen_b = np.ones((len(r), 1)), self.prec["bias"] / tau
            w = self._draw(user, d.n_users, np.hstack([self.V[item], ones]),
                           r - self.offset - self.c[item], np.r_[pen_u, pen_b],
                           np.zeros((d.n_users, k + 1)), tau)
            self.U, self.b = w[:, :k], w[:, k]
            w = self._draw(item, d.n_items, np.hstack([self.U[user], ones]),
                           r - self.offset - self.b[user], np.r_[pen_v, pen_b],
                           np.zeros((d.n_items, k + 1)), tau)
            self.V, self.c = w[:, :k], w[:, k]
        else:
            self.U = self._draw(user, d.n_users, self.V[item], r, pen_u,
                                np.zeros((d.n_users, k)), tau)
            self.V = self._draw(item, d.n_items, self.U[user], r, pen_v,
                                np.zeros((d.n_items, k)), tau)
        resid = r - _base(self.params_global(), user, item) - (self.U[user] * self.V[item]).sum(1)
        if d.biases and len(r):  # flat prior: N(m + mean(resid), 1 / (tau n))
            shift = resid.mean() + self.rng.standard_normal() / np.sqrt(tau * len(r))
            self.offset += float(shift)
            resid = resid - shift
        self.tau["global"] = _draw_precision(self.rng, float(resid @ resid), len(resid))
        self.prec["user_factors"] = self._hyper("user_factors", self.U, axis=0)
        self.prec["item_factors"] = self._hyper("item_factors", self.V, axis=0)
        if d.biases:
            self.prec["bias"] = self._hyper("bias", np.r_[self.b, self.c])

    def params_global(self) -> dict:
        out = {"user_factors": self.U, "item_factors": self.V}
        if self.data.biases:
            out.update({"offset": np.asarray(self.offset), "user_bias": self.b,
                        "item_bias": self.c})
        return out

    def local_sweep(self, name: str) -> None:
        d, k = self.data, self.data.n_factors
        user, item = d.user, d.item
        y = d.rating - _base(self.params_global(), user, item)
        pen, tau = np.full(k, self.prec[name] / self.tau[name]), self.tau[name]
        if name == "user_local":
            n_cl, cell = d.n_user_clusters, d.user_clusters[user] * d.n_items + item
            fixed, fixed_idx, n_fixed = self.U, user, d.n_users
            tiled, tiled_idx = np.tile(self.V, (n_cl, 1)), cell
        else:
            n_cl, cell = d.n_item_clusters, d.item_clusters[item] * d.n_users + user
            fixed, fixed_idx, n_fixed = self.V, item, d.n_items
            tiled, tiled_idx = np.tile(self.U, (n_cl, 1)), cell
        if d.local_prior == "offset":  # offsets of the tiled side, the fixed side held
            offsets = self._draw(tiled_idx, len(tiled), fixed[fixed_idx],
                                 y - (fixed[fixed_idx] * tiled[tiled_idx]).sum(1), pen,
                                 np.zeros_like(tiled), tau)
            resid = y - (fixed[fixed_idx] * (tiled + offsets)[tiled_idx]).sum(1)
            self.local[name] = offsets.reshape(n_cl, -1, k)
            self.tau[name] = _draw_precision(self.rng, float(resid @ resid), len(resid))
            self.prec[name] = self._hyper(name, offsets)
            return
        # the cluster side moves with its centre: its deviations are the state
        cluster_side = tiled + self.dev.get(name, 0.0)
        unit_side = self._draw(fixed_idx, n_fixed, cluster_side[tiled_idx], y, pen, fixed, tau)
        cluster_side = self._draw(tiled_idx, len(tiled), unit_side[fixed_idx], y, pen, tiled,
                                  tau)
        self.dev[name] = cluster_side - tiled
        resid = y - (unit_side[fixed_idx] * cluster_side[tiled_idx]).sum(1)
        self.tau[name] = _draw_precision(self.rng, float(resid @ resid), len(resid))
        self.prec[name] = self._hyper(name, np.r_[(unit_side - fixed).ravel(),
                                                  self.dev[name].ravel()])
        self.local[name] = (unit_side, cluster_side.reshape(n_cl, -1, k))

    def snapshot(self) -> dict:
        out = {key: np.array(value) for key, value in self.params_global().items()}
        for name, value in self.local.items():
            if self.data.local_prior == "offset":
                key = ("user_local_item_offsets" if name == "user_local"
                       else "item_local_user_offsets")
                out[key] = value.copy()
            elif name == "user_local":
                out["user_local_user_factors"] = value[0].copy()
                out["user_local_item_factors"] = value[1].copy()
            else:
                out["item_local_item_factors"] = value[0].copy()
                out["item_local_user_factors"] = value[1].copy()
        out["component_noise_sd"] = np.array([1.0 / np.sqrt(self.tau[n])
                                              for n in self.data.components])
        return out


def sample_components(data: StagedData, opts: Mapping, seed: int, *,
                      rows: GaussianRows) -> list[dict]:
    """Stages 1-2 by block Gibbs (module docstring): ``opts["draws"]`` draws of every
    component's parameters, under the names of MPMA's variables, after ``opts["tune"]``
    burn-in sweeps.  Each draw also holds ``component_noise_sd`` (the components' own
    noise sds, not MPMA's ``sigma``, which the EM of stage 3 sets)."""
    sampler = _Sampler(data, opts, rows, seed)
    draws = []
    for sweep in range(opts["tune"] + opts["draws"]):
        sampler.global_sweep()
        for name in data.components:
            if name != "global":
                sampler.local_sweep(name)
        if sweep >= opts["tune"]:
            draws.append(sampler.snapshot())
    return draws
