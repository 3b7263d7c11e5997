r"""Exact updates of a day context (``context="day"`` of PMF and BPMF).

With the day of each rating as a factorisation machine's context the mean of rating
``(u, i)`` on day ``d`` is ``m + b_u + c_i + e_d + W_u . Z_i + (W_u + Z_i) . D_d`` (``W``,
``Z`` the users' and items' effective factors, implicit sums included).  It is linear in
the day's row ``theta_d = (D_d, e_d)``, with features ``x = (W_u + Z_i, 1)`` and response
``r - m - b_u - c_i - W_u . Z_i``, and the rows of different days share no rating: given
everything else they are independent Gaussians,

.. math::

    P_d = P_0 + \sigma^{-2} \sum_{(u, i) \text{ on } d} x x^\top, \qquad
    \theta_d \mid \cdot \sim \mathcal N\big(P_d^{-1} \sigma^{-2} \textstyle\sum x y,
    \ P_d^{-1}\big),

``P_0 = diag(s_D^{-2} I, s_e^{-2})``, drawn all at once by the row kernel
(:func:`~bayesrec.inference.gibbs.kernels.draw_rows`, one "other row" per rating) and
over-relaxed like the users' and items' rows.  The ``"unseen"`` day has no rating: its
row is a draw from the prior.  The users' and items' rows see the days through
:meth:`~bayesrec.inference.gibbs.layout.FactorLayout.rating_rows` (each rating's other row
becomes ``Z_i + D_d``).
"""

from __future__ import annotations

import numpy as np

from bayesrec.inference.gibbs.features import draw_log_scale
from bayesrec.inference.gibbs.kernels import draw_rows
from bayesrec.inference.gibbs.steps import LayoutStep, log_likelihood, require_scale

__all__ = ["DayGibbs"]


class DayGibbs(LayoutStep):
    """Exact (over-relaxed) Gibbs draws of every day's factors and bias (module doc)."""

    name = "day_gibbs"
    stats_dtypes_shapes = {}

    def __init__(self, vars, layout, *, overrelax: float = 0.0, **kwargs):
        super().__init__(vars, layout, **kwargs)
        self.overrelax = float(overrelax)

    def inputs(self, point: dict) -> dict:
        """The arguments of :func:`draw_rows` (all but ``eps``) for the days at ``point``."""
        lay, ctx = self.layout, self.layout.context
        k = lay.n_factors
        users = lay.effective_factors(point, "user")[lay.user_code]
        items = lay.effective_factors(point, "item")[lay.item_code]
        base = (lay.offset(point) + lay.bias_of(point, "user")[lay.user_code]
                + lay.bias_of(point, "item")[lay.item_code] + np.einsum("rk,rk->r", users, items))
        dim = k + (1 if ctx.bias is not None else 0)
        prior_prec = np.zeros((dim, dim))
        prior_prec[:k, :k] = np.eye(k) / ctx.factor_sd.of(point)**2
        if ctx.bias is not None:
            prior_prec[k, k] = 1.0 / ctx.bias_sd.of(point)**2
        order = ctx.order
        return {"indptr": ctx.indptr, "other": np.arange(len(order), dtype=np.int64),
                "rating": np.ascontiguousarray(lay.rating[order]),
                "base": np.ascontiguousarray(base[order]),
                "feats": np.ascontiguousarray((users + items)[order]),
                "bias": ctx.bias is not None, "prior_prec": prior_prec,
                "prior_h": np.zeros(dim),
                "noise_prec": 1.0 / require_scale(lay.sigma(point), "noise sd") ** 2}

    def translate(self, point: dict) -> None:
        """The offset against each group of biases: ``(m + c, b - c)`` leaves every rating's
        mean as it was, for the rated days' biases, the users' and the items' (a
        translation: its Haar measure is Lebesgue's), so ``c`` is drawn from the Gaussian
        the priors give it.  Without it the offset and the days' biases (few, with a
        prior as wide as the offset's own spread) trade places one sweep at a time: split
        R-hat 1.17 and ESS 9 for the offset on 1,200 ratings on 10 days, where NUTS mixes.
        (The users' and items' groups are the moves' job without a day context.)"""
        lay, ctx = self.layout, self.layout.context
        rated = np.diff(ctx.indptr) > 0  # the unseen day has no rating: it does not move
        groups = []
        if ctx.bias is not None:
            groups.append((ctx.bias, rated, np.zeros(ctx.n_days), ctx.bias_sd.of(point)))
        tau = lay.bias_sd(point)
        for side in ("user", "item"):
            s = lay.side(side)
            mean = lay.bias_feature_mean(point, side)
            groups.append((s.bias, np.ones(s.n_rows, dtype=bool),
                           np.zeros(s.n_rows) if mean is None else mean, tau))
        prior_sd, centre = lay.priors["offset_sd"], lay.offset_centre
        for key, moved, mean, sd in groups:
            offset = float(point["offset"])
            bias = np.asarray(point[key], dtype=float)
            prec = 1.0 / prior_sd**2 + moved.sum() / sd**2
            lin = (centre - offset) / prior_sd**2 + (bias - mean)[moved].sum() / sd**2
            c = lin / prec + self.rng.standard_normal() / np.sqrt(prec)
            point["offset"] = np.asarray(offset + c)
            point[key] = np.where(moved, bias - c, bias)

    def step(self, point: dict) -> tuple[dict, list[dict]]:
        lay, ctx = self.layout, self.layout.context
        point = dict(point)
        k = lay.n_factors
        factors, bias = lay.day_values(point)
        current = factors if ctx.bias is None else np.column_stack([factors, bias])
        eps = self.rng.standard_normal(current.shape)
        theta = draw_rows(eps=eps, current=current, alpha=self.overrelax, **self.inputs(point))
        point[ctx.factors] = theta[:, :k].copy()
        if ctx.bias is not None:
            point[ctx.bias] = theta[:, k].copy()
        for key, scale in ((ctx.factors, ctx.factor_sd), (ctx.bias, ctx.bias_sd)):
            if scale is not None and scale.key is not None:  # BPMF's learned sds, given the days
                point[scale.key] = np.asarray(draw_log_scale(
                    self.rng, np.asarray(point[key]), scale.prior, scale.of(point)))
        if lay.has_offset:
            self.translate(point)
        loglik = log_likelihood(lay, point) if self.report_log_likelihood else None
        return point, self._stats(point, {}, loglik)
