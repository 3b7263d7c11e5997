"""``fit(model, method=...)``: one entry point for every inference method.

The dispatcher knows nothing about any particular model.  It resolves the
method's options (the method's defaults, then the model's own settings from its
spec, then the caller's), runs the method's module, and finishes the record
(:func:`bayesrec.inference.record.write_record`).  Every method returns an
:class:`xarray.DataTree` with the same core groups

* ``posterior`` (``chain``, ``draw``, plus the model's named dims),
* ``observed_data`` and ``constant_data`` (the training data),
* ``bayesrec`` (the id universe, rating scale, model name and config, and hashes),

and one group of its own: ``optimizer_result`` (MAP), ``sample_stats`` (NUTS, Gibbs),
``advi`` (the loss history of any ADVI) or ``staged`` (the stages of a staged fit).  The root ``attrs`` record the model, its config,
the method and its options, the seed, the run time and package versions.

MAP is a posterior with one draw per restart (``chain`` = restart), a staged fit one
draw (models that declare a staged fit, :mod:`~bayesrec.inference.staged`), or one
chain of draws when its components are sampled (``components="gibbs"``); ADVI draws
from the fitted approximation (one chain); NUTS keeps its chains.  Data-sized
deterministics (dims ``obs``) are never stored: prediction recomputes them.
"""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import pymc as pm
import xarray as xr

from bayesrec.errors import InputError
from bayesrec.inference import advi, gibbs, minibatch, nuts, staged
from bayesrec.inference import map as map_method
from bayesrec.inference.checks import training_check, warn_if_degenerate
from bayesrec.inference.loglik import add_log_likelihood
from bayesrec.inference.numerics import reproducible
from bayesrec.inference.options import MethodOptions, check
from bayesrec.inference.progress import quiet_pymc, show_progress
from bayesrec.inference.record import ratings_of_model, write_record
from bayesrec.inference.resources import check_memory
from bayesrec.inference.start import check_seed
from bayesrec.models.registry import ModelSpec, spec_of

__all__ = ["fit", "METHODS", "SAMPLERS", "method_defaults", "method_options"]

#: Each method: its options (a pydantic model: names, defaults, valid values) and its runner
#: ``run(model, options, random_seed, progressbar) -> {group name: Dataset}``.
_METHODS: dict[str, Any] = {
    "map": SimpleNamespace(Options=map_method.Options, run=map_method.run),
    "nuts": SimpleNamespace(Options=nuts.Options, run=nuts.run),
    "advi": SimpleNamespace(Options=advi.Options, run=advi.run),
    "fullrank_advi": SimpleNamespace(Options=advi.FullRankOptions, run=advi.run_fullrank),
    "minibatch_advi": SimpleNamespace(Options=minibatch.Options, run=minibatch.run),
    "gibbs": SimpleNamespace(Options=gibbs.Options, run=gibbs.run),
    "staged": SimpleNamespace(Options=staged.Options, run=staged.run),
}
METHODS = tuple(_METHODS)
SAMPLERS = nuts.SAMPLERS


def _schema(method: str) -> type[MethodOptions]:
    if method not in _METHODS:
        raise InputError(f"unknown method {method!r}; valid methods are: {', '.join(METHODS)}")
    return _METHODS[method].Options


def method_defaults(method: str) -> dict[str, Any]:
    """The options of ``method`` with the method's own defaults (a copy)."""
    return _schema(method)().model_dump()


def method_options(method: str, model: pm.Model | None = None, *, spec: ModelSpec | None = None,
                   **options) -> dict[str, Any]:
    """The options a fit of ``model`` (or of a model of ``spec``) by ``method`` uses: the
    method's defaults, then the model's own settings for it (its spec's ``fit_defaults``),
    then ``options``; checked."""
    schema = _schema(method)
    spec = spec if spec is not None else (spec_of(model) if model is not None else None)
    own = dict(spec.fit_defaults.get(method, {})) if spec is not None else {}
    return check(schema, method, {**own, **options})


def _resolve_method(model: pm.Model, method: str | None) -> str:
    spec = spec_of(model)
    method = method if method is not None else (spec.default_method if spec else "map")
    _schema(method)
    if spec is not None and method not in spec.methods:
        raise InputError(f"unknown method {method!r} for model {spec.name!r}; valid methods "
                         f"are: {', '.join(spec.methods)}")
    return method


#: Methods whose fit is a point (one draw per chain), not a posterior (staged: unless its
#: components are sampled, ``components="gibbs"``).
POINT_METHODS = ("map", "staged")


def fit(model: pm.Model, method: str | None = None, *, random_seed: int | None = None,
        progressbar: bool | None = None, log_likelihood: bool = False,
        max_memory: int | float | str | None = "auto",
        **options) -> xr.DataTree:
    """Fit a PyMC model by MAP, NUTS, (full-rank or minibatch) ADVI, or Gibbs sampling.

    Parameters
    ----------
    model : pm.Model
        A model from :func:`bayesrec.models.build_model`, or any PyMC model that follows
        the data convention of the factories (see :mod:`bayesrec.inference.record`).  A
        registered model's own settings for the method (its spec's ``fit_defaults``, for
        example MMSBM's ten MAP restarts) apply under ``options``, so that every entry
        point (this function, ``make_recommender``, the CLI) gives the same fit.
    method : {"map", "nuts", "advi", "fullrank_advi", "minibatch_advi", "gibbs", "staged"}, optional
        Default: the registered model's default method, else "map".
    random_seed : int, optional
        Seed for everything random in the fit.  ``None`` draws one, which is
        recorded in ``attrs["random_seed"]`` so the fit can be repeated.
    progressbar : bool, optional
        Show progress.  Default: on in a notebook or a terminal, off when the output
        is not a terminal or under CI (see :func:`~bayesrec.inference.progress.show_progress`).
    log_likelihood : bool
        Add ArviZ's ``log_likelihood`` group, the log-density of every training rating per
        draw (:func:`~bayesrec.inference.add_log_likelihood`), so that :func:`arviz.loo`,
        :func:`arviz.compare` and ArviZ's plots work on the fit.  It holds draws x ratings
        numbers (1,000 draws of 80,000 ratings: 640 MB), hence off by default.
    max_memory : "auto", int, float, str or None
        The memory the fit may take: before any work, its need is estimated from the
        model's shapes (:func:`~bayesrec.inference.resources.estimate_memory`) and a fit
        above the limit is refused with :class:`~bayesrec.errors.InputError`.
        ``"auto"``: half of this machine's physical memory; a number of bytes or a
        size such as ``"16G"``; ``None`` goes ahead anyway.
    **options
        Options of the method; an unknown one raises listing the valid ones.  Each
        method's options and defaults: :func:`method_defaults`, and the docstrings of
        :class:`bayesrec.inference.map.Options`, :class:`~bayesrec.inference.nuts.Options`,
        :class:`~bayesrec.inference.advi.Options`,
        :class:`~bayesrec.inference.advi.FullRankOptions`,
        :class:`~bayesrec.inference.minibatch.Options`,
        :class:`~bayesrec.inference.gibbs.Options`,
        :class:`~bayesrec.inference.staged.Options`.

    Returns
    -------
    xarray.DataTree
        See the module docstring for its groups and attrs.
    """
    if not isinstance(model, pm.Model):
        raise InputError(f"fit needs a pymc.Model, got {type(model).__name__}")
    if not isinstance(log_likelihood, bool):
        raise InputError(f"log_likelihood must be True or False, got {log_likelihood!r}")
    ratings_of_model(model)  # a model off the data convention is refused before any work
    method = _resolve_method(model, method)
    opts = method_options(method, model, **options)
    if log_likelihood and method in POINT_METHODS and opts.get("components") != "gibbs":
        raise InputError(
            f"log_likelihood=True adds the pointwise log-likelihood of posterior draws for "
            f"ArviZ's LOO, but method {method!r} gives a point, not a posterior: LOO needs "
            "draws (use nuts, gibbs, advi or staged with components='gibbs')")
    check_memory(model, method, opts, max_memory)
    seed = check_seed(random_seed)
    progress = show_progress(progressbar)
    start = time.perf_counter()
    with quiet_pymc(progress), reproducible():
        groups = _METHODS[method].run(model, opts, seed, progress)
        seconds = time.perf_counter() - start
        out = write_record(groups, model, method, opts, seed, seconds)
        if "mu" in model.named_vars:  # judged on its own training data (inference/checks.py)
            check = training_check(out, model)
            out.attrs.update(check)
            warn_if_degenerate(check)
    if not log_likelihood:
        return out
    with reproducible():
        return add_log_likelihood(out, model=model)
