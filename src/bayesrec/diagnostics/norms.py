"""Frobenius norms of the factor matrices, per posterior draw.

Factor matrices are not identifiable (any rotation ``U R``, ``V R`` gives the
same ratings), but their norms are invariant to rotations, sign flips and
permutations of the factors, so their traces are a fair convergence check.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from bayesrec.errors import InputError
from bayesrec.inference.record import posterior_of

__all__ = ["frobenius_norms", "factor_matrices"]

_SAMPLE_DIMS = ("chain", "draw")
_ENTITY_DIMS = ("user", "item")


def factor_matrices(fit) -> list[str]:
    """Names of the posterior variables that are factor matrices.

    A factor matrix has a ``factor`` dim and a ``user`` or ``item`` dim (for
    example ``user_factors (chain, draw, user, factor)``; BPMF's standardised
    ``user_factors_std`` counts too, listed after the factors).
    """
    post = posterior_of(fit)
    names = [name for name, var in post.data_vars.items()
             if "factor" in var.dims and any(d in var.dims for d in _ENTITY_DIMS)]
    return sorted(names, key=lambda n: n.endswith("_std"))  # the factors, then standardised


def frobenius_norms(fit) -> xr.Dataset:
    """The Frobenius norm of every factor matrix, per (chain, draw).

    Parameters
    ----------
    fit : DataTree or Dataset
        A fit (its ``posterior`` group is used) or a posterior Dataset.

    Returns
    -------
    xarray.Dataset
        One variable per factor matrix, named like it, dims ``(chain, draw)``:
        ``sqrt(sum of squares over every other dim)``.
    """
    post = posterior_of(fit)
    names = factor_matrices(post)
    if not names:
        raise InputError(
            "the posterior has no factor matrix (a variable with a 'factor' dim and a 'user' "
            f"or 'item' dim); its variables are {sorted(post.data_vars)}"
        )
    out = {}
    for name in names:
        var = post[name]
        other = [d for d in var.dims if d not in _SAMPLE_DIMS]
        norm = np.sqrt((var.astype(float) ** 2).sum(other))
        norm.attrs = {"long_name": f"Frobenius norm of {name}"}
        out[name] = norm
    ds = xr.Dataset(out)
    ds.attrs["description"] = "Frobenius norm of each factor matrix per posterior draw"
    return ds
