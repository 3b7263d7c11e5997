"""Kernels and small densities of the Gibbs sampler (:mod:`bayesrec.inference.gibbs`).

One side (users, say) is drawn row by row from its Gaussian conditional given the
other side.  For row ``u`` with ratings ``j`` in ``indptr[u]:indptr[u + 1]`` on
other-side rows ``o_j``, features ``x_j = [F[o_j], 1]`` (the trailing 1 only when the
row has a bias) and residuals ``y_j = r_j - base[o_j]``:

.. math::

    P_u = P_0 + s \\sum_j x_j x_j^\\top, \\qquad h_u = h_0 + s \\sum_j x_j y_j, \\qquad
    \\theta_u \\sim \\mathcal N(P_u^{-1} h_u, P_u^{-1})

with ``s`` the noise precision.  With ``P_u = C C^T`` (Cholesky) and ``w = C^{-1} h_u``,
``theta_u = C^{-T} (w + eps)`` for a standard normal ``eps`` has exactly that law.
Only the lower triangle of ``P_u`` is accumulated (``D (D + 1) / 2`` multiply-adds per
rating, ``D`` = factors + bias), as dot products over the row's ratings gathered into
a contiguous buffer (vectorised; faster here than a BLAS call per row).  Rows are independent given the other side, so the
loop over rows is one batched pass with no Python per row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

__all__ = [
    "SdPrior",
    "cholesky_forward",
    "component_moments",
    "cov_prior_weight",
    "csr_by",
    "draw_rows",
    "draw_scale",
    "gaussian_draw",
    "inverse_wishart",
    "linear_predictor",
    "lkj_cholesky_logp",
    "probit_level_log_probs",
    "residuals",
    "partition_moments",
    "residual_moments",
    "scaling_moments",
    "scale_independence_mh",
    "slice_1d",
    "slice_each",
]

# no reassociation or contraction (FMA): sums in their written order, the same numbers on
# every CPU (see bayesrec.inference.numerics)
_FASTMATH = {"nsz", "arcp"}


@numba.njit(fastmath=_FASTMATH, cache=True, nogil=True)
def cholesky_forward(prec, h, w) -> bool:
    """In place: the lower triangle of ``prec`` becomes its Cholesky factor ``C``, and ``w``
    solves ``C w = h``.  False when ``prec`` is not positive definite (or holds NaN)."""
    dim = len(h)
    for a in range(dim):
        t = prec[a, a]
        for k in range(a):
            t -= prec[a, k] * prec[a, k]
        if not t > 0.0:
            return False
        d = np.sqrt(t)
        prec[a, a] = d
        for b in range(a + 1, dim):
            t = prec[b, a]
            for k in range(a):
                t -= prec[b, k] * prec[a, k]
            prec[b, a] = t / d
    for a in range(dim):
        t = h[a]
        for k in range(a):
            t -= prec[a, k] * w[k]
        w[a] = t / prec[a, a]
    return True


@numba.njit(fastmath=_FASTMATH, cache=True, nogil=True)
def _residuals(indptr, other, rating, offset, own_bias, other_bias, own, feats, out):
    for r in range(len(indptr) - 1):
        for e in range(indptr[r], indptr[r + 1]):
            o = other[e]
            t = rating[e] - offset - own_bias[r] - other_bias[o]
            for a in range(own.shape[1]):
                t -= own[r, a] * feats[o, a]
            out[e] = t


def residuals(indptr, other, rating, offset, own_bias, other_bias, own, feats) -> np.ndarray:
    """``r - m - b_r - c_o - W_r . Z_o`` of every rating, grouped by this side's row
    (``indptr``/``other``/``rating`` as in :func:`draw_rows`; ``own``/``feats`` the two
    sides' factors, ``own_bias``/``other_bias`` their biases)."""
    out = np.empty(len(rating))
    _residuals(indptr, other, np.ascontiguousarray(rating, dtype=np.float64), float(offset),
               np.ascontiguousarray(own_bias, dtype=np.float64),
               np.ascontiguousarray(other_bias, dtype=np.float64),
               np.ascontiguousarray(own, dtype=np.float64),
               np.ascontiguousarray(feats, dtype=np.float64), out)
    return out


@numba.njit(fastmath=_FASTMATH, cache=True, nogil=True)
def _draw_block(indptr, other, rating, base, feats, bias, prior_prec, prior_h, noise_prec,
                eps, current, alpha, out, gram_out, h_out, start, stop):
    n_feat = feats.shape[1]
    dim = n_feat + (1 if bias else 0)
    longest = 0
    for row in range(start, stop):
        longest = max(longest, indptr[row + 1] - indptr[row])
    xt = np.empty((dim, longest))  # the row's features, one contiguous line per feature
    y = np.empty(longest)
    prec = np.empty((dim, dim))
    h = np.empty(dim)
    w = np.empty(dim)
    spread = np.sqrt(1.0 - alpha * alpha)
    per_row = prior_h.shape[0] > 1  # a prior mean per row (side information), or one for all
    for row in range(start, stop):
        hr = row if per_row else 0
        first = indptr[row]
        n = indptr[row + 1] - first
        for jj in range(n):
            o = other[first + jj]
            for a in range(n_feat):
                xt[a, jj] = feats[o, a]
            if bias:
                xt[n_feat, jj] = 1.0
            y[jj] = rating[first + jj] - base[o]
        # lower triangle of P = P0 + s X^T X and h = h0 + s X^T y (contiguous dot products)
        for a in range(dim):
            xa = xt[a]
            t = 0.0
            for jj in range(n):
                t += xa[jj] * y[jj]
            h_out[row, a] = t
            h[a] = prior_h[hr, a] + noise_prec * t
            for b in range(a + 1):
                xb = xt[b]
                t = 0.0
                for jj in range(n):
                    t += xa[jj] * xb[jj]
                gram_out[row, a, b] = t
                gram_out[row, b, a] = t
                prec[a, b] = prior_prec[a, b] + noise_prec * t
        if not cholesky_forward(prec, h, w):
            return row  # not positive definite (or NaN): report the row
        # backward: C^T theta = w + eps; over-relaxed (alpha != 0):
        # theta' = mean + alpha (theta - mean) + sqrt(1 - alpha^2) C^-T eps
        #        = C^-T ((1 - alpha) w + sqrt(1 - alpha^2) eps) + alpha theta
        for a in range(dim - 1, -1, -1):
            t = (1.0 - alpha) * w[a] + spread * eps[row, a]
            for k in range(a + 1, dim):
                t -= prec[k, a] * out[row, k]
            out[row, a] = t / prec[a, a]
        if alpha != 0.0:
            for a in range(dim):
                out[row, a] += alpha * current[row, a]
    return -1


def draw_rows(indptr, other, rating, base, feats, bias, prior_prec, prior_h, noise_prec, eps,
              *, moments: bool = False, current: np.ndarray | None = None,
              alpha: float = 0.0):
    """Exact draws of every row of one side from its Gaussian conditional.

    Parameters
    ----------
    indptr : int64 array (n_rows + 1)
        Row ``u``'s ratings are ``indptr[u]:indptr[u + 1]`` of ``other``/``rating``.
    other : int64 array (n_ratings)
        Other-side row of each rating, grouped by this side's row.
    rating : float array (n_ratings)
        Ratings, in the same order.
    base : float array (n_other)
        What the other side and the offset contribute to each rating's mean
        outside the features (``offset + other bias (+ prior-mean term)``).
    feats : float array (n_other, K)
        The other side's features (its factors, or ``V @ L`` when non-centred).
    bias : bool
        Draw a bias with each row (a feature that is 1 for every rating).
    prior_prec, prior_h : (D, D), (D,) or (n_rows, D)
        Prior precision of ``theta_u``, the same for every row, and its
        precision-times-mean, the same for every row (D,) or one per row (n_rows, D: a
        per-row prior mean, as side information gives).
    noise_prec : float
        ``1 / sigma**2``.
    eps : float array (n_rows, D)
        Standard normal draws.

    moments : bool
        Also return each row's data moments ``sum_j x_j x_j^T`` (n_rows, D, D) and
        ``sum_j x_j y_j`` (n_rows, D), before the prior and the noise precision.
    current, alpha : (n_rows, D) array, float in (-1, 1)
        Over-relaxation (Adler 1981): with ``alpha != 0`` each row becomes ``mean +
        alpha (current - mean) + sqrt(1 - alpha^2) C^-T eps``, which leaves the same
        Gaussian conditional invariant (reversibly) and, with ``alpha < 0``, moves
        against the previous step instead of diffusing.  ``alpha = 0`` is the plain draw.

    Returns
    -------
    (n_rows, D) array of draws (and the moments).
    """
    alpha = float(alpha)
    if not -1.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (-1, 1), got {alpha}")
    if alpha != 0.0 and (current is None or np.shape(current) != eps.shape):
        raise ValueError("over-relaxation needs the current rows, shaped like eps")
    current = eps if current is None else np.ascontiguousarray(current, dtype=np.float64)
    prior_h = np.ascontiguousarray(np.atleast_2d(prior_h), dtype=np.float64)
    if prior_h.shape[0] not in (1, len(eps)):
        raise ValueError(f"prior_h has {prior_h.shape[0]} rows, expected 1 or {len(eps)}")
    out = np.empty_like(eps)
    gram, h = np.empty((len(eps), eps.shape[1], eps.shape[1])), np.empty_like(eps)
    args = (indptr, other, rating, base, feats, bool(bias),
            np.ascontiguousarray(prior_prec, dtype=np.float64),
            prior_h, float(noise_prec), eps, current,
            alpha, out, gram, h)
    bad = _draw_block(*args, 0, len(indptr) - 1)
    if bad >= 0:
        raise FloatingPointError(f"the conditional precision of row {bad} is not positive "
                                 "definite (prior precision singular or non-finite values)")
    return (out, gram, h) if moments else out


@numba.njit(fastmath=_FASTMATH, cache=True, nogil=True)
def _residual_moments(user, item, rating, user_factors, item_factors, user_bias, item_bias):
    total = 0.0
    total_sq = 0.0
    n_factors = user_factors.shape[1]
    for j in range(rating.shape[0]):
        u = user[j]
        i = item[j]
        e = rating[j] - user_bias[u] - item_bias[i]
        for k in range(n_factors):
            e -= user_factors[u, k] * item_factors[i, k]
        total += e
        total_sq += e * e
    return total, total_sq


def residual_moments(user, item, rating, user_factors, item_factors, user_bias, item_bias):
    """``(sum e, sum e**2)`` of ``e = r - b_u - c_i - U_u . V_i`` over all ratings."""
    return _residual_moments(user, item, rating, user_factors, item_factors, user_bias, item_bias)


@numba.njit(fastmath=_FASTMATH, cache=True, nogil=True)
def _scaling_moments(dev, gram, theta, h):
    n_rows, k = dev.shape
    d = theta.shape[1]
    ftf = np.zeros((k, k))
    ftr = np.zeros(k)
    for u in range(n_rows):
        for a in range(k):
            fitted = 0.0
            for b in range(d):
                fitted += gram[u, a, b] * theta[u, b]
            ftr[a] += dev[u, a] * (h[u, a] - fitted)
            for b in range(k):
                ftf[a, b] += dev[u, a] * gram[u, a, b] * dev[u, b]
    return ftf, ftr


def scaling_moments(dev, gram, theta, h):
    """``(F^T F, F^T e)`` of a per-factor rescaling ``theta[:, :K] = mu + dev * s``.

    From the row moments of :func:`draw_rows` (``gram_u = sum_j x_j x_j^T``, ``h_u =
    sum_j x_j y_j``), with ``f_uj,k = dev_uk x_jk`` and ``e`` the residuals at ``theta``:
    ``(F^T F)_kl = sum_u dev_uk gram_u,kl dev_ul`` and ``(F^T e)_k = sum_u dev_uk (h_u -
    gram_u theta_u)_k``.  One pass over the rows, none over the ratings.
    """
    return _scaling_moments(np.ascontiguousarray(dev, dtype=np.float64),
                            np.ascontiguousarray(gram, dtype=np.float64),
                            np.ascontiguousarray(theta, dtype=np.float64),
                            np.ascontiguousarray(h, dtype=np.float64))


def gaussian_draw(rng: np.random.Generator, prec: np.ndarray, h: np.ndarray) -> np.ndarray:
    """One draw from ``N(P^-1 h, P^-1)``."""
    chol = np.linalg.cholesky(prec)
    w = np.linalg.solve(chol, h)
    return np.linalg.solve(chol.T, w + rng.standard_normal(len(h)))


def csr_by(rows: np.ndarray, n_rows: int, *columns: np.ndarray):
    """Group ratings by ``rows``: ``indptr`` and the ``columns`` reordered (stable)."""
    order = np.argsort(rows, kind="stable")
    counts = np.bincount(rows, minlength=n_rows)
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    return (indptr, *[np.ascontiguousarray(c[order]) for c in columns])


# ---------------------------------------------------------------------------------------------
# hyperparameter conditionals (small, numpy)
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SdPrior:
    """The prior of the standard deviations in an LKJ-Cholesky covariance.

    ``kind="halfnormal"``: ``HalfNormal(a)``; ``kind="gamma"``: ``Gamma`` with shape
    ``a`` and scale ``b`` (PyMC's ``Gamma(alpha=a, beta=1/b)``).  Densities are up to
    a constant.
    """

    kind: str
    a: float
    b: float = 0.0

    def logp(self, sd: np.ndarray) -> float:
        return float(self.logp_each(sd).sum())

    def logp_each(self, sd: np.ndarray) -> np.ndarray:
        """The log-density of each entry (up to a constant): an array like ``sd``."""
        sd = np.asarray(sd, dtype=float)
        if self.kind == "halfnormal":
            return -0.5 * (sd / self.a) ** 2
        return (self.a - 1) * np.log(sd) - sd / self.b

    def scaling_terms_each(self, sd: np.ndarray):
        """Per entry ``(power, quad, lin)`` arrays: ``logp(s_k sd_k)`` in ``s_k``."""
        sd = np.asarray(sd, dtype=float)
        if self.kind == "halfnormal":
            return np.zeros_like(sd), sd**2 / (2 * self.a**2), np.zeros_like(sd)
        return np.full_like(sd, self.a - 1), np.zeros_like(sd), -sd / self.b

    def scaling_terms(self, sd: np.ndarray) -> tuple[float, float, float]:
        """``(power, quad, lin)`` with ``logp(s sd) = power log s - quad s^2 + lin s + const``."""
        sd = np.asarray(sd, dtype=float)
        if self.kind == "halfnormal":
            return 0.0, float((sd**2).sum() / (2 * self.a**2)), 0.0
        return float(sd.size * (self.a - 1)), 0.0, float(-sd.sum() / self.b)


def lkj_cholesky_logp(chol: np.ndarray, eta: float, sd_prior: SdPrior) -> float:
    """Log-density of PyMC's ``LKJCholeskyCov(eta, sd_dist)`` at ``chol``, up to a constant.

    Over the lower-triangular entries of ``chol`` (the distribution's own support,
    before PyMC's log-diagonal transform): ``sum log p_sd(sd_i) + sum (2 eta - 3 + K -
    i) log c_i + sum (log c_i - i log sd_i)`` with ``sd_i`` the norm of row ``i`` and
    ``c_i = L_ii / sd_i``, as in ``pymc.distributions.multivariate._LKJCholeksyCovRV_logp``.
    """
    k = chol.shape[0]
    sd = np.sqrt((chol**2).sum(axis=1))
    corr_diag = np.diag(chol) / sd
    idx = np.arange(k)
    return float(
        sd_prior.logp(sd)
        + ((2 * eta - 3 + k - idx) * np.log(corr_diag)).sum()
        + (np.log(corr_diag) - idx * np.log(sd)).sum()
    )


def cov_prior_weight(chol: np.ndarray, eta: float, sd_prior: SdPrior) -> float:
    """Log-density of the LKJ-Cholesky prior carried over to ``Sigma = L L^T`` (up to a constant).

    ``|d Sigma / d L| = 2^K prod_i L_ii^(K - i)`` (``i`` from 0), so the density of
    ``Sigma`` is the density of ``L`` divided by it.
    """
    k = chol.shape[0]
    return lkj_cholesky_logp(chol, eta, sd_prior) - float(
        ((k - np.arange(k)) * np.log(np.diag(chol))).sum())


def scale_independence_mh(rng: np.random.Generator, current: float, n: int, sum_sq: float,
                          prior_scale: float) -> tuple[float, bool]:
    """One exact MH update of a Gaussian scale with a ``HalfNormal(prior_scale)`` prior.

    Target: ``p(s) ∝ s^-n exp(-sum_sq / (2 s^2)) exp(-s^2 / (2 prior_scale^2))`` (``n``
    zero-mean Gaussian terms with sum of squares ``sum_sq``).  Proposal:
    ``s^2 ~ InvGamma((n - 1) / 2, sum_sq / 2)``, whose density in ``s`` is the first two
    factors, so the acceptance ratio is the prior's: ``exp(-(s'^2 - s^2) / (2 prior_scale^2))``.
    """
    proposal = float(np.sqrt((sum_sq / 2.0) / rng.gamma((n - 1) / 2.0)))
    log_ratio = -(proposal**2 - current**2) / (2 * prior_scale**2)
    if np.log(rng.uniform()) < log_ratio:
        return proposal, True
    return current, False


@numba.njit(fastmath=_FASTMATH, cache=True, nogil=True)
def _component_moments(user, item, rating, user_factors, item_factors, user_bias, item_bias,
                       offset, user_part, item_part, bias_weight):
    sum_gg = 0.0
    sum_gr = 0.0
    n_factors = user_factors.shape[1]
    for j in range(rating.shape[0]):
        u = user[j]
        i = item[j]
        fitted = offset + user_bias[u] + item_bias[i]
        g = bias_weight * (user_bias[u] + item_bias[i])
        for k in range(n_factors):
            fitted += user_factors[u, k] * item_factors[i, k]
            g += user_part[u, k] * item_part[i, k]
        res = rating[j] - fitted
        sum_gg += g * g
        sum_gr += g * res
    return sum_gg, sum_gr


def component_moments(user, item, rating, user_factors, item_factors, user_bias, item_bias,
                      offset, user_part, item_part, bias_weight):
    """``(sum g^2, sum g * res)`` over ratings for a component ``g`` of the fitted mean.

    ``g = bias_weight * (b_u + c_i) + user_part[u] . item_part[i]``, and
    ``res = r - (offset + b_u + c_i + U_u . V_i)`` is the current residual.  A move
    that rescales ``g`` by ``s`` changes the log-likelihood to
    ``-(sum (res + (1 - s) g)^2) / (2 sigma^2)``: Gaussian in ``s``, from these two sums.
    """
    return _component_moments(user, item, rating, user_factors, item_factors, user_bias,
                              item_bias, float(offset), np.ascontiguousarray(user_part),
                              np.ascontiguousarray(item_part), float(bias_weight))


def draw_scale(rng: np.random.Generator, power: float, quad: float, lin: float,
               current: float) -> float:
    """One exact draw from ``f(s) ∝ s^power exp(-quad s^2 + lin s)`` on ``s > 0``.

    ``power = 0``: a normal truncated to ``s > 0`` (exact, by rejection).  ``power >
    0``: ``log f`` is concave; one slice-sampling update from ``current``
    (:func:`slice_1d`, the Laplace sd as its width).
    """
    if power == 0:
        mean, sd = lin / (2 * quad), 1 / np.sqrt(2 * quad)
        for _ in range(100):
            s = mean + sd * rng.standard_normal()
            if s > 0:
                return float(s)
        from scipy import stats  # lazily: importing scipy.stats costs 36 MB

        return float(stats.truncnorm.rvs(-mean / sd, np.inf, loc=mean, scale=sd,
                                         random_state=rng))

    def logf(s):
        return power * np.log(s) - quad * s * s + lin * s if s > 0 else -np.inf

    mode = (lin + np.sqrt(lin * lin + 8 * quad * power)) / (4 * quad)
    width = 1 / np.sqrt(power / mode**2 + 2 * quad)
    return slice_1d(rng, logf, current if current > 0 else mode, width=width)


def slice_1d(rng: np.random.Generator, logf, x: float, *, width: float,
             max_steps: int = 64) -> float:
    """One univariate slice-sampling update of ``x`` for the log-density ``logf``:
    :func:`slice_each` on a single entry (the same update, the same random numbers)."""
    new = slice_each(rng, lambda v: np.array([logf(float(v[0]))]), np.array([float(x)]),
                     width=width, max_steps=max_steps)
    return float(new[0])


def slice_each(rng: np.random.Generator, logf, x: np.ndarray, *, width,
               max_steps: int = 64) -> np.ndarray:
    """Independent univariate slice-sampling updates of every entry of ``x`` at once.

    For a density that factorises over the entries: ``logf`` maps an array to the
    array of per-entry log-densities.  Each entry gets Neal's (2003) update: stepping
    out with at most ``max_steps`` widths in all (split at random between the two
    sides, which keeps the update reversible), then shrinkage; the entries run in
    lock-step with numpy instead of a Python loop per entry.
    """
    x = np.asarray(x, dtype=float)
    width = np.broadcast_to(np.asarray(width, dtype=float), x.shape)
    level = logf(x) + np.log(rng.uniform(size=x.shape))
    left = x - width * rng.uniform(size=x.shape)
    right = left + width
    steps_left = np.floor(max_steps * rng.uniform(size=x.shape)).astype(np.int64)
    steps_right = max_steps - 1 - steps_left
    for edge, steps, sign in ((left, steps_left, -1.0), (right, steps_right, 1.0)):
        out = (steps > 0) & (logf(edge) > level)
        while out.any():
            edge += np.where(out, sign * width, 0.0)  # in place: left/right move
            steps -= out
            out &= (steps > 0) & (logf(edge) > level)
    new = x.copy()
    todo = np.ones(x.shape, dtype=bool)
    while todo.any():
        trial = left + (right - left) * rng.uniform(size=x.shape)
        inside = logf(trial) > level
        take = todo & inside
        new[take] = trial[take]
        todo &= ~inside
        left = np.where(todo & (trial < x), trial, left)
        right = np.where(todo & (trial >= x), trial, right)
    return new


@numba.njit(fastmath=_FASTMATH, cache=True, nogil=True)
def _partition_moments(user, item, rating, user_factors, item_factors, user_bias, item_bias,
                       offset, item_lever, user_lever, cross):
    s_rg1 = 0.0
    s_g1g1 = 0.0
    s_rg2 = 0.0
    s_g1g2 = 0.0
    s_g2g2 = 0.0
    n_factors = user_factors.shape[1]
    for j in range(rating.shape[0]):
        u = user[j]
        i = item[j]
        b = user_bias[u]
        c = item_bias[i]
        res = rating[j] - offset - b - c
        for k in range(n_factors):
            res -= user_factors[u, k] * item_factors[i, k]
        g1 = b * item_lever[i] + c * user_lever[u]
        g2 = b * c * cross
        s_rg1 += res * g1
        s_g1g1 += g1 * g1
        s_rg2 += res * g2
        s_g1g2 += g1 * g2
        s_g2g2 += g2 * g2
    return s_rg1, s_g1g1, s_rg2, s_g1g2, s_g2g2


def partition_moments(user, item, rating, user_factors, item_factors, user_bias, item_bias,
                      offset, item_lever, user_lever, cross):
    """Sums over ratings for a move whose fitted mean changes by ``a g1 + a^2 g2``.

    ``g1 = b_u item_lever[i] + c_i user_lever[u]``, ``g2 = b_u c_i cross``; returns
    ``(sum res g1, sum g1^2, sum res g2, sum g1 g2, sum g2^2)`` with ``res`` the current
    residual, so that ``sum (res - a g1 - a^2 g2)^2`` is a quartic in ``a``.
    """
    return _partition_moments(user, item, rating, user_factors, item_factors, user_bias,
                              item_bias, float(offset), np.ascontiguousarray(item_lever),
                              np.ascontiguousarray(user_lever), float(cross))


def inverse_wishart(rng: np.random.Generator, df: float, scale: np.ndarray) -> np.ndarray:
    """One draw of ``Sigma ~ InvWishart(df, scale)`` (Bartlett decomposition of ``Sigma^-1``).

    ``Sigma^-1 = (C A)(C A)^T`` with ``C = chol(scale^-1)``, ``A`` lower-triangular,
    ``A_ii^2 ~ chi^2(df - i)`` (``i`` from 0) and standard normals below the diagonal;
    ``E[Sigma] = scale / (df - K - 1)``.
    """
    k = scale.shape[0]
    c = np.linalg.cholesky(np.linalg.inv(scale))
    a = np.tril(rng.standard_normal((k, k)), -1)
    a[np.diag_indices(k)] = np.sqrt(rng.chisquare(df - np.arange(k)))
    m_inv = np.linalg.inv(c @ a)
    return m_inv.T @ m_inv


# ---------------------------------------------------------------------------------------------
# ordered probit
# ---------------------------------------------------------------------------------------------
@numba.njit(fastmath=_FASTMATH, cache=True, nogil=True)
def _linear_predictor(user, item, user_factors, item_factors, user_bias, item_bias, out):
    n_factors = user_factors.shape[1]
    for j in range(user.shape[0]):
        u = user[j]
        i = item[j]
        t = user_bias[u] + item_bias[i]
        for k in range(n_factors):
            t += user_factors[u, k] * item_factors[i, k]
        out[j] = t
    return out


def linear_predictor(user, item, user_factors, item_factors, user_bias, item_bias):
    """``eta = b_u + c_i + U_u . V_i`` of every rating (one pass)."""
    return _linear_predictor(user, item, np.ascontiguousarray(user_factors, dtype=np.float64),
                             np.ascontiguousarray(item_factors, dtype=np.float64),
                             np.ascontiguousarray(user_bias, dtype=np.float64),
                             np.ascontiguousarray(item_bias, dtype=np.float64),
                             np.empty(len(user)))


_INV_SQRT2 = 0.7071067811865476


@numba.njit(fastmath=_FASTMATH, cache=True, nogil=True)
def _probit_level_log_probs(eta, code, cutpoints, out):
    n_cut = cutpoints.shape[0]
    for j in range(eta.shape[0]):
        k = code[j]
        # standardised bounds a < b of the latent rating: erfc(-inf) = 2, erfc(inf) = 0
        a = cutpoints[k - 1] - eta[j] if k > 0 else -np.inf
        b = cutpoints[k] - eta[j] if k < n_cut else np.inf
        if a > 0.0:  # both in the upper tail: difference of upper tails, no cancellation
            p = 0.5 * (math.erfc(a * _INV_SQRT2) - math.erfc(b * _INV_SQRT2))
        elif b < 0.0:  # both in the lower tail
            p = 0.5 * (math.erfc(-b * _INV_SQRT2) - math.erfc(-a * _INV_SQRT2))
        else:  # a <= 0 <= b: at least half a unit of mass, 1 - two tails
            p = 1.0 - 0.5 * math.erfc(-a * _INV_SQRT2) - 0.5 * math.erfc(b * _INV_SQRT2)
        out[j] = math.log(p) if p > 1e-300 else -690.8  # log(1e-300): floor far in the tails
    return out


def probit_level_log_probs(eta, code, cutpoints) -> np.ndarray:
    """``log P(level code_j | eta_j)`` of the ordered probit with ``cutpoints``, per rating.

    ``P(k) = Phi(c_k - eta) - Phi(c_{k-1} - eta)`` (``c_{-1} = -inf``, ``c_{K-1} = inf``),
    from ``erfc`` differences taken in the tail where both terms lie (no cancellation);
    probabilities below ``1e-300`` are floored there.
    """
    return _probit_level_log_probs(np.ascontiguousarray(eta, dtype=np.float64),
                                   np.ascontiguousarray(code, dtype=np.int64),
                                   np.ascontiguousarray(cutpoints, dtype=np.float64),
                                   np.empty(len(eta)))
