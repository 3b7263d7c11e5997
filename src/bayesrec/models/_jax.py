"""JAX implementations of the custom PyTensor Ops that some models use.

PyTensor converts standard Ops to JAX by itself; an Op written for this package
(for example the MMSBM's fused log-likelihood) needs its own conversion, which
imports JAX.  :func:`register_jax_ops` registers them all; it runs before a JAX
sampler (``fit(model, "nuts", sampler="numpyro" | "blackjax")``) and is cheap
to call again.  Call it yourself before compiling a model with ``backend="jax"``.
"""

from __future__ import annotations

__all__ = ["register_jax_ops"]


def register_jax_ops() -> None:
    """Register the JAX conversion of every custom Op in :mod:`bayesrec.models`."""
    from bayesrec.models import _mmsbm_kernels

    _mmsbm_kernels.register_jax()
