"""Store diagnostics in a ``diagnostics`` group of the fit's DataTree.

``add_diagnostics(fit, norms=..., rmse_trace=...)`` returns a copy of the fit
with a child ``diagnostics`` holding one node per dataset
(``fit["diagnostics/norms"]``, ...); :func:`bayesrec.inference.save_fit` writes
it along with the rest and :func:`~bayesrec.inference.load_fit` reads it back.
:func:`compute_diagnostics` computes the standard set.
"""

from __future__ import annotations

import pymc as pm
import xarray as xr

from bayesrec.data.ratings import Ratings
from bayesrec.errors import InputError
from bayesrec.inference.record import FitRecord

from .convergence import ConvergenceReport, convergence_summary
from .norms import factor_matrices, frobenius_norms
from .traces import rmse_trace

__all__ = ["add_diagnostics", "get_diagnostics", "compute_diagnostics", "GROUP"]

GROUP = "diagnostics"


def _as_dataset(name: str, value) -> xr.Dataset:
    if isinstance(value, ConvergenceReport):
        return value.to_dataset()
    if isinstance(value, xr.DataArray):
        return value.to_dataset(name=value.name or name)
    if isinstance(value, xr.Dataset):
        return value
    raise InputError(f"diagnostic {name!r} must be an xarray Dataset, DataArray or a "
                     f"ConvergenceReport, got {type(value).__name__}")


def add_diagnostics(fit: xr.DataTree, **datasets) -> xr.DataTree:
    """A copy of ``fit`` with ``datasets`` stored under its ``diagnostics`` group.

    Existing diagnostics of other names are kept; one of the same name is replaced.
    """
    if not isinstance(fit, xr.DataTree):
        raise InputError(f"add_diagnostics needs a fit DataTree, got {type(fit).__name__}")
    if not datasets:
        raise InputError("no diagnostics given: pass them by name, e.g. norms=frobenius_norms(fit)")
    out = fit.copy()
    children = {}
    if GROUP in out.children:
        children = {k: v.to_dataset() for k, v in out[GROUP].children.items()}
    children.update({name: _as_dataset(name, value) for name, value in datasets.items()})
    out[GROUP] = xr.DataTree.from_dict(children)
    return out


def get_diagnostics(fit: xr.DataTree) -> dict[str, xr.Dataset]:
    """The datasets stored under the fit's ``diagnostics`` group (empty when none)."""
    if GROUP not in fit.children:
        return {}
    return {name: node.to_dataset() for name, node in fit[GROUP].children.items()}


def compute_diagnostics(fit: xr.DataTree, train: Ratings | None = None,
                        test: Ratings | None = None, *, model: pm.Model | None = None,
                        n_pairs: int = 50, seed: int = 0) -> dict:
    """The standard diagnostics of a fit: norms, RMSE trace and convergence summary.

    Returns a dict with ``norms`` (when the model has factor matrices),
    ``rmse_trace`` and ``convergence`` (a :class:`ConvergenceReport`); pass it to
    :func:`add_diagnostics` as ``add_diagnostics(fit, **result)``.
    """
    model = FitRecord(fit).model(model)
    out = {}
    norms = frobenius_norms(fit) if factor_matrices(fit) else None
    if norms is not None:
        out["norms"] = norms
    out["rmse_trace"] = rmse_trace(fit, train, test, model=model)
    out["convergence"] = convergence_summary(fit, pairs=test, n_pairs=n_pairs, seed=seed,
                                             model=model, norms=norms)
    return out
