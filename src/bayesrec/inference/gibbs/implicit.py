r"""Exact updates of the implicit-feedback factors (``implicit=`` of PMF and BPMF).

With implicit feedback (Koren 2008) a user's factors in the likelihood are ``W_u = U_u +
s_u``, ``s_u = w_u sum_{j in N(u)} y_j`` with ``w_u = |N(u)|^{-1/2}``, ``N(u)`` the items
the user rated in the training data and ``y_j ~ N(0, s_y^2 I)`` (``item_implicit``).  The
likelihood ``r_ui ~ N(m + b_u + c_i + W_u . Z_i, sigma^2)`` (``Z`` the items' factors, with
their own sum when ``implicit="both"``) is linear in each ``y_j``, so ``y_j`` given
everything else is Gaussian.  With the residuals ``e_ui`` of the current point and, per
user, ``A_u = sum_{i in R(u)} Z_i Z_i^T`` and ``c_u = sum_{i in R(u)} Z_i e_ui`` (``R(u)``,
the items the user rated, is ``N(u)``):

.. math::

    P_j = s_y^{-2} I + \sigma^{-2} \sum_{u \ni j} w_u^2 A_u, \qquad
    h_j = \sigma^{-2} \sum_{u \ni j} w_u (c_u + w_u A_u y_j), \qquad
    y_j \mid \cdot \sim \mathcal N(P_j^{-1} h_j, P_j^{-1}).

:class:`ImplicitGibbs` draws the ``y_j`` one item after the other (a Gibbs scan over
blocks of ``K``; the ``y_j`` of two items a user shares are not independent given the
rest, so they cannot be drawn at once), keeping ``c_u`` current: after ``y_j`` moves by
``delta``, ``c_u -= w_u A_u delta`` for each rater ``u``.  A scan costs ``O(n K^2)`` for
``n`` ratings, about what the factor rows cost (:func:`implicit_scan`, compiled).  Each
draw is over-relaxed like the factor rows (``overrelax``), which leaves its conditional
invariant.  ``"item"`` is the mirror image (``user_implicit``, sums over the users who
rated an item); ``"both"`` scans both, each given the other's latest values.

Given ``U`` the ``y_j`` move ``W``; but ``U`` and the sums split ``W`` between them by
their priors only, and alternating the two blocks crosses that split slowly.  So each
scan is followed by a second one in the other parameterisation (interweaving, Yu & Meng
2011): ``y`` given ``W`` held fixed (``U = W - M y`` moves with it), where only the priors
``U_u ~ N(m_u, Lambda^-1)`` and ``y_j ~ N(0, s_y^2 I)`` involve ``y``: the same scan with
``A_u = Lambda`` and ``c_u = Lambda (U_u - m_u)`` (:func:`prior_scan`), no pass over the
ratings.  Both are exact Gibbs updates, so the posterior stays invariant.

BPMF learns the scale ``s_y ~ Gamma(a, scale b)`` (``item_implicit_sd``).  After the scans,
``log s_y`` given ``y`` gets one slice update
(:func:`~bayesrec.inference.gibbs.features.draw_log_scale`).  Given ``y``, ``s_y``
can only move by about ``s_y / sqrt(2 n)`` (``n`` entries of ``y``), and ``y`` given
``s_y`` stays near that scale when the data say little about each ``y_j``: the two
alone crawl.  So a group move follows (Liu & Sabatti 2000): ``(s_y, y, U) -> (c s_y, c
y, W - c M y)``, which keeps ``W`` and so the likelihood.  Its Jacobian is ``c^(n+1)``;
with the Haar measure ``dc / c`` the ``c^n`` cancels the ``y`` prior's ``c^-n``, leaving
``c^(a-1) exp(-c s_y / b)`` times the rows' prior at ``U = W - c M y``, Gaussian in
``c``: ``c^(a-1) exp(-quad c^2 + lin c)`` with ``quad = |L^-1 M y|^2 / 2`` and ``lin =
<L^-1 M y, L^-1 (W - m)> - s_y / b`` (summed over rows; :meth:`ImplicitGibbs.rescale_terms`),
one slice update from ``c = 1`` (:func:`~bayesrec.inference.gibbs.kernels.draw_scale`).
"""

from __future__ import annotations

import numba
import numpy as np

from bayesrec.inference.gibbs.features import draw_log_scale
from bayesrec.inference.gibbs.kernels import (
    _FASTMATH,
    cholesky_forward,
    draw_scale,
    residuals,
)
from bayesrec.inference.gibbs.steps import LayoutStep, require_scale

__all__ = ["ImplicitGibbs", "implicit_scan", "prior_scan"]


@numba.njit(fastmath=_FASTMATH, cache=True, nogil=True)
def _rating_moments(indptr, other, resid, feats):
    """``A_r = sum Z_o Z_o^T`` and ``c_r = sum Z_o e`` over each row's ratings."""
    n_rows, k = len(indptr) - 1, feats.shape[1]
    gram = np.zeros((n_rows, k, k))
    lin = np.zeros((n_rows, k))
    for r in range(n_rows):
        for e in range(indptr[r], indptr[r + 1]):
            o = other[e]
            for a in range(k):
                lin[r, a] += feats[o, a] * resid[e]
                for b in range(a + 1):
                    gram[r, a, b] += feats[o, a] * feats[o, b]
        for a in range(k):
            for b in range(a):
                gram[r, b, a] = gram[r, a, b]
    return gram, lin


@numba.njit(fastmath=_FASTMATH, cache=True, nogil=True)
def _scan(gram, lin, weight, o_indptr, o_rows, y, prior_prec, noise_prec, eps, alpha):
    """The scan over ``y`` given per-row quadratic terms ``-noise_prec / 2 (w_r y)^T A_r
    (w_r y) + noise_prec (w_r y)^T c_r`` of each row that sums ``y_j`` (``lin`` kept
    current)."""
    k = y.shape[1]
    prec = np.empty((k, k))
    h = np.empty(k)
    w = np.empty(k)
    new = np.empty(k)
    delta = np.empty(k)
    spread = np.sqrt(1.0 - alpha * alpha)
    for j in range(len(o_indptr) - 1):
        for a in range(k):
            h[a] = 0.0
            for b in range(k):
                prec[a, b] = 0.0
            prec[a, a] = prior_prec
        for e in range(o_indptr[j], o_indptr[j + 1]):
            r = o_rows[e]
            wr = weight[r]
            for a in range(k):
                t = 0.0
                for b in range(k):
                    t += gram[r, a, b] * y[j, b]
                h[a] += noise_prec * wr * (lin[r, a] + wr * t)
                for b in range(a + 1):
                    prec[a, b] += noise_prec * wr * wr * gram[r, a, b]
        if not cholesky_forward(prec, h, w):
            return j
        # C^T new = (1 - alpha) w + sqrt(1 - alpha^2) eps, plus alpha * current
        for a in range(k - 1, -1, -1):
            t = (1.0 - alpha) * w[a] + spread * eps[j, a]
            for b in range(a + 1, k):
                t -= prec[b, a] * new[b]
            new[a] = t / prec[a, a]
        for a in range(k):
            new[a] += alpha * y[j, a]
            delta[a] = new[a] - y[j, a]
            y[j, a] = new[a]
        for e in range(o_indptr[j], o_indptr[j + 1]):  # the raters' linear terms
            r = o_rows[e]
            wr = weight[r]
            for a in range(k):
                t = 0.0
                for b in range(k):
                    t += gram[r, a, b] * delta[b]
                lin[r, a] -= wr * t
    return -1


def _run_scan(gram, lin, weight, o_indptr, o_rows, y, prior_prec, noise_prec, eps,
              alpha) -> np.ndarray:
    out = np.array(y, dtype=np.float64, order="C")
    bad = _scan(np.ascontiguousarray(gram, dtype=np.float64),
                np.array(lin, dtype=np.float64, order="C"),
                np.ascontiguousarray(weight, dtype=np.float64), o_indptr, o_rows, out,
                float(prior_prec), float(noise_prec),
                np.ascontiguousarray(eps, dtype=np.float64), float(alpha))
    if bad >= 0:
        raise FloatingPointError(f"the conditional precision of implicit factor {bad} is not "
                                 "positive definite (non-finite values)")
    return out


def prior_scan(dev, row_prec, weight, o_indptr, o_rows, y, prior_prec, eps,
               alpha: float = 0.0) -> np.ndarray:
    """One Gibbs scan over ``y`` with the effective factors ``W = U + M y`` held fixed (``U``
    moves with ``y``): only the priors of ``U`` (rows ``N(m_r, Lambda^-1)``, ``dev = U -
    m``) and of ``y`` involve it.  Returns the new ``y``; the caller sets ``U = W - M y``."""
    dev = np.asarray(dev, dtype=np.float64)
    gram = np.broadcast_to(row_prec, (dev.shape[0], *row_prec.shape))
    return _run_scan(gram, dev @ row_prec, weight, o_indptr, o_rows, y, prior_prec, 1.0, eps,
                     alpha)


def implicit_scan(indptr, other, resid, feats, weight, o_indptr, o_rows, y, prior_prec,
                  noise_prec, eps, alpha: float = 0.0) -> np.ndarray:
    """One Gibbs scan over the implicit factors ``y`` (other-side rows x K), returning the new
    ``y`` (the module doc's conditionals).

    ``indptr``/``other``/``resid``: the sum side's ratings grouped by row (its rated
    other-side rows and the current residuals); ``feats``: the other side's effective
    factors; ``weight``: ``|N(r)|^{-1/2}`` per row; ``o_indptr``/``o_rows``: the same ratings
    grouped by other-side row (the rows whose sums hold each ``y_j``); ``prior_prec``:
    ``1 / s_y^2``; ``noise_prec``: ``1 / sigma^2``; ``eps``: standard normals shaped like
    ``y``; ``alpha``: over-relaxation in (-1, 1) (0: plain Gibbs).
    """
    gram, lin = _rating_moments(indptr, other, np.ascontiguousarray(resid, dtype=np.float64),
                                np.ascontiguousarray(feats, dtype=np.float64))
    return _run_scan(gram, lin, weight, o_indptr, o_rows, y, prior_prec, noise_prec, eps, alpha)


class ImplicitGibbs(LayoutStep):
    """Exact (over-relaxed) Gibbs scans of the implicit factors (see the module doc)."""

    name = "implicit_gibbs"
    stats_dtypes_shapes = {}

    def __init__(self, vars, layout, *, overrelax: float = 0.0, **kwargs):
        super().__init__(vars, layout, **kwargs)
        self.overrelax = float(overrelax)

    def step(self, point: dict) -> tuple[dict, list[dict]]:
        lay = self.layout
        point = dict(point)
        noise_prec = 1.0 / require_scale(lay.sigma(point), "noise sd") ** 2
        for side, imp in lay.implicit.items():  # "both": the item side's sums see the new y
            other = "item" if side == "user" else "user"
            s, o = lay.side(side), lay.side(other)
            own, feats = lay.effective_factors(point, side), lay.effective_factors(point, other)
            # with a day context, per rating: Z_o + D_d multiplies W, e_d + Z_o . D_d is fixed
            rated, feats, other_bias = lay.rating_rows(point, side, feats,
                                                       lay.bias_of(point, other))
            resid = residuals(s.indptr, rated, s.rating, lay.offset(point),
                              lay.bias_of(point, side), other_bias, own, feats)
            y, prior_prec = np.asarray(point[imp.key], dtype=float), 1.0 / imp.sd.of(point)**2
            y = implicit_scan(
                s.indptr, rated, resid, feats, imp.weight, o.indptr, o.other, y,
                prior_prec, noise_prec, self.rng.standard_normal(y.shape), self.overrelax)
            # the same factors given W = U + M y (interweaving): U takes up what y gives
            point[imp.key] = y
            effective = lay.effective_factors(point, side)
            mean, chol = lay.side_prior(point, side)
            features = lay.feature_mean(point, side)
            if features is not None:
                mean = mean + features
            chol_inv = np.linalg.inv(chol)
            y = prior_scan(lay.factors_of(point, side) - mean, chol_inv.T @ chol_inv,
                           imp.weight, o.indptr, o.other, y, prior_prec,
                           self.rng.standard_normal(y.shape), self.overrelax)
            point[imp.key] = y
            point[s.factors] = effective - imp.matrix @ y
            if imp.sd.key is not None:  # the learned scale given y, then with W held
                point[imp.sd.key] = np.asarray(draw_log_scale(self.rng, y, imp.sd.prior,
                                                              imp.sd.of(point)))
                self._rescale(point, side, mean)
        return point, self._stats(point, {})

    def rescale_terms(self, point: dict, side: str, mean: np.ndarray):
        """``(power, quad, lin)`` of the group move's density ``c^power exp(-quad c^2 + lin
        c)`` (module doc), for the side's implicit block at ``point``; ``mean`` is the rows'
        prior mean (with its feature part).  None when the sums are all zero."""
        lay, imp = self.layout, self.layout.implicit[side]
        y, sd = np.asarray(point[imp.key], dtype=float), imp.sd.of(point)
        _, chol = lay.side_prior(point, side)
        chol_inv = np.linalg.inv(chol)
        spread = (imp.matrix @ y) @ chol_inv.T  # the sums in the rows' whitened prior
        quad = 0.5 * float(np.sum(spread**2))
        if quad <= 0:
            return None
        centred = (lay.effective_factors(point, side) - mean) @ chol_inv.T
        prior = imp.sd.prior
        return prior.a - 1, quad, float(np.sum(spread * centred)) - sd / prior.b

    def _rescale(self, point: dict, side: str, mean: np.ndarray) -> None:
        """The group move ``(s_y, y, U) -> (c s_y, c y, W - c M y)``, one slice update of
        ``c`` from 1 (module doc)."""
        terms = self.rescale_terms(point, side, mean)
        if terms is None:
            return
        lay, imp = self.layout, self.layout.implicit[side]
        c = draw_scale(self.rng, *terms, 1.0)
        effective = lay.effective_factors(point, side)
        point[imp.key] = c * np.asarray(point[imp.key], dtype=float)
        point[imp.sd.key] = np.asarray(np.log(c * imp.sd.of(point)))
        point[lay.side(side).factors] = effective - imp.matrix @ point[imp.key]
