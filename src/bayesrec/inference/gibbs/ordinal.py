r"""The ordered-probit likelihood by data augmentation (Albert & Chib, 1993).

Rating ``r`` is level ``k`` when the latent rating ``z = eta + e``, ``e ~ N(0, 1)``,
falls in ``(c_{k-1}, c_k]`` (``c_{-1} = -inf``, ``c_{K-1} = inf``), with ``eta = b_u +
c_i + U_u^T V_i``.  Given ``z`` the factor and bias rows have the Gaussian
conditionals of a Gaussian model with noise sd 1 and ratings ``z`` (no offset), so
:class:`~bayesrec.inference.gibbs.steps.FactorGibbs` and the moves run unchanged on
``z``.  :class:`OrdinalProbit` starts each sweep; given the current point it

1. updates each cutpoint ``c_k`` by random-walk Metropolis-Hastings on its
   conditional given ``eta`` with ``z`` integrated out (Cowles, 1996): the target is
   ``prod_j P(r_j | eta_j, c) x prod_k N(c_k | m_k, s_k)`` on increasing cutpoints
   (the model's ``Normal`` prior with the ordered transform, in the cutpoints'
   own coordinates, where a symmetric proposal needs no Jacobian); a proposal that
   breaks the order is rejected; only the ratings of the two adjacent levels enter;
   the proposal sd of each cutpoint is adapted during burn-in only (towards an
   acceptance of 0.44), then fixed;
2. translates the biases and the cutpoints together, ``b += a_1``, ``c += a_2``,
   ``c_k += a_1 + a_2``: every ``c_k - eta`` and so the likelihood is unchanged,
   the priors are Gaussian in ``(a_1, a_2)``, and ``(a_1, a_2)`` is drawn exactly
   from its conditional (a Gibbs step along a translation group with unit Jacobian);
   without it the cutpoints, which given ``eta`` are pinned to about 0.01, could
   follow the biases' common level only by that much per sweep;
3. draws ``z_j ~ N(eta_j, 1)`` truncated to its level's interval, by the inverse CDF
   computed on the lower tail (accurate far out), into the layout's ratings.

Steps 1 and 2 leave ``p(theta, c | r)`` invariant; step 3 extends the state to
``(theta, c, z)`` by its exact conditional, the later steps update ``theta`` given
``z`` (Gaussian, exact) and ``z`` is dropped at the end of the sweep: every sweep
leaves the posterior invariant.  The ``training_log_likelihood`` statistic is the
ordinal one (:func:`~bayesrec.inference.gibbs.steps.log_likelihood`), and
``cutpoint_acceptance`` is the fraction of accepted cutpoint proposals of each sweep.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from bayesrec.inference.gibbs.kernels import probit_level_log_probs
from bayesrec.inference.gibbs.layout import FactorLayout
from bayesrec.inference.gibbs.steps import LayoutStep, ordinal_eta

__all__ = ["OrdinalProbit", "draw_latent"]

#: the acceptance rate the burn-in aims the cutpoint proposals at (Roberts & Rosenthal 2001)
TARGET_ACCEPTANCE = 0.44


def draw_latent(rng: np.random.Generator, eta: np.ndarray, lower: np.ndarray,
                upper: np.ndarray) -> np.ndarray:
    """``z ~ N(eta, 1)`` truncated to ``(lower, upper]`` (infinite bounds allowed), exactly.

    By the inverse CDF on the standardised bounds, reflected so that the interval lies
    where ``Phi`` is not close to 1 (``ndtr`` and ``ndtri`` are accurate there to the
    last digits, far into the tail); one uniform per rating, so the same generator state
    gives the same draws.
    """
    a, b = lower - eta, upper - eta
    flip = a > 0.0  # both bounds in the upper tail: reflect into the lower one
    a, b = np.where(flip, -b, a), np.where(flip, -a, b)
    pa, pb = special.ndtr(a), special.ndtr(b)
    x = special.ndtri(pa + rng.uniform(size=len(eta)) * (pb - pa))
    x = np.clip(np.nan_to_num(x, nan=0.0), a, b)  # rounding at the edges
    return eta + np.where(flip, -x, x)


class OrdinalProbit(LayoutStep):
    """Cutpoints (MH), the bias-cutpoint translation and the latent ratings: see the module doc.

    Statistic: ``cutpoint_acceptance`` (fraction of the cutpoint proposals accepted).
    """

    name = "ordinal_probit"
    stats_dtypes_shapes = {"cutpoint_acceptance": (np.float64, [])}

    def __init__(self, vars, layout: FactorLayout, *, report_log_likelihood: bool = False,
                 model=None, blocked=True, rng=None):
        super().__init__(vars, layout, report_log_likelihood=report_log_likelihood,
                         model=model, blocked=blocked, rng=rng)
        code = layout.level_code
        n_cut = len(layout.priors["cutpoint_mean"])
        # the ratings each cutpoint's conditional involves: levels k and k + 1
        self.adjacent = [np.flatnonzero((code == k) | (code == k + 1)) for k in range(n_cut)]
        self.initial_sd = np.array([2.0 / np.sqrt(len(idx) + 1.0) for idx in self.adjacent])
        self.proposal_sd = self.initial_sd.copy()
        self.tune = False
        self._sweep = 0

    def setup_chain(self, rng, tune: int, draws: int) -> None:
        super().setup_chain(rng, tune, draws)
        self.tune = tune > 0
        self.proposal_sd = self.initial_sd.copy()
        self._sweep = 0

    def step(self, point: dict) -> tuple[dict, list[dict]]:
        lay = self.layout
        point = dict(point)
        eta = ordinal_eta(lay, point)
        cut, accepted = self._update_cutpoints(eta, lay.cutpoints(point))
        if lay.biases:
            cut = self._translate(point, cut)
            eta = ordinal_eta(lay, point)
        point[lay.value_names["cutpoints"]] = lay.cutpoint_value(cut)
        bounds = np.concatenate([[-np.inf], cut, [np.inf]])
        lay.set_latent(draw_latent(self.rng, eta, bounds[lay.level_code],
                                   bounds[lay.level_code + 1]))
        self._sweep += 1
        return point, self._stats(point, {"cutpoint_acceptance": float(accepted.mean())})

    def _update_cutpoints(self, eta: np.ndarray, cut: np.ndarray):
        """One random-walk MH update of each cutpoint given ``eta``; adapts during burn-in."""
        lay = self.layout
        mean, sd = lay.priors["cutpoint_mean"], lay.priors["cutpoint_sd"]
        code = lay.level_code
        cut = cut.copy()
        accepted = np.zeros(len(cut), dtype=bool)
        for k, idx in enumerate(self.adjacent):
            proposal = cut.copy()
            proposal[k] += self.proposal_sd[k] * self.rng.standard_normal()
            log_u = np.log(self.rng.uniform())
            if not ((k == 0 or proposal[k] > cut[k - 1])
                    and (k == len(cut) - 1 or proposal[k] < cut[k + 1])):
                continue
            log_ratio = (probit_level_log_probs(eta[idx], code[idx], proposal).sum()
                         - probit_level_log_probs(eta[idx], code[idx], cut).sum()
                         - ((proposal[k] - mean[k]) ** 2 - (cut[k] - mean[k]) ** 2)
                         / (2 * sd[k] ** 2))
            if log_u < log_ratio:
                cut, accepted[k] = proposal, True
        if self.tune:  # Robbins-Monro on the log proposal sd; fixed once burn-in ends
            gain = 1.0 / np.sqrt(self._sweep + 1.0)
            self.proposal_sd = self.proposal_sd * np.exp(gain * (accepted - TARGET_ACCEPTANCE))
        return cut, accepted

    def _translate(self, point: dict, cut: np.ndarray) -> np.ndarray:
        """Draw ``(a_1, a_2)`` for ``b += a_1``, ``c += a_2``, ``cut += a_1 + a_2`` (exact)."""
        lay = self.layout
        b, c = lay.bias_of(point, "user"), lay.bias_of(point, "item")
        tau = lay.bias_sd(point)
        mean, sd = lay.priors["cutpoint_mean"], lay.priors["cutpoint_sd"]
        w = 1.0 / sd**2
        shared, lin_shared = w.sum(), -(w * (cut - mean)).sum()
        prec = np.array([[b.size / tau**2 + shared, shared],
                         [shared, c.size / tau**2 + shared]])
        h = np.array([-b.sum() / tau**2 + lin_shared, -c.sum() / tau**2 + lin_shared])
        chol = np.linalg.cholesky(prec)
        a = np.linalg.solve(chol.T, np.linalg.solve(chol, h) + self.rng.standard_normal(2))
        point[lay.user.bias] = b + a[0]
        point[lay.item.bias] = c + a[1]
        return cut + a.sum()
