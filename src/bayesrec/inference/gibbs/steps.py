r"""The exact conditional updates: factors, biases, offset, noise; BPMF hyperparameters.

:class:`FactorGibbs` draws all user rows ``theta_u = (U_u, b_u)`` at once from their
joint Gaussian conditional, then all item rows ``(V_i, c_i)`` given the new users.
For row ``u`` with rated items ``i``, features ``x_i = (V_i, 1)``, residuals
``y_ui = r_ui - m - c_i`` and the prior ``theta_u ~ N(mu_0, P_0^{-1})``:

.. math::

    P_u = P_0 + \sigma^{-2} \sum_i x_i x_i^\top, \qquad
    \theta_u \mid \cdot \sim
    \mathcal N\big(P_u^{-1} (P_0 \mu_0 + \sigma^{-2} \textstyle\sum_i x_i y_{ui}),
    \ P_u^{-1}\big),

with ``P_0 = diag(Sigma_U^{-1}, 1 / tau^2)`` (BPMF: ``Sigma_U = L L^T`` from the
LKJ Cholesky factor; PMF: ``I / s_U^2`` and a fixed bias sd) and ``mu_0 = (mu_U,
0)``.  Non-centred BPMF (``U_u = mu_U + L z_u``, ``z_u ~ N(0, I)``): the same for
``theta_u = (z_u, b_u)`` with features ``(L^T V_i, 1)``, residuals ``y_ui - mu_U^T
V_i`` and ``P_0 = diag(I, 1 / tau^2)``, ``mu_0 = 0``.  With side features (centred
only) the prior mean is per row, ``mu_0 = (mu_U + x_u B_U, x_u beta_U)``.  Then the offset
``m ~ N(m_0, s_m^2)`` from its Gaussian conditional (precision ``1 / s_m^2 + N /
sigma^2``, mean ``(m_0 / s_m^2 + sum(e) / sigma^2) / precision`` with ``e = r - b_u -
c_i - U_u^T V_i``) and the noise ``sigma ~ HalfNormal(s)`` by an exact independence
Metropolis-Hastings step (:func:`~bayesrec.inference.gibbs.kernels.scale_independence_mh`).

:class:`HyperGibbs` updates BPMF's hyperparameters given the factors and biases.
"""

from __future__ import annotations

import numpy as np
from pymc.step_methods.compound import BlockedStep, Competence

from bayesrec.errors import FitError, InputError
from bayesrec.inference.gibbs.kernels import (
    cov_prior_weight,
    draw_rows,
    gaussian_draw,
    inverse_wishart,
    linear_predictor,
    probit_level_log_probs,
    residual_moments,
    scale_independence_mh,
    scaling_moments,
)
from bayesrec.inference.gibbs.layout import FactorLayout

__all__ = [
    "FactorGibbs",
    "HyperGibbs",
    "LayoutStep",
    "check_ratings_vary",
    "conditional_inputs",
    "log_likelihood",
    "ordinal_eta",
    "require_scale",
]


def require_scale(sd: float, what: str) -> float:
    """``sd``, or :class:`FitError` when it has collapsed to zero (``sd**2`` is 0, so every
    precision ``1 / sd**2`` would divide by zero) or is not finite.

    A scale reaches zero when the model fits the training ratings exactly (for example
    ratings that all have one value): its conditional then piles up at zero, the
    posterior is improper there, and no sampler can continue.
    """
    if not (np.isfinite(sd) and sd**2 > 0.0):
        raise FitError(
            f"the {what} collapsed to {sd:g} during Gibbs sampling: the model fits the training "
            "ratings exactly (do they all have the same value, or are there far fewer ratings "
            "than parameters?), so its posterior piles up at zero; fit on ratings that vary, "
            "or with fewer factors"
        )
    return sd


def check_ratings_vary(layout: FactorLayout) -> None:
    """Refuse training ratings that all have one value when the noise sd is learned."""
    rating = np.asarray(layout.rating)
    if layout.noise is None and len(rating) and float(np.ptp(rating)) == 0.0:
        raise InputError(
            f"every training rating equals {float(rating[0]):g}: the noise sd of the model has "
            "no lower bound (its posterior piles up at zero), so the Gibbs sampler cannot run; "
            "fit on ratings that vary"
        )


def log_likelihood(layout: FactorLayout, point: dict) -> float:
    """The training log-likelihood ``sum log N(r | mu, sigma)`` at ``point`` (one pass);
    with an ordered probit ``sum log P(level | eta, cutpoints)`` of the observed levels."""
    if layout.ordinal:
        return float(probit_level_log_probs(ordinal_eta(layout, point), layout.level_code,
                                            layout.cutpoints(point)).sum())
    total, total_sq = residual_moments(
        layout.user_code, layout.item_code, _rating_less_day(layout, point),
        layout.effective_factors(point, "user"),
        layout.effective_factors(point, "item"), layout.bias_of(point, "user"),
        layout.bias_of(point, "item"))
    n, offset = len(layout.rating), layout.offset(point)
    sigma = require_scale(layout.sigma(point), "noise sd")
    sse = max(total_sq - 2.0 * offset * total + n * offset**2, 0.0)
    return float(-0.5 * n * np.log(2 * np.pi * sigma**2) - sse / (2 * sigma**2))


def _rating_less_day(layout: FactorLayout, point: dict) -> np.ndarray:
    """The training ratings minus what their days add (the ratings without a day context)."""
    term = layout.day_term(point)
    return layout.rating if term is None else layout.rating - term


def ordinal_eta(layout: FactorLayout, point: dict) -> np.ndarray:
    """The linear predictor ``b_u + c_i + U_u . V_i`` of every training rating (with the
    implicit sums, when the model has them)."""
    return linear_predictor(layout.user_code, layout.item_code,
                            layout.effective_factors(point, "user"),
                            layout.effective_factors(point, "item"), layout.bias_of(point, "user"),
                            layout.bias_of(point, "item"))


def conditional_inputs(layout: FactorLayout, point: dict, side: str,
                       other_factors: np.ndarray, other_bias: np.ndarray, offset: float,
                       sigma: float) -> dict:
    """The arguments of :func:`draw_rows` (all but ``eps``) for one side's rows at ``point``.

    The row conditionals of the module docstring: prior precision ``P_0`` and ``P_0 mu_0``,
    features and ``base`` (what the offset and the other side's biases contribute),
    given the other side's (centred) factors and biases, the offset and the noise sd.
    With an implicit-feedback sum ``s_r`` on this side the rows drawn are the effective
    ``U_r + s_r`` (prior mean shifted by ``s_r``; ``other_factors`` are the other side's
    effective factors too).  With a day context each rating has its own "other row"
    ``Z_o + D_d`` and ``base`` gains ``e_d + Z_o . D_d`` (``other`` is then the rating's
    position).  Also used by :func:`bayesrec.inference.fold_in` for users the fit has not seen.
    """
    k = layout.n_factors
    mean, chol = layout.side_prior(point, side)
    dim = k + (1 if layout.biases else 0)
    prior_prec, prior_h = np.zeros((dim, dim)), np.zeros(dim)
    base = offset + other_bias
    if layout.centred:
        feats = other_factors
        chol_inv = np.linalg.inv(chol)
        prior_prec[:k, :k] = chol_inv.T @ chol_inv
        prior_h[:k] = prior_prec[:k, :k] @ mean
    else:  # U = mean + L z: z has a N(0, I) prior and features L^T V
        feats = other_factors @ chol
        base = base + other_factors @ mean
        prior_prec[:k, :k] = np.eye(k)
    if layout.biases:
        prior_prec[k, k] = 1.0 / require_scale(layout.bias_sd(point), "bias sd") ** 2
    prior_h = _feature_prior_h(layout, point, side, prior_prec, prior_h)
    s = layout.side(side)
    other, feats, base = layout.rating_rows(point, side, feats, base)
    return {"indptr": s.indptr, "other": other, "rating": s.rating,
            "base": np.ascontiguousarray(base, dtype=np.float64),
            "feats": np.ascontiguousarray(feats, dtype=np.float64), "bias": layout.biases,
            "prior_prec": prior_prec, "prior_h": prior_h,
            "noise_prec": 1.0 / require_scale(sigma, "noise sd") ** 2}


def _feature_prior_h(layout: FactorLayout, point: dict, side: str, prior_prec: np.ndarray,
                     prior_h: np.ndarray) -> np.ndarray:
    """``prior_h`` (D,), or with a per-row prior mean one row per row: ``P_0 (mu_0 + m_r)``
    with ``m_r = (x_r B + s_r, x_r beta)``: the feature part of row ``r``'s prior mean
    (side features) and its implicit sum ``s_r`` (the rows drawn are ``U_r + s_r``)."""
    factor_part = layout.feature_mean(point, side)
    implicit = layout.implicit_sum(point, side)
    if factor_part is None and implicit is None:
        return prior_h
    if not layout.centred:
        raise InputError("the gibbs method samples a non-centred model with features or "
                         "implicit terms through its centred twin "
                         "(bayesrec.inference.gibbs.run), not directly")
    k = layout.n_factors
    shift = np.zeros((layout.side(side).n_rows, len(prior_h)))
    for part in (factor_part, implicit):
        if part is not None:
            shift[:, :k] += part
    if layout.biases and factor_part is not None:
        shift[:, k] = layout.bias_feature_mean(point, side)
    return prior_h + shift @ prior_prec.T


class LayoutStep(BlockedStep):
    """A PyMC step method over a :class:`FactorLayout`; never assigned automatically.

    With ``report_log_likelihood=True`` the step adds the statistic ``training_log_likelihood``:
    the training log-likelihood of the point it returns (:func:`gibbs_steps` asks the
    last step of a sweep for it, so it is the log-likelihood of each recorded draw).
    """

    def __init__(self, vars, layout: FactorLayout, *, report_log_likelihood: bool = False,
                 model=None, blocked=True, rng=None):
        self.vars = vars
        self.layout = layout
        self.rng = np.random.default_rng(rng)
        self.report_log_likelihood = report_log_likelihood
        if report_log_likelihood:  # per-instance statistics (PyMC reads both attributes)
            self.stats_dtypes_shapes = {**self.stats_dtypes_shapes,
                                        "training_log_likelihood": (np.float64, [])}
            self.stats_dtypes = [{k: d for k, (d, _) in self.stats_dtypes_shapes.items()}]

    @staticmethod
    def competence(var, has_grad):
        return Competence.INCOMPATIBLE

    def _stats(self, point: dict, stats: dict, loglik: float | None = None) -> list[dict]:
        if loglik is not None:
            self.layout.remember_log_likelihood(point, loglik)
        if self.report_log_likelihood:
            if loglik is None:
                loglik = self.layout.remembered_log_likelihood(point)
            if loglik is None:
                loglik = log_likelihood(self.layout, point)
                self.layout.remember_log_likelihood(point, loglik)
            stats["training_log_likelihood"] = loglik
        return [stats]


class FactorGibbs(LayoutStep):
    """Exact Gibbs updates of the factors, biases, offset and noise (see the module doc).

    Statistic: ``noise_accepted``.
    """

    name = "factor_gibbs"
    stats_dtypes_shapes = {"noise_accepted": (bool, [])}

    def __init__(self, vars, layout: FactorLayout, *, hold_bias_sd: int = 0,
                 rescale: bool = False, overrelax: float = 0.0,
                 report_log_likelihood: bool = False, model=None, blocked=True, rng=None):
        super().__init__(vars, layout, report_log_likelihood=report_log_likelihood,
                         model=model, blocked=blocked, rng=rng)
        check_ratings_vary(layout)
        self.overrelax = float(overrelax)
        self.hold_bias_sd = int(hold_bias_sd)
        self.rescale = bool(rescale) and layout.hierarchical and layout.centred
        self.tune = False
        self._sweep = 0

    def setup_chain(self, rng, tune: int, draws: int) -> None:
        super().setup_chain(rng, tune, draws)
        self.tune = tune > 0
        self._sweep = 0

    def _burn_in_hold(self, point: dict) -> None:
        """During the first ``hold_bias_sd`` burn-in sweeps, reset BPMF's bias scale.

        From the initial point (factors at zero) the biases first take up all user
        and item effects, and the chain then stays for hundreds of sweeps in a
        metastable region (``tau`` about 0.3 on MovieLens, a higher likelihood but a
        much lower posterior density) before the factor means take those effects
        over.  Holding ``tau`` at ``bias_sd_scale / 20`` at the start of the first
        sweeps lets the factors form first.  Burn-in draws are discarded, and
        afterwards every update is exact.
        """
        lay = self.layout
        if (self.tune and self._sweep < self.hold_bias_sd and lay.biases
                and lay.learned_bias_sd):
            point[lay.value_names["bias_sd"]] = np.asarray(
                np.log(lay.priors["bias_sd_scale"] / 20))
        self._sweep += 1

    # -- one side -------------------------------------------------------------------------
    def side_inputs(self, point: dict, side: str, other_factors: np.ndarray,
                    other_bias: np.ndarray, offset: float, sigma: float) -> dict:
        """The arguments of :func:`draw_rows` for one side at ``point`` (tests use it)."""
        return conditional_inputs(self.layout, point, side, other_factors, other_bias, offset,
                                  sigma)

    def _update_side(self, point, side, other_factors, other_bias, offset, sigma):
        """Draw one side; write it into ``point``; return its factors and bias."""
        lay = self.layout
        k = lay.n_factors
        inputs = self.side_inputs(point, side, other_factors, other_bias, offset, sigma)
        s = lay.side(side)
        eps = self.rng.standard_normal((s.n_rows, k + (1 if lay.biases else 0)))
        implicit = lay.implicit_sum(point, side)  # the rows drawn are U + s (conditional_inputs)
        current = None
        if self.overrelax:
            current = np.asarray(point[s.factors], dtype=float)
            if implicit is not None:
                current = current + implicit
            if lay.biases:
                current = np.column_stack([current, np.asarray(point[s.bias], dtype=float)])
        theta, gram, h = draw_rows(eps=eps, moments=True, current=current,
                                   alpha=self.overrelax, **inputs)
        point[s.factors] = theta[:, :k] - implicit if implicit is not None else theta[:, :k].copy()
        if lay.biases:
            point[s.bias] = theta[:, k].copy()
        if self.rescale:
            self.rescale_factors(point, side, theta, gram, h, sigma)
        return lay.effective_factors(point, side), lay.bias_of(point, side)

    def rescale_factors(self, point, side, theta, gram, h, sigma) -> bool:
        r"""Rescale each factor's deviations and Cholesky row, ``U = mu + (U - mu) S``,
        ``L -> S L``, given the new rows (centred BPMF; the non-centred half of an
        interweaving scheme, ASIS).

        The group ``(R_+)^K`` with Haar ``prod ds_k / s_k``: the MvNormal normalisers
        cancel the Jacobian of the deviations, the LKJ part is unchanged, and the powers
        of ``s`` from ``L``'s Jacobian and the LKJ-Cholesky density cancel, leaving
        ``prod_k p_sd(s_k sd_k)`` times the likelihood, which is Gaussian in ``s`` with
        ``F^T F`` and ``F^T res`` (``f_uik = (U_uk - mu_k) V_ik``) computed from the row
        moments the draw already assembled (no pass over the ratings).  With implicit sums
        the rows drawn (``theta``) are ``U + s`` and the deviations are ``U - mu``: the sums
        stay, only the deviations scale.  ``s`` is
        proposed from the Gaussian part restricted to ``s > 0`` and accepted with the
        remaining ``prod s_k^(a-1)`` of a Gamma(``a``) sd prior (exact MH on the group
        from the identity; always accepted with a half-normal one).
        """
        lay = self.layout
        mean, chol = lay.side_prior(point, side)
        dev = np.asarray(point[lay.side(side).factors]) - mean  # theta is U (+ implicit sum)
        ftf, ftr = scaling_moments(dev, gram, theta, h)
        power, quad, lin = lay.priors[f"{side}_sd_prior"].scaling_terms_each(
            np.sqrt((chol**2).sum(axis=1)))
        prec = ftf / sigma**2 + np.diag(2 * quad)
        linear = (ftr + ftf.sum(axis=1)) / sigma**2 + lin
        try:
            for _ in range(100):
                scale = gaussian_draw(self.rng, prec, linear)
                if (scale > 0).all():
                    break
            else:
                return False
        except np.linalg.LinAlgError:  # no information on the scales yet (factors at zero)
            return False
        if not np.log(self.rng.uniform()) < (power * np.log(scale)).sum():
            return False
        point[lay.side(side).factors] = mean + dev * scale
        point[lay.value_names[f"{side}_factor_chol"]] = lay.scaled_chol(point, side, scale)
        return True

    # -- the sweep ------------------------------------------------------------------------
    def step(self, point: dict) -> tuple[dict, list[dict]]:
        lay = self.layout
        point = dict(point)
        self._burn_in_hold(point)
        sigma, offset = lay.sigma(point), lay.offset(point)
        item_factors, item_bias = lay.effective_factors(point, "item"), lay.bias_of(point, "item")
        user_factors, user_bias = self._update_side(point, "user", item_factors, item_bias,
                                                    offset, sigma)
        item_factors, item_bias = self._update_side(point, "item", user_factors, user_bias,
                                                    offset, sigma)
        total, total_sq = residual_moments(lay.user_code, lay.item_code,
                                           _rating_less_day(lay, point), user_factors,
                                           item_factors, user_bias, item_bias)
        n = len(lay.rating)
        if lay.has_offset:
            offset = self._draw_offset(total, n, sigma)
            point["offset"] = np.asarray(offset)
        # rounding can make the sum of squares of (near) zero residuals negative
        sse = max(total_sq - 2.0 * offset * total + n * offset**2, 0.0)
        accepted = True
        if lay.noise is None:
            sigma, accepted = scale_independence_mh(self.rng, sigma, n, sse,
                                                    lay.priors["noise_sd"])
            require_scale(sigma, "noise sd")
            point[lay.value_names["sigma"]] = np.asarray(np.log(sigma))
        # ordinal: the Gaussian likelihood of the latent ratings is not the model's
        loglik = (None if lay.ordinal
                  else -0.5 * n * np.log(2 * np.pi * sigma**2) - sse / (2 * sigma**2))
        return point, self._stats(point, {"noise_accepted": bool(accepted)}, loglik)

    def offset_conditional(self, total: float, n: int, sigma: float) -> tuple[float, float]:
        """``(mean, precision)`` of the offset given ``sum(e)`` over ``n`` ratings."""
        prior_sd = self.layout.priors["offset_sd"]
        sigma = require_scale(sigma, "noise sd")
        prec = 1.0 / prior_sd**2 + n / sigma**2
        return (self.layout.offset_centre / prior_sd**2 + total / sigma**2) / prec, prec

    def _draw_offset(self, total: float, n: int, sigma: float) -> float:
        mean, prec = self.offset_conditional(total, n, sigma)
        return float(mean + self.rng.standard_normal() / np.sqrt(prec))


def _minus(values: np.ndarray, part: np.ndarray | None) -> np.ndarray:
    return values if part is None else values - part


class HyperGibbs(LayoutStep):
    r"""Exact updates of BPMF's hyperparameters given the factors and biases.

    For each side, with ``U`` the factors (``mu + z L^T`` when non-centred), ``n``
    rows and prior ``mu ~ N(0, s_mu^2 I)``:

    * ``mu | U, Sigma ~ N(P^{-1} Sigma^{-1} sum_u U_u, P^{-1})``, ``P = I / s_mu^2 + n
      Sigma^{-1}``;
    * ``Sigma = L L^T | U, mu``: the likelihood part has the shape of an inverse
      Wishart, so ``Sigma' ~ InvWishart(n - K - 1, S)`` with ``S = sum_u (U_u - mu)(U_u
      - mu)^T`` is proposed and accepted with the ratio of the LKJ-Cholesky prior
      density carried over to ``Sigma`` (independence MH, exact; needs ``n > 2 K``);
    * ``tau | b, c`` (the bias scale) by the same independence MH as the noise.

    With side features (centred only) ``U`` stands for ``U - X B`` and ``b`` for ``b -
    X beta`` throughout.  With the non-centred parameterisation the update keeps ``U`` fixed and rewrites
    ``z = L'^{-1} (U - mu')``: a Gibbs update of ``(mu, Sigma)`` given ``U`` in the
    centred coordinates (a bijection of the non-centred ones), so still exact; the
    step then also owns the ``*_factors_std`` variables.
    """

    name = "hyper_gibbs"
    stats_dtypes_shapes = {
        "user_cov_accepted": (bool, []),
        "item_cov_accepted": (bool, []),
        "bias_sd_accepted": (bool, []),
    }

    def __init__(self, vars, layout: FactorLayout, **kwargs):
        super().__init__(vars, layout, **kwargs)
        too_few = [s.name for s in (layout.user, layout.item) if s.n_rows <= 2 * layout.n_factors]
        if too_few:
            raise InputError(f"the exact covariance update needs more than 2 x n_factors rows "
                             f"per side; {too_few} have too few: use hyper='nuts'")

    def step(self, point: dict) -> tuple[dict, list[dict]]:
        lay = self.layout
        point = dict(point)
        out = {f"{side}_cov_accepted": self._update_side(point, side)
               for side in ("user", "item")}
        out["bias_sd_accepted"] = True
        if lay.biases:  # with features, the biases' deviations from their means x beta
            biases = np.concatenate([_minus(lay.bias_of(point, s), lay.bias_feature_mean(point, s))
                                     for s in ("user", "item")])
            tau, out["bias_sd_accepted"] = scale_independence_mh(
                self.rng, lay.bias_sd(point), len(biases), float(biases @ biases),
                lay.priors["bias_sd_scale"])
            point[lay.value_names["bias_sd"]] = np.asarray(np.log(tau))
        return point, self._stats(point, out)

    def _update_side(self, point: dict, side: str) -> bool:
        lay = self.layout
        p = lay.priors
        k = lay.n_factors
        # with features, U - X B: rows N(mu, Sigma) (the update holds X B fixed)
        factors = _minus(lay.factors_of(point, side), lay.feature_mean(point, side))
        mean, chol = lay.side_prior(point, side)
        n = factors.shape[0]
        # mean | factors, Sigma
        cov_inv = np.linalg.inv(chol @ chol.T)
        mean = gaussian_draw(self.rng, np.eye(k) / p[f"{side}_mean_sd"] ** 2 + n * cov_inv,
                             cov_inv @ factors.sum(axis=0))
        # Sigma | factors, mean: inverse-Wishart proposal, LKJ prior ratio
        dev = factors - mean
        new_chol = np.linalg.cholesky(inverse_wishart(self.rng, n - k - 1, dev.T @ dev))
        eta, sd_prior = p[f"{side}_lkj_eta"], p[f"{side}_sd_prior"]
        log_ratio = (cov_prior_weight(new_chol, eta, sd_prior)
                     - cov_prior_weight(chol, eta, sd_prior))
        accepted = bool(np.log(self.rng.uniform()) < log_ratio)
        if accepted:
            chol = new_chol
        point[f"{side}_factor_mean"] = mean
        point[lay.value_names[f"{side}_factor_chol"]] = lay.packed_chol(chol)
        if not lay.centred:  # keep U: z = L^{-1} (U - mean)
            point[lay.side(side).factors] = np.linalg.solve(chol, (factors - mean).T).T
        return accepted
