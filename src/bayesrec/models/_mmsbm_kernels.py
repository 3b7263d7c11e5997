"""Numba kernels of the MMSBM: one pass over the ratings gives the log-likelihood and the
expected counts of the latent group choices (the E-step of EM); and the per-rating
log-likelihood with its gradient as PyTensor Ops (for NUTS and ADVI).

For a rating ``r`` of user ``u`` on item ``i`` let ``a = theta[u]``, ``b = eta[i]`` and
``P = p[:, :, r]``.  Its probability is ``a @ P @ b`` and the responsibility of the group
pair ``(k, l)`` is ``w_kl = a_k P_kl b_l / (a @ P @ b)``.  The counts are sums of ``w``:
over ``l`` for ``theta`` (``a_k (P b)_k / total``), over ``k`` for ``eta``
(``b_l (a P)_l / total``), and per level for ``p``; the last one is accumulated as
``sum a_k b_l / total`` and multiplied by ``P_kl`` once at the end.  So each rating
costs three K x L multiply-adds and nothing of size (ratings x K x L) is stored.
"""

from __future__ import annotations

import numba
import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.link.numba.dispatch.basic import register_funcify_default_op_cache_key
from pytensor.tensor.type import integer_dtypes

__all__ = ["expected_counts", "level_logp", "LevelLogp", "LevelLogpGrad", "register_jax"]

# fast-math without the no-NaN / no-infinity assumptions (a zero probability gives -inf), and
# without reassociation, contraction (FMA) or approximate functions: sums in their written
# order, the same numbers on every CPU (see bayesrec.inference.numerics)
_FASTMATH = {"nsz", "arcp"}
_TINY = 1e-300


@numba.njit(fastmath=_FASTMATH, cache=True, nogil=True, inline="always")
def _pair_pass(a, b, p_r, pb, ap):
    """One rating's pass: ``pb = P b``, ``ap = a P`` (in place); returns ``a @ P @ b``.

    ``a`` = theta of the user, ``b`` = eta of the item, ``P = p_r`` the level's K x L slice.
    Shared by the E-step and the gradient kernel.
    """
    for j in range(ap.shape[0]):
        ap[j] = 0.0
    total = 0.0
    for k in range(pb.shape[0]):
        ak = a[k]
        s = 0.0
        for j in range(ap.shape[0]):
            pkl = p_r[k, j]
            s += pkl * b[j]
            ap[j] += ak * pkl
        pb[k] = s
        total += ak * s
    return total


@numba.njit(fastmath=_FASTMATH, cache=True, nogil=True)
def _accumulate(user, item, level, theta, eta, p_rkl, start, stop, c_theta, c_eta, s_rkl):
    """Add the counts of ratings ``start:stop`` to the accumulators; return their log-likelihood."""
    n_user_groups = theta.shape[1]
    n_item_groups = eta.shape[1]
    pb = np.empty(n_user_groups)
    ap = np.empty(n_item_groups)
    loglik = 0.0
    for n in range(start, stop):
        u, i, r = user[n], item[n], level[n]
        total = max(_pair_pass(theta[u], eta[i], p_rkl[r], pb, ap), _TINY)
        loglik += np.log(total)
        inv = 1.0 / total
        for k in range(n_user_groups):
            a = theta[u, k] * inv
            c_theta[u, k] += a * pb[k]
            for j in range(n_item_groups):
                s_rkl[r, k, j] += a * eta[i, j]
        for j in range(n_item_groups):
            c_eta[i, j] += eta[i, j] * ap[j] * inv
    return loglik


def expected_counts(user, item, level, theta, eta, p):
    """Log-likelihood and expected counts of ``theta`` (U, K), ``eta`` (I, L), ``p`` (K, L, R).

    ``user``, ``item``, ``level`` are int64 codes of the ratings.  One thread, and
    the GIL is released: independent restarts can run in parallel threads.
    (Splitting one pass over threads costs more than it saves when the cores are
    shared: about 40 ms of synchronisation per call, against 10 ms of work for
    80k ratings and K = L = 10.)
    """
    user, item, level = (np.ascontiguousarray(x, dtype=np.int64) for x in (user, item, level))
    theta = np.ascontiguousarray(theta, dtype=np.float64)
    eta = np.ascontiguousarray(eta, dtype=np.float64)
    p_rkl = np.ascontiguousarray(np.moveaxis(np.asarray(p, dtype=np.float64), 2, 0))
    c_theta, c_eta, s_rkl = np.zeros_like(theta), np.zeros_like(eta), np.zeros_like(p_rkl)
    loglik = _accumulate(user, item, level, theta, eta, p_rkl, 0, len(user), c_theta, c_eta,
                         s_rkl)
    c_p = np.moveaxis(s_rkl * p_rkl, 0, 2)
    return float(loglik), c_theta, c_eta, np.ascontiguousarray(c_p)


# ---------------------------------------------------------------------------------------------
# the per-rating log-likelihood and its gradient, as PyTensor Ops with Numba implementations
# ---------------------------------------------------------------------------------------------
@numba.njit(fastmath=_FASTMATH, cache=True, nogil=True)
def _level_logp(value, theta_u, eta_i, p):
    """log P(r_n = value_n) = log(theta_u[n] @ p[:, :, value_n] @ eta_i[n]) per rating."""
    n_ratings, n_user_groups = theta_u.shape
    n_item_groups = eta_i.shape[1]
    p_rkl = np.ascontiguousarray(p.transpose((2, 0, 1)))
    out = np.empty(n_ratings)
    for n in range(n_ratings):
        r = value[n]
        total = 0.0
        for k in range(n_user_groups):
            s = 0.0
            for j in range(n_item_groups):
                s += p_rkl[r, k, j] * eta_i[n, j]
            total += theta_u[n, k] * s
        out[n] = np.log(total) if total > 0 else -np.inf
    return out


@numba.njit(fastmath=_FASTMATH, cache=True, nogil=True)
def _level_logp_grad(value, theta_u, eta_i, p, g):
    """Gradients of ``sum_n g_n log P(r_n)`` with respect to theta_u, eta_i and p."""
    n_ratings, n_user_groups = theta_u.shape
    n_item_groups = eta_i.shape[1]
    p_rkl = np.ascontiguousarray(p.transpose((2, 0, 1)))
    g_theta = np.empty((n_ratings, n_user_groups))
    g_eta = np.empty((n_ratings, n_item_groups))
    s_rkl = np.zeros(p_rkl.shape)
    pb = np.empty(n_user_groups)
    ap = np.empty(n_item_groups)
    for n in range(n_ratings):
        r = value[n]
        total = _pair_pass(theta_u[n], eta_i[n], p_rkl[r], pb, ap)
        w = g[n] / max(total, _TINY)
        for j in range(n_item_groups):
            g_eta[n, j] = w * ap[j]
        for k in range(n_user_groups):
            g_theta[n, k] = w * pb[k]
            a = w * theta_u[n, k]
            for j in range(n_item_groups):
                s_rkl[r, k, j] += a * eta_i[n, j]
    return g_theta, g_eta, np.ascontiguousarray(s_rkl.transpose((1, 2, 0)))


class LevelLogp(Op):
    """``log(theta_u[n] @ p[:, :, value[n]] @ eta_i[n])`` per rating: the MMSBM log-likelihood.

    Inputs: level codes ``value`` (n,), memberships gathered per rating
    ``theta_u`` (n, K) and ``eta_i`` (n, L), and ``p`` (K, L, levels).  One fused
    pass per rating (forward and backward), in place of a graph that forms the
    (n, K, L) array of the observed level's probabilities and scatters its
    gradient back.  Implemented in Numba (the default backend, nutpie) and in JAX
    (numpyro, blackjax; see :func:`register_jax`); other backends run
    :meth:`perform` in Python.
    """

    __props__ = ()

    def make_node(self, value, theta_u, eta_i, p):
        value = pt.as_tensor_variable(value)
        theta_u, eta_i, p = (pt.as_tensor_variable(x) for x in (theta_u, eta_i, p))
        if value.type.dtype not in integer_dtypes:
            raise TypeError(f"level codes must be integers, got {value.type.dtype}")
        dtype = pytensor.scalar.upcast(theta_u.dtype, eta_i.dtype, p.dtype)
        return Apply(self, [value, theta_u, eta_i, p],
                     [pt.TensorType(dtype, shape=(value.type.shape[0],))()])

    def perform(self, node, inputs, outputs):
        value, theta_u, eta_i, p = inputs
        outputs[0][0] = _level_logp(np.asarray(value, dtype=np.int64), theta_u, eta_i, p
                                    ).astype(node.outputs[0].dtype)

    def infer_shape(self, node, shapes):
        return [(shapes[0][0],)]

    def connection_pattern(self, node):
        return [[False], [True], [True], [True]]

    def pullback(self, inputs, outputs, cotangents):
        value, theta_u, eta_i, p = inputs
        g_theta, g_eta, g_p = LevelLogpGrad()(value, theta_u, eta_i, p, cotangents[0])
        return [pytensor.gradient.DisconnectedType()(), g_theta, g_eta, g_p]


class LevelLogpGrad(Op):
    """Gradient of :class:`LevelLogp` (weighted by the output gradient ``g``)."""

    __props__ = ()

    def make_node(self, value, theta_u, eta_i, p, g):
        inputs = [pt.as_tensor_variable(x) for x in (value, theta_u, eta_i, p, g)]
        return Apply(self, inputs, [inputs[1].type(), inputs[2].type(), inputs[3].type()])

    def perform(self, node, inputs, outputs):
        value, theta_u, eta_i, p, g = inputs
        grads = _level_logp_grad(np.asarray(value, dtype=np.int64), theta_u, eta_i, p, g)
        for out, grad, var in zip(outputs, grads, node.outputs, strict=True):
            out[0] = grad.astype(var.dtype)

    def infer_shape(self, node, shapes):
        return [shapes[1], shapes[2], shapes[3]]


@register_funcify_default_op_cache_key(LevelLogp)
def _numba_level_logp(op, node, **kwargs):
    return _level_logp


@register_funcify_default_op_cache_key(LevelLogpGrad)
def _numba_level_logp_grad(op, node, **kwargs):
    return _level_logp_grad


level_logp = LevelLogp()


# ---------------------------------------------------------------------------------------------
# JAX implementations (numpyro and blackjax samplers), registered on demand
# ---------------------------------------------------------------------------------------------
def _jax_level_logp(value, theta_u, eta_i, p):
    """JAX version of :func:`_level_logp`, contracted one group axis at a time.

    ``theta_u @ p`` for every level is (ratings x L x levels); the observed level
    is picked after the second contraction, so nothing of size ratings x K x L is
    formed.  A zero probability gives ``-inf`` with a finite (zero) gradient.
    """
    import jax.numpy as jnp

    per_level = jnp.einsum("nk,klr->nlr", theta_u, p)
    totals = jnp.einsum("nlr,nl->nr", per_level, eta_i)
    total = jnp.take_along_axis(totals, value[:, None].astype(jnp.int32), axis=1)[:, 0]
    positive = total > 0
    return jnp.where(positive, jnp.log(jnp.where(positive, total, 1.0)), -jnp.inf)


def register_jax() -> None:
    """Teach PyTensor's JAX backend :class:`LevelLogp` and its gradient (idempotent).

    Imports JAX, so it is not done at import time; :func:`bayesrec.inference.fit`
    calls it (through :func:`bayesrec.models._jax.register_jax_ops`) before a JAX sampler.
    """
    import jax
    from pytensor.link.jax.dispatch import jax_funcify

    if LevelLogp in jax_funcify.registry:
        return

    @jax_funcify.register(LevelLogp)
    def _jax_funcify_level_logp(op, **kwargs):
        return _jax_level_logp

    @jax_funcify.register(LevelLogpGrad)
    def _jax_funcify_level_logp_grad(op, **kwargs):
        def level_logp_grad(value, theta_u, eta_i, p, g):
            _, pullback = jax.vjp(lambda a, b, c: _jax_level_logp(value, a, b, c),
                                  theta_u, eta_i, p)
            return pullback(g)

        return level_logp_grad
