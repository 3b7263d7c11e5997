"""The pointwise log-likelihood of a fit, as ArviZ's own ``log_likelihood`` group.

With it, ArviZ's :func:`arviz.loo`, :func:`arviz.compare` and plots work on bayesrec
fits directly: ``az.loo(add_log_likelihood(fit))``, or ``fit(..., log_likelihood=True)``.
"""

from __future__ import annotations

import pymc as pm
import xarray as xr

from bayesrec.inference.numerics import reproducible
from bayesrec.inference.progress import quiet_pymc
from bayesrec.inference.record import FitRecord, check_fit, rehash, thin_index

__all__ = ["add_log_likelihood"]


def add_log_likelihood(fit: xr.DataTree, *, model: pm.Model | None = None,
                       max_draws: int | None = None) -> xr.DataTree:
    r"""The fit with a ``log_likelihood`` group: the log-density of every training rating.

    Parameters
    ----------
    fit : DataTree
        A fit from :func:`bayesrec.inference.fit` (any method; a MAP fit gets the
        log-likelihood of its point).  It is not modified.
    model : pm.Model, optional
        The fitted model.  Rebuilt from the fit
        (:func:`bayesrec.inference.model_from_fit`) when omitted; needed for fits
        of custom models.
    max_draws : int, optional
        Keep at most this many draws in all, evenly spaced within each chain (the
        array is draws x ratings: 1,000 draws of 80,000 ratings take 640 MB).
        The returned tree's ``posterior`` and ``sample_stats`` are thinned to the
        same draws, so that the groups stay aligned.

    Returns
    -------
    xarray.DataTree
        A new tree (the input's groups, shared not copied) with the group
        ``log_likelihood``: one variable per observed variable of the model,
        named like it (``rating`` for every bayesrec model), dims ``(chain, draw,
        obs)``, holding :math:`\log p(r_n \mid \theta^{(s)})` in nats (a log
        density for Gaussian ratings, a log probability for categorical levels).
        This is ArviZ's layout, read by :func:`arviz.loo` and by
        :func:`bayesrec.diagnostics.convergence_summary`.

    Notes
    -----
    Computed with :func:`pymc.compute_log_likelihood` on the posterior draws
    (constrained values; PyMC drops the value transforms itself).
    """
    check_fit(fit)
    model = FitRecord(fit).model(model)
    posterior = fit["posterior"]
    idx = thin_index(posterior.sizes["chain"], posterior.sizes["draw"], max_draws)
    out = fit.copy(deep=False)
    if idx is not None:
        for group in list(out.children):
            ds = out[group].to_dataset()
            if "draw" in ds.dims and "chain" in ds.dims:
                out[group] = xr.DataTree(ds.isel(draw=idx))
    with quiet_pymc(), reproducible():
        ll = pm.compute_log_likelihood(out, model=model, extend_inferencedata=False,
                                       progressbar=False)
    ds = ll["log_likelihood"].to_dataset() if isinstance(ll, xr.DataTree) else ll
    ds.attrs["thinned_from_draws"] = int(posterior.sizes["draw"]) if idx is not None else 0
    out["log_likelihood"] = xr.DataTree(ds)
    return rehash(out) if idx is not None else out  # thinned draws: a record of its own
