r"""Exact updates of the feature coefficients of side information (``user_features=`` ...).

With features ``X`` (rows x p) on one side, the factor rows are ``U_r ~ N(mu + x_r B,
Sigma)`` (PMF: ``mu = 0``, ``Sigma = s_U^2 I``; BPMF: the learned mean and LKJ
covariance) with ``B = lambda Z``, ``Z ~ N(0, 1)`` (``{side}_feature_coef_std``, p x K)
and ``lambda ~ Gamma(a, rate)`` (``{side}_feature_sd``); the biases ``b_r ~ N(x_r beta,
tau^2)`` with ``beta = lambda_b z``, likewise.  Given the factors (biases) these
coefficients are a Bayesian linear regression of ``Y = U - mu`` on ``X`` and touch
nothing else (not the likelihood), so :class:`FeatureGibbs` updates them exactly, per
side, in three steps:

1. ``Z | lambda, Y``: Gaussian, ``vec(Z)`` (row-major) with precision
   ``lambda^2 (X^T X kron Sigma^-1) + I`` and linear term ``lambda vec(X^T Y Sigma^-1)``;
   ``p K`` is small, so one Cholesky (:func:`~.kernels.gaussian_draw`).
2. ``lambda | Z, Y``: ``lambda^(a-1) exp(-rate lambda - q lambda^2 / 2 + l lambda)`` with
   ``G = X Z``, ``q = sum_r G_r Sigma^-1 G_r^T``, ``l = sum_r G_r Sigma^-1 Y_r^T``:
   log-concave, one slice-sampling update (:func:`~.kernels.draw_scale`).
3. ``lambda | B`` with ``B = lambda Z`` held fixed (the centred parameterisation, the
   other half of an interweaving, ASIS, scheme; Yu & Meng 2011): ``(lambda, Z) ->
   (lambda, B)`` has Jacobian ``lambda^-pK``, so the density is ``lambda^(a-1-pK)
   exp(-rate lambda - |B|^2 / (2 lambda^2))``, slice-sampled in ``log lambda`` (whose
   measure adds a factor ``lambda``); then ``Z = B / lambda``.

Each step is an exact conditional update (a Gibbs draw, or a slice-sampling update
reversible for the conditional), so the posterior stays invariant.  Step 2 mixes the
scale when the data say little about ``B`` (the funnel of the centred form), step 3
when they pin ``B`` down (where step 2 alone would crawl).  The biases' coefficients
are the same with ``K = 1`` and ``Sigma = tau^2``.  NUTS on the Markov blanket would be
exact too; these updates are cheaper (no compiled graph, ``O(n p^2 K^2)`` per sweep) and
need no tuning.
"""

from __future__ import annotations

import numpy as np

from bayesrec.inference.gibbs.kernels import draw_scale, gaussian_draw, slice_1d
from bayesrec.inference.gibbs.steps import LayoutStep, require_scale

__all__ = ["FeatureGibbs", "centred_scale_density", "coef_conditional", "scale_terms"]


def coef_conditional(x: np.ndarray, y: np.ndarray, prec_rows: np.ndarray,
                     scale: float, xtx: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Precision and linear term of ``vec(Z)`` (row-major, p x K) given ``lambda = scale``
    for ``Y = lambda X Z + E``, rows of ``E ~ N(0, prec_rows^-1)``, ``Z ~ N(0, I)``
    (``xtx``: ``X^T X``, when the caller keeps it)."""
    xtx = x.T @ x if xtx is None else xtx
    prec = scale**2 * np.kron(xtx, prec_rows) + np.eye(xtx.shape[0] * prec_rows.shape[0])
    return prec, scale * (x.T @ y @ prec_rows).ravel()


def scale_terms(x: np.ndarray, y: np.ndarray, prec_rows: np.ndarray, coef: np.ndarray,
                prior) -> tuple[float, float, float]:
    """``(power, quad, lin)`` of ``lambda | Z, Y`` (step 2): ``lambda^power exp(-quad
    lambda^2 + lin lambda)``, with the Gamma prior ``prior`` (shape ``a``, scale ``b``)."""
    g = x @ coef.reshape(x.shape[1], -1)
    weighted = g @ prec_rows
    return (prior.a - 1.0, float(np.sum(weighted * g)) / 2,
            float(np.sum(weighted * y)) - 1.0 / prior.b)


def centred_scale_density(coefs: np.ndarray, prior):
    """``log`` density of ``t = log lambda`` given ``B = coefs`` (step 3), up to a constant."""
    sum_sq, power = float(np.sum(coefs**2)), prior.a - coefs.size

    def logf(t):
        return power * t - np.exp(t) / prior.b - sum_sq * np.exp(-2 * t) / 2

    return logf


def draw_log_scale(rng: np.random.Generator, values: np.ndarray, prior, scale: float) -> float:
    """One exact slice update of ``log lambda`` given centred ``values ~ N(0, lambda^2)``
    (:func:`centred_scale_density`), from the current ``scale``; the Laplace sd as width."""
    curv = scale / prior.b + 2 * float(np.sum(values**2)) / scale**2
    return slice_1d(rng, centred_scale_density(values, prior), float(np.log(scale)),
                    width=1.0 / np.sqrt(max(curv, 1e-3)))


class FeatureGibbs(LayoutStep):
    """Exact updates of each featured side's coefficients and their scales (module doc)."""

    name = "feature_gibbs"
    stats_dtypes_shapes = {}

    def __init__(self, vars, layout, **kwargs):
        super().__init__(vars, layout, **kwargs)
        self._xtx = {side: x.T @ x for side, x in layout.features.items()}  # fixed data

    def regressions(self, point: dict) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
        """``(name, X, Y, Sigma^-1)`` of each regression at ``point``: ``Y = U - mu`` on the
        side's features (rows ``N(lambda X Z, Sigma)``), and the biases with ``tau^2``."""
        lay = self.layout
        out = []
        for side in lay.features:
            mean, chol = lay.side_prior(point, side)
            chol_inv = np.linalg.inv(chol)
            out.append((f"{side}_feature", lay.features[side],
                        lay.factors_of(point, side) - mean, chol_inv.T @ chol_inv))
            if lay.biases:
                tau = require_scale(lay.bias_sd(point), "bias sd")
                out.append((f"{side}_bias_feature", lay.features[side],
                            lay.bias_of(point, side)[:, None], np.eye(1) / tau**2))
        return out

    def step(self, point: dict) -> tuple[dict, list[dict]]:
        point = dict(point)
        for regression in self.regressions(point):  # each reads variables the others keep
            self._update(point, *regression)
        return point, self._stats(point, {})

    def _update(self, point: dict, name: str, x: np.ndarray, y: np.ndarray,
                prec_rows: np.ndarray) -> None:
        """Steps 1-3 of the module doc for ``{name}_coef_std`` and ``{name}_sd``."""
        lay = self.layout
        sd_key, coef_key = lay.value_names[f"{name}_sd"], f"{name}_coef_std"
        prior = lay.priors[f"{name}_sd_prior"]  # Gamma: shape a, scale b
        shape = np.shape(point[coef_key])
        scale = float(np.exp(point[sd_key]))
        # 1. Z | lambda, Y
        xtx = self._xtx[name.split("_")[0]]
        coef = gaussian_draw(self.rng, *coef_conditional(x, y, prec_rows, scale, xtx)
                             ).reshape(shape)
        # 2. lambda | Z, Y
        scale = draw_scale(self.rng, *scale_terms(x, y, prec_rows, coef, prior), scale)
        # 3. lambda | B = lambda Z, in x = log lambda
        coefs = scale * coef
        log_scale = draw_log_scale(self.rng, coefs, prior, scale)
        point[coef_key] = coefs / np.exp(log_scale)
        point[sd_key] = np.asarray(log_scale)
