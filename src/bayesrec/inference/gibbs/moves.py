r"""Moves along directions that the conditional updates cross slowly (generalised Gibbs).

Each move applies a transformation ``T_g`` from a group to the whole state and draws
``g`` from ``pi(T_g x) |J_g(x)|`` times the group's Haar measure, which leaves the
posterior ``pi`` invariant (Liu & Wu 1999, "parameter expansion"); an MCMC update of
``g`` that is reversible for that density and starts at the identity is also valid
(Liu & Sabatti 2000), which is how the one-dimensional ones are drawn (slice
sampling).  All densities are in PyMC's value space (``log tau``, ``log`` of the
Cholesky diagonal), whose log-Jacobians are part of ``pi``.

* :class:`ScaleMoves`: rescalings (Haar ``ds / s``): the user/item balance of each
  factor (the likelihood is unchanged), and likelihood-informed rescalings of each
  side's factor deviations and of the biases with ``tau`` (the non-centred half of
  an interweaving, ASIS, scheme).
* :class:`RidgeMoves`: the split of user (item) effects between the biases and the
  factor means, and translations of factor means against biases and offset.

Without them the chain needs hundreds of sweeps to move the bias scale ``tau``
and the offset (see ``benchmarks/gibbs.py`` for the effect on the effective sample
size of the log-likelihood).
"""

from __future__ import annotations

import numpy as np

from bayesrec.inference.gibbs.kernels import (
    component_moments,
    draw_scale,
    gaussian_draw,
    partition_moments,
    slice_1d,
    slice_each,
)
from bayesrec.inference.gibbs.steps import LayoutStep

__all__ = ["RidgeMoves", "ScaleMoves"]


def _gig_log_density(p: float, a: float, b: float):
    """``log`` density of ``x = log t`` for ``t ~ t^(p-1) exp(-a t - b / t)``."""
    return lambda x: p * x - a * np.exp(x) - b * np.exp(-x)


class ScaleMoves(LayoutStep):
    """Rescalings: the per-factor user/item balance, each side's factor spread, the biases."""

    name = "scale_moves"
    stats_dtypes_shapes = {}

    def step(self, point: dict) -> tuple[dict, list[dict]]:
        point = dict(point)
        lay = self.layout
        loglik = lay.remembered_log_likelihood(point)
        self._balance(point)
        if loglik is not None:  # U_k s_k . V_k / s_k: the likelihood is unchanged
            lay.remember_log_likelihood(point, loglik)
        if not (lay.hierarchical and lay.centred):  # else FactorGibbs rescales
            for side in ("user", "item"):
                self._scale_factors(point, side)
        if self.layout.biases:
            self._scale_biases(point)
        return point, self._stats(point, {})

    def _moments(self, point, user_part, item_part, bias_weight) -> tuple[float, float]:
        lay = self.layout
        return component_moments(
            lay.user_code, lay.item_code, lay.rating, lay.effective_factors(point, "user"),
            lay.effective_factors(point, "item"), lay.bias_of(point, "user"),
            lay.bias_of(point, "item"),
            lay.offset(point), user_part, item_part, bias_weight)

    def _likelihood_terms(self, sum_gg: float, sum_gr: float, sigma: float):
        """``(quad, lin)`` of the log-likelihood of a scaling ``s``: ``-quad s^2 + lin s``."""
        return sum_gg / (2 * sigma**2), (sum_gg + sum_gr) / sigma**2

    def _balance(self, point: dict) -> None:
        """``U[:, k] *= s_k``, ``V[:, k] /= s_k`` (with their means and Cholesky rows).

        The likelihood is unchanged, and so are the MvNormal densities of the factors
        (their normalisers cancel the Jacobians) and the LKJ part of the covariances.
        BPMF: in ``x = log s_k`` (Haar measure ``dx``) the density is ``p_sd(e^x sd_Uk)
        p_sd(e^-x sd_Vk) N(e^x mu_Uk; 0, s_mu^2) N(e^-x mu_Vk; 0, s_mu^2)`` (``sd_k`` the
        norm of row ``k`` of ``L``).  PMF: ``t_k = s_k^2`` has density ``t^(p - 1)
        exp(-A_k t - B_k / t)``, ``p = (n_U - n_V) / 2``, ``A_k = sum_u U_uk^2 / (2 s_U^2)``,
        ``B_k`` likewise.  Each is log-concave and slice-sampled from the identity
        (Liu & Sabatti 2000).
        """
        lay = self.layout
        users = lay.factors_of(point, "user")
        items = lay.factors_of(point, "item")
        # implicit factors scale with the side whose sums they make (W = U + M y: s W)
        up, down = self._implicit_parts(point)
        if not lay.hierarchical:
            p = (lay.user.n_rows + up[0] - lay.item.n_rows - down[0]) / 2
            a = (users**2).sum(axis=0) / (2 * lay.priors["user_factor_sd"] ** 2) + up[1]
            b = (items**2).sum(axis=0) / (2 * lay.priors["item_factor_sd"] ** 2) + down[1]
            # t = s^2: t^(p - 1) exp(-a t - b / t); slice in x = log t from 0 (log-concave)
            log_t = slice_each(self.rng, _gig_log_density(p, a, b), np.zeros(lay.n_factors),
                               width=1.0 / np.sqrt(a + b))
            scale = np.exp(log_t / 2)
            point[lay.user.factors] = users * scale
            point[lay.item.factors] = items / scale
            self._scale_implicit(point, scale)
            return
        (mu_u, chol_u), (mu_v, chol_v) = lay.side_prior(point, "user"), lay.side_prior(
            point, "item")
        sd_u, sd_v = np.sqrt((chol_u**2).sum(axis=1)), np.sqrt((chol_v**2).sum(axis=1))
        pr = lay.priors

        def logf(x):  # x = log s, one per factor (independent); the Haar measure is dx
            grow, shrink = np.exp(x), np.exp(-x)
            return (pr["user_sd_prior"].logp_each(grow * sd_u)
                    + pr["item_sd_prior"].logp_each(shrink * sd_v)
                    - (grow * mu_u) ** 2 / (2 * pr["user_mean_sd"] ** 2)
                    - (shrink * mu_v) ** 2 / (2 * pr["item_mean_sd"] ** 2)
                    # implicit factors (fixed-sd normal priors): Jacobian and prior
                    + (up[0] - down[0]) * x - grow**2 * up[1] - shrink**2 * down[1])

        curv = 4 * (sd_u**2 + sd_v**2 + mu_u**2 + mu_v**2 + up[1] + down[1]) + 1e-3
        scale = np.exp(slice_each(self.rng, logf, np.zeros(lay.n_factors),
                                  width=2.0 / np.sqrt(curv)))
        for side, factor in (("user", scale), ("item", 1 / scale)):
            sd = lay.side(side)
            if lay.centred:
                point[sd.factors] = np.asarray(point[sd.factors]) * factor
            point[f"{side}_factor_mean"] = np.asarray(point[f"{side}_factor_mean"]) * factor
            point[lay.value_names[f"{side}_factor_chol"]] = lay.scaled_chol(point, side, factor)
        self._scale_implicit(point, scale)

    def _implicit_parts(self, point: dict) -> tuple[tuple, tuple]:
        """``(rows, sum of squares / (2 sd^2) per factor)`` of the implicit factors that
        scale with the users' factors (``item_implicit``) and with the items'
        (``user_implicit``); ``(0, 0)`` for a side without them."""
        out = []
        for side in ("user", "item"):
            imp = self.layout.implicit.get(side)
            if imp is None:
                out.append((0, 0.0))
                continue
            y = np.asarray(point[imp.key], dtype=float)
            out.append((y.shape[0], (y**2).sum(axis=0) / (2 * imp.sd.of(point)**2)))
        return out[0], out[1]

    def _scale_implicit(self, point: dict, scale: np.ndarray) -> None:
        """``y *= s`` for the users' implicit sums, ``/= s`` for the items' (per factor)."""
        for side, factor in (("user", scale), ("item", 1 / scale)):
            imp = self.layout.implicit.get(side)
            if imp is not None:
                point[imp.key] = np.asarray(point[imp.key], dtype=float) * factor

    def _scale_factors(self, point: dict, side: str) -> None:
        """Rescale the side's factor deviations ``U - mu_U`` (BPMF: and ``L_U``) by one ``s``.

        BPMF: the MvNormal's normaliser cancels the Jacobian of the deviations, the
        LKJ-Cholesky density of ``s L`` leaves ``s^-(K(K-1)/2) prod_k p_sd(s sd_k)`` and
        ``L``'s Jacobian is ``s^(K(K+1)/2)``: with the Haar ``1 / s``, ``s^(K-1) prod_k
        p_sd(s sd_k)`` (``p_sd`` half-normal or Gamma: of the form ``s^a exp(-q s^2 + l
        s)``).  PMF (fixed prior sd): ``s^(nK-1) exp(-s^2 sum U^2 / (2 s_U^2))``.  Times
        the likelihood, Gaussian in ``s``.
        """
        lay = self.layout
        k = lay.n_factors
        s = lay.side(side)
        factors = lay.factors_of(point, side)
        other = lay.effective_factors(point, "item" if side == "user" else "user")
        mean, chol = lay.side_prior(point, side)
        dev = factors - mean
        parts = (dev, other) if side == "user" else (other, dev)
        quad, lin = self._likelihood_terms(*self._moments(point, *parts, 0.0), lay.sigma(point))
        if not lay.hierarchical:
            power = dev.size - 1.0
            quad += (dev**2).sum() / (2 * lay.priors[f"{side}_factor_sd"] ** 2)
        else:
            sd_power, sd_quad, sd_lin = lay.priors[f"{side}_sd_prior"].scaling_terms(
                np.sqrt((chol**2).sum(axis=1)))
            power = k - 1.0 + sd_power
            quad += sd_quad
            lin += sd_lin
        scale = draw_scale(self.rng, power, quad, lin, 1.0)
        if not lay.hierarchical or lay.centred:
            point[s.factors] = mean + scale * dev
        if lay.hierarchical:
            point[lay.value_names[f"{side}_factor_chol"]] = lay.scaled_chol(
                point, side, np.full(k, scale))

    def _scale_biases(self, point: dict) -> None:
        """Rescale the biases (BPMF: with ``tau``); likelihood Gaussian in ``s``.

        BPMF: ``pi(T_s x) ∝ HalfNormal(s tau) x likelihood`` (the bias priors'
        normalisers cancel the Jacobian, ``tau``'s log-transform Jacobian the Haar
        ``1 / s``): a normal truncated to ``s > 0``.  PMF (fixed bias sd):
        ``s^(n_b - 1) exp(-s^2 sum b^2 / (2 sd^2))`` times the likelihood.
        """
        lay = self.layout
        user_bias = np.asarray(point[lay.user.bias], dtype=float)
        item_bias = np.asarray(point[lay.item.bias], dtype=float)
        k = lay.n_factors
        no_u, no_i = np.zeros((lay.user.n_rows, k)), np.zeros((lay.item.n_rows, k))
        quad, lin = self._likelihood_terms(*self._moments(point, no_u, no_i, 1.0),
                                           lay.sigma(point))
        tau = lay.bias_sd(point)
        if not lay.learned_bias_sd:  # fixed prior sd
            power = user_bias.size + item_bias.size - 1.0
            quad += (user_bias @ user_bias + item_bias @ item_bias) / (2 * tau**2)
        else:  # tau moves with the biases: only its HalfNormal prior changes
            power = 0.0
            quad += tau**2 / (2 * lay.priors["bias_sd_scale"] ** 2)
        scale = draw_scale(self.rng, power, quad, lin, 1.0)
        point[lay.user.bias] = scale * user_bias
        point[lay.item.bias] = scale * item_bias
        if lay.learned_bias_sd:
            point[lay.value_names["bias_sd"]] = np.asarray(np.log(scale * tau))


class RidgeMoves(LayoutStep):
    """Moves that keep every expected rating: biases against factor means, and ``tau``.

    Statistic: ``shift_accepted`` (the MH acceptance of :meth:`_shift`).
    """

    name = "ridge_moves"
    stats_dtypes_shapes = {"shift_accepted": (bool, [])}

    def step(self, point: dict) -> tuple[dict, list[dict]]:
        lay = self.layout
        if not lay.biases:
            return point, self._stats(point, {"shift_accepted": True})
        point = dict(point)
        if lay.hierarchical:
            self._partition(point)
        if not lay.has_offset:  # ordinal: the cutpoint step translates biases and cutpoints
            return point, self._stats(point, {"shift_accepted": True})
        return point, self._stats(point, {"shift_accepted": self._shift(point)})

    def _partition(self, point: dict) -> None:
        r"""Move user (item) effects between the biases and the factors' mean direction.

        ``U_u . mu_V`` acts as a user bias, so the posterior spreads the user effects
        over ``b_u`` and ``U_u . mu_V`` with a split fixed by the priors (``tau`` against
        ``Sigma_U``); block Gibbs moves that split by ``O(1 / sqrt(n))`` per sweep.  The
        group ``T_s`` (``s > 0``): ``b -> s b``, ``c -> s c``, ``tau -> s tau``,
        ``U_u += (1 - s) b_u w_U``, ``V_i += (1 - s) c_i w_V`` with ``w_U . mu_V = 1 =
        w_V . mu_U`` (``w`` from quantities the move leaves alone: ``mu``, ``Sigma``,
        ``sigma``), has Jacobian ``s^(n_b)`` and Haar measure ``ds / s``; the powers of
        ``s`` cancel against the bias priors' normalisers and PyMC's log-transform
        Jacobian of ``tau``, leaving ``-s^2 tau^2 / (2 s_tau^2)``, the factors' Gaussian
        priors (quadratic in ``1 - s``) and the likelihood, a quartic in ``1 - s``
        (the fitted mean changes by ``(1 - s) g1 + (1 - s)^2 g2``, from one pass over
        the ratings).  ``s`` is slice-sampled from 1 (Liu & Sabatti 2000).
        """
        lay = self.layout
        (mu_u, chol_u), (mu_v, chol_v) = lay.side_prior(point, "user"), lay.side_prior(
            point, "item")
        sigma = lay.sigma(point)
        levers = []
        n_per = len(lay.rating)
        for mean_other, chol_own, chol_other, n_rows in ((mu_v, chol_u, chol_v, lay.user.n_rows),
                                                         (mu_u, chol_v, chol_u, lay.item.n_rows)):
            # w minimising the likelihood and prior cost of the shear, subject to w . mu = 1
            cost = (n_per / n_rows) / sigma**2 * (chol_other @ chol_other.T) + np.linalg.inv(
                chol_own @ chol_own.T)
            direction = np.linalg.solve(cost, mean_other)
            norm = direction @ mean_other
            if not norm > 1e-8:
                return
            levers.append(direction / norm)
        w_u, w_v = levers
        users = lay.factors_of(point, "user")
        items = lay.factors_of(point, "item")
        # the likelihood reads the effective factors (with implicit sums), the priors these
        eff_users, eff_items = lay.effective_factors(point, "user"), lay.effective_factors(
            point, "item")
        b = np.asarray(point[lay.user.bias], dtype=float)
        c = np.asarray(point[lay.item.bias], dtype=float)
        offset = lay.offset(point)
        sums = partition_moments(lay.user_code, lay.item_code, lay.rating, eff_users, eff_items,
                                 b, c, offset, eff_items @ w_u - 1.0, eff_users @ w_v - 1.0,
                                 w_u @ w_v)
        s_rg1, s_g1g1, s_rg2, s_g1g2, s_g2g2 = sums
        prior_terms = []
        for own, mean, chol, w, bias in ((users, mu_u, chol_u, w_u, b),
                                         (items, mu_v, chol_v, w_v, c)):
            lam_w = np.linalg.solve(chol.T, np.linalg.solve(chol, w))  # Sigma^-1 w
            prior_terms.append((bias @ ((own - mean) @ lam_w), (bias @ bias) * (w @ lam_w)))
        lin_prior = sum(t[0] for t in prior_terms)
        quad_prior = sum(t[1] for t in prior_terms)
        tau = lay.bias_sd(point)
        tau_scale = lay.priors["bias_sd_scale"]

        def logf(scale):
            if not scale > 0:
                return -np.inf
            a = 1.0 - scale
            sq = (-2 * a * s_rg1 + a * a * (s_g1g1 - 2 * s_rg2) + 2 * a**3 * s_g1g2
                  + a**4 * s_g2g2)
            return (-(scale * tau) ** 2 / (2 * tau_scale**2) - a * lin_prior
                    - 0.5 * a * a * quad_prior - sq / (2 * sigma**2))

        curv = (s_g1g1 - 2 * s_rg2) / sigma**2 + quad_prior + tau**2 / tau_scale**2
        scale = slice_1d(self.rng, logf, 1.0, width=1.0 / np.sqrt(max(curv, 1e-12)))
        a = 1.0 - scale
        new_users, new_items = users + a * np.outer(b, w_u), items + a * np.outer(c, w_v)
        for side, new, mean, chol in (("user", new_users, mu_u, chol_u),
                                      ("item", new_items, mu_v, chol_v)):
            name = lay.side(side).factors
            point[name] = new if lay.centred else np.linalg.solve(chol, (new - mean).T).T
        point[lay.user.bias] = scale * b
        point[lay.item.bias] = scale * c
        point[lay.value_names["bias_sd"]] = np.asarray(np.log(scale * tau))

    def _shift(self, point: dict) -> bool:
        r"""Move factor means against biases, and the bias scale ``tau``, jointly.

        With ``delta = (d_U, d_V, d_b, d_c)``: ``U += d_U``, ``V += d_V`` (and their
        means), ``b -= U d_V + d_b``, ``c -= V d_U + d_c``, ``m += d_b + d_c - d_U^T d_V``
        leaves every expected rating unchanged; with ``log tau += t`` (a translation in
        PyMC's value space) these form a group with unit Jacobian and Lebesgue Haar
        measure.  Given ``tau``, all priors but the offset's are Gaussian in ``delta``;
        the offset's is too once its ``d_U^T d_V`` term is dropped (``f~``).  We propose
        ``t`` from a Laplace (Student-t) fit to its ``f~``-marginal (``delta`` integrated
        out), ``delta | t`` from ``f~``, and accept with the exact Metropolis-Hastings
        ratio of ``f`` (Liu & Sabatti 2000: an MH kernel on the group started at the
        identity).  The offset prior is wide, so nearly every proposal is accepted.
        For PMF ``tau`` is fixed and only ``delta`` moves.
        """
        lay = self.layout
        k = lay.n_factors
        # the biases absorb what the effective factors (with implicit sums) add
        users = lay.effective_factors(point, "user")
        items = lay.effective_factors(point, "item")
        b = np.asarray(point[lay.user.bias], dtype=float)
        c = np.asarray(point[lay.item.bias], dtype=float)
        offset = float(point["offset"])
        gauss = self._shift_gaussian(point, users, items, b, c, offset)
        tau0 = lay.bias_sd(point)
        learn_tau = lay.learned_bias_sd
        t, log_q_ratio, marginal = 0.0, 0.0, None
        if learn_tau:
            marginal = self._tau_marginal(tau0, gauss, b.size + c.size)
            t, log_q_ratio = self._propose_t(marginal)
        tau = tau0 * np.exp(t)
        prec, h = gauss["p_tau"] / tau**2 + gauss["p_0"], gauss["h_tau"] / tau**2 + gauss["h_0"]
        delta = gaussian_draw(self.rng, prec, h)
        d_u, d_v, d_b, d_c = delta[:k], delta[k:2 * k], delta[2 * k], delta[2 * k + 1]
        s_m, m0 = lay.priors["offset_sd"], lay.offset_centre
        linear = offset + d_b + d_c - m0
        log_ratio = -((linear - d_u @ d_v) ** 2 - linear**2) / (2 * s_m**2)
        if learn_tau:
            log_ratio += marginal(t) - marginal(0.0) + log_q_ratio
        if not np.log(self.rng.uniform()) < log_ratio:
            return False
        for side, d in (("user", d_u), ("item", d_v)):
            if lay.hierarchical:
                point[f"{side}_factor_mean"] = np.asarray(point[f"{side}_factor_mean"]) + d
            if lay.centred:  # non-centred: z is unchanged when U and its mean move together
                point[lay.side(side).factors] = np.asarray(
                    point[lay.side(side).factors]) + d
        point[lay.user.bias] = b - users @ d_v - d_b
        point[lay.item.bias] = c - items @ d_u - d_c
        point["offset"] = np.asarray(offset + d_b + d_c - d_u @ d_v)
        if learn_tau:
            point[lay.value_names["bias_sd"]] = np.asarray(np.log(tau))
        return True

    def _shift_gaussian(self, point, users, items, b, c, offset) -> dict:
        """Precision and linear term of ``f~(delta | tau)``: ``P_tau / tau^2 + P_0``, ``h_tau / ...``."""
        lay = self.layout
        k = lay.n_factors
        dim = 2 * k + 2
        # b - [0, U, 1, 0] delta and c - [V, 0, 0, 1] delta, over tau^2
        p_tau = np.zeros((dim, dim))
        p_tau[k:2 * k, k:2 * k] = users.T @ users
        p_tau[k:2 * k, 2 * k] = p_tau[2 * k, k:2 * k] = users.sum(axis=0)
        p_tau[2 * k, 2 * k] = b.size
        p_tau[:k, :k] = items.T @ items
        p_tau[:k, 2 * k + 1] = p_tau[2 * k + 1, :k] = items.sum(axis=0)
        p_tau[2 * k + 1, 2 * k + 1] = c.size
        h_tau = np.concatenate([items.T @ c, users.T @ b, [b.sum(), c.sum()]])
        # offset (linearised): (m - m0 + d_b + d_c)^2 / s_m^2; the factors' (mean) priors
        s_m = lay.priors["offset_sd"]
        e = np.zeros(dim)
        e[2 * k:] = 1.0
        p_0 = np.outer(e, e) / s_m**2
        h_0 = -e * (offset - lay.offset_centre) / s_m**2
        for j, side in enumerate(("user", "item")):
            block = slice(j * k, (j + 1) * k)
            if not lay.hierarchical:  # the factors' own prior: U + d_U, without implicit sums
                own = lay.factors_of(point, side)
                sd = lay.priors[f"{side}_factor_sd"]
                p_0[block, block] += np.eye(k) * own.shape[0] / sd**2
                h_0[block] -= own.sum(axis=0) / sd**2
            else:
                mean_sd = lay.priors[f"{side}_mean_sd"]
                p_0[block, block] += np.eye(k) / mean_sd**2
                h_0[block] -= np.asarray(point[f"{side}_factor_mean"]) / mean_sd**2
        return {"p_tau": p_tau, "h_tau": h_tau, "ss_tau": b @ b + c @ c, "p_0": p_0, "h_0": h_0}

    def _tau_marginal(self, tau0: float, g: dict, n_bias: int):
        """``log f~(t)`` with ``delta`` integrated out (up to a constant), ``tau = tau0 e^t``.

        With ``x = 1 / tau^2``, ``P(x) = P_tau x + P_0``.  With ``P(x0) = R R^T`` and
        ``R^-1 P_tau R^-T = Q diag(lam) Q^T`` (computed once), ``log |P(x)| = sum log(1 +
        (x - x0) lam) + const`` and ``h^T P^-1 h = sum (x a + b)^2 / (1 + (x - x0) lam)``
        with ``a, b`` the projections of ``h_tau, h_0``: each evaluation is then a few
        vector operations.
        """
        scale = self.layout.priors["bias_sd_scale"]
        x0 = 1.0 / tau0**2
        root = np.linalg.cholesky(g["p_tau"] * x0 + g["p_0"])
        m = np.linalg.solve(root, np.linalg.solve(root, g["p_tau"]).T)
        lam, q = np.linalg.eigh((m + m.T) / 2)
        lam = np.maximum(lam, 0.0)
        a = q.T @ np.linalg.solve(root, g["h_tau"])
        b = q.T @ np.linalg.solve(root, g["h_0"])

        def logf(t):
            x = x0 * np.exp(-2 * t)
            grow = 1.0 + (x - x0) * lam
            return float(-0.5 / (scale * scale * x) + (1 - n_bias) * -0.5 * np.log(x)
                         - 0.5 * g["ss_tau"] * x + 0.5 * (((a * x + b) ** 2) / grow).sum()
                         - 0.5 * np.log(grow).sum())

        return logf

    def _propose_t(self, logf, df: float = 5.0) -> tuple[float, float]:
        """A Student-t draw around the mode of ``logf`` (Newton, finite differences);
        returns ``(t, log q(0) - log q(t))``."""
        mode, eps = 0.0, 1e-3
        for _ in range(8):
            f0, fp, fm = logf(mode), logf(mode + eps), logf(mode - eps)
            grad, curv = (fp - fm) / (2 * eps), (fp - 2 * f0 + fm) / eps**2
            if not curv < 0:
                break
            step = -grad / curv
            mode += float(np.clip(step, -1.0, 1.0))
            if abs(step) < 1e-6:
                break
        curv = (logf(mode + eps) - 2 * logf(mode) + logf(mode - eps)) / eps**2
        width = 1.2 / np.sqrt(-curv) if curv < 0 else 0.1
        t = mode + width * self.rng.standard_t(df)

        def log_q(x):
            return -(df + 1) / 2 * np.log1p(((x - mode) / width) ** 2 / df)

        return float(t), float(log_q(0.0) - log_q(t))
