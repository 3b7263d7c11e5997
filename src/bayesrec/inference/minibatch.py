"""Minibatch ADVI for any model whose likelihood factorises over ratings.

:func:`minibatch_model` rewrites a model generically, knowing nothing about it
but the contract every factory keeps: per-rating data live in ``pm.Data``
containers whose first dim is ``obs`` (``user_idx``, ``item_idx``, ...) and the
observed variables have ``obs`` as their first dim.  The rewrite (on PyMC's
model graph, :func:`pymc.model.fgraph.fgraph_from_model`)

* replaces those containers and the observed values by rows drawn jointly
  with :func:`pymc.Minibatch` (the same random rows of every array, drawn anew
  at every step, with replacement),
* sets the length of the ``obs`` dim to the batch size, and
* wraps each observed variable with ``total_size`` = the number of ratings, so
  that its log-likelihood is scaled by ``N / batch_size``: every step's ELBO
  is an unbiased estimate of the full-data ELBO.

:func:`fit_minibatch_advi` fits mean-field ADVI on the rewritten model with Adam,
a learning rate decayed whenever the loss (averaged over an epoch) stops
improving, and a stop after a given number of decays (the stopping rule of every
ADVI, :func:`bayesrec.inference.advi.monitored_fit`); the approximation is then
drawn from the original model (:func:`bayesrec.inference.advi.approximation_tree`),
so the fit looks like any other ADVI fit.
"""

from __future__ import annotations

import math

import pymc as pm
import pytensor.tensor as pt
import xarray as xr
from pymc.model.fgraph import (
    ModelNamed,
    ModelObservedRV,
    ModelPotential,
    fgraph_from_model,
    model_from_fgraph,
)
from pymc.variational.minibatch_rv import create_minibatch_rv
from pytensor.graph import FunctionGraph
from pytensor.graph.replace import clone_replace
from pytensor.graph.traversal import ancestors

from bayesrec.errors import InputError
from bayesrec.inference import advi
from bayesrec.inference.options import PositiveFloat, PositiveInt
from bayesrec.inference.start import child_seeds

__all__ = ["Options", "minibatch_model", "fit_minibatch_advi", "run"]


class Options(advi.VariationalOptions):
    """Minibatch ADVI: the shared ADVI options with ``n`` (50000), ``learning_rate`` (0.02)
    and ``batch_size`` (1000 ratings per step); plateaus are judged over one epoch (at
    least 100 iterations)."""

    n: PositiveInt = 50000
    learning_rate: PositiveFloat = 0.02
    batch_size: PositiveInt = 1000


def minibatch_model(model: pm.Model, batch_size: int, *, dim: str = "obs") -> pm.Model:
    """A copy of ``model`` whose likelihood sees ``batch_size`` random ratings per evaluation.

    Parameters
    ----------
    model : pm.Model
        Per-rating data must be ``pm.Data`` with first dim ``dim``, and every
        observed variable on those data must have ``dim`` as its first dim.
    batch_size : int
    dim : str
        The dim that indexes ratings.

    Returns
    -------
    pm.Model
        Same free variables (names, transforms, dims) as ``model``; its
        log-density is a stochastic, unbiased estimate of ``model``'s.  The
        per-rating data containers are gone (they are inside the minibatch).
    """
    if dim not in model.coords:
        raise InputError(f"minibatch ADVI needs a model with a {dim!r} dim indexing the ratings")
    dims = model.named_vars_to_dims

    def on_dim(name: str) -> bool:
        return (dims.get(name) or ())[:1] == (dim,)

    n_rows = int(model.dim_lengths[dim].eval())
    data_names = [v.name for v in model.data_vars if on_dim(v.name)]
    obs_names = [v.name for v in model.observed_RVs if on_dim(v.name)]
    if not obs_names:
        raise InputError(f"minibatch ADVI needs an observed variable with first dim {dim!r}")
    if any(dim in (dims.get(rv.name) or ()) for rv in model.free_RVs):
        raise InputError(f"minibatch ADVI cannot subsample a model with a free variable on "
                         f"the {dim!r} dim (one latent value per rating)")

    fgraph, memo = fgraph_from_model(model)
    full = [memo[model[name]].owner.inputs[0] for name in data_names]
    full += [memo[model[name]].owner.inputs[1] for name in obs_names]
    batches = pm.Minibatch(*full, batch_size=int(batch_size))
    batches = batches if isinstance(batches, list) else [batches]
    length = fgraph._dim_lengths[dim]
    replace = dict(zip(full, batches, strict=True))
    replace[length] = pt.constant(int(batch_size), dtype=length.dtype)

    kept = [out for out in fgraph.outputs
            if not (isinstance(out.owner.op, ModelNamed) and out.owner.op.name in data_names)]
    for out in kept:
        if isinstance(out.owner.op, ModelPotential) and set(full) & set(ancestors([out])):
            raise InputError(f"minibatch ADVI cannot scale the potential {out.owner.op.name!r}, "
                             f"which depends on per-rating data; use an observed variable")
    cloned = clone_replace(kept, replace, rebuild_strict=False)
    outputs = []
    for out in cloned:
        op = out.owner.op
        if isinstance(op, ModelObservedRV) and op.name in obs_names:
            rv, value = out.owner.inputs
            out = type(op)(op.name, op.dims, op.transform)(create_minibatch_rv(rv, n_rows), value)
        outputs.append(out)
    new = FunctionGraph(outputs=outputs, clone=False)
    new._coords = {**fgraph._coords, dim: None}
    new._dim_lengths = {**fgraph._dim_lengths, dim: replace[length]}
    out_model = model_from_fgraph(new, mutate_fgraph=True)
    out_model.bayesrec_minibatch = {"batch_size": int(batch_size), "total_size": n_rows}
    return out_model


def fit_minibatch_advi(model: pm.Model, opts: dict, seed: int, start: dict | None,
                       progressbar: bool) -> tuple[pm.variational.opvi.Approximation, xr.Dataset]:
    """Mean-field ADVI of ``model`` on minibatches; the approximation and its ``advi`` report."""
    batch_size = opts["batch_size"]
    mb = minibatch_model(model, batch_size)
    n_rows = mb.bayesrec_minibatch["total_size"]
    steps_per_epoch = max(n_rows / batch_size, 1.0)
    approx, report = advi.monitored_fit(mb, "advi", opts, seed, start, progressbar,
                                        window=max(100, math.ceil(steps_per_epoch)))
    report.attrs.update({
        "method": "minibatch_advi", "batch_size": batch_size, "total_size": n_rows,
        "iterations_per_epoch": steps_per_epoch, "epochs": len(report["loss"]) / steps_per_epoch,
    })
    return approx, report


def run(model: pm.Model, opts: dict, random_seed: int, progressbar: bool) -> dict:
    """Minibatch ADVI: the ``posterior`` (drawn on the full model) and the ``advi`` report."""
    seed_init, seed_fit, seed_draw = child_seeds(random_seed, 3)
    start = advi.start_point(model, opts, seed_init, progressbar)
    approx, report = fit_minibatch_advi(model, opts, seed_fit, start, progressbar)
    return advi.finish(approx, report, model, "minibatch_advi", opts, seed_draw)
