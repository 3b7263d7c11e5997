"""``fit(model, method=...)``: one entry point for every inference method.

The dispatcher knows nothing about any particular model.  Every method returns an
:class:`xarray.DataTree` with the same core groups

* ``posterior`` (``chain``, ``draw``, plus the model's named dims),
* ``observed_data`` and ``constant_data`` (the training data),
* ``bayesrec`` (the id universe, rating scale, model name and config, and their hash),

and one group of its own: ``optimizer_result`` (MAP), ``sample_stats`` (NUTS, Gibbs) or
``advi`` (the loss history of any ADVI).  The root ``attrs`` record the model, its config,
the method and its options, the seed, the run time and package versions.

MAP is a posterior with one draw per restart (``chain`` = restart); ADVI draws
from the fitted approximation (one chain); NUTS keeps its chains.  Data-sized
deterministics (dims ``obs``) are never stored: prediction recomputes them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import warnings
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

import numpy as np
import pymc as pm
import xarray as xr

from bayesrec.errors import FitError, InputError
from bayesrec.inference.gibbs import GIBBS_DEFAULTS
from bayesrec.models.registry import model_info

__all__ = ["fit", "METHODS", "SAMPLERS", "method_defaults", "stored_var_names"]

METHODS = ("map", "nuts", "advi", "fullrank_advi", "minibatch_advi", "gibbs")
SAMPLERS = ("nutpie", "pymc", "numpyro", "blackjax")

_DEFAULTS: dict[str, dict[str, Any]] = {
    "map": {
        "maxiter": 3000,
        "tol": 1e-7,
        "restarts": 1,
        "combine": "all",  # keep every restart as a chain; "best" keeps the best by log-likelihood
        "init": "prior",
        "optimizer": "auto",  # EM when the model declares an EM step, else L-BFGS-B
    },
    "nuts": {
        "draws": 1000,
        "tune": 1000,
        "chains": 2,
        "cores": None,
        "sampler": "nutpie",
        "target_accept": 0.8,
        "max_treedepth": 10,
        "init": "auto",
    },
    "advi": {
        "n": 30000,
        "draws": 1000,
        "learning_rate": 0.01,
        "lr_decay": 0.5,
        "max_decays": 3,
        "window": 200,
        "tol": 1e-3,
        "max_seconds": None,
        "init": "prior",
        "start_sigma": 0.1,
    },
}
_DEFAULTS["fullrank_advi"] = {**_DEFAULTS["advi"], "learning_rate": 0.001,
                             "mean_field_learning_rate": _DEFAULTS["advi"]["learning_rate"],
                             "n_mc": 10}
_DEFAULTS["minibatch_advi"] = {
    **{k: v for k, v in _DEFAULTS["advi"].items() if k != "window"},
    "batch_size": 1000,
    "n": 50000,
    "learning_rate": 0.02,
}
_DEFAULTS["gibbs"] = dict(GIBBS_DEFAULTS)

_log = logging.getLogger(__name__)


def method_defaults(method: str) -> dict[str, Any]:
    """The options of ``method`` with their defaults (a copy)."""
    _check_method(method)
    return dict(_DEFAULTS[method])


def _check_method(method) -> None:
    if method not in METHODS:
        raise InputError(f"unknown method {method!r}; valid methods are: {', '.join(METHODS)}")


def _check_options(method: str, options: dict[str, Any]) -> dict[str, Any]:
    defaults = _DEFAULTS[method]
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        raise InputError(
            f"unknown option(s) {unknown} for method {method!r}; valid options are: "
            f"{', '.join(sorted(defaults))}"
        )
    opts = {**defaults, **options}
    for key in ("maxiter", "restarts", "draws", "chains", "n", "max_treedepth", "batch_size",
                "window", "n_mc"):
        if key in opts:
            value = opts[key]
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise InputError(f"{key} must be a positive integer, got {value!r}")
            opts[key] = int(value)
    if "tune" in opts:
        tune = opts["tune"]
        if isinstance(tune, bool) or not isinstance(tune, (int, np.integer)) or tune < 0:
            raise InputError(f"tune must be a non-negative integer, got {tune!r}")
    for key in ("tol", "learning_rate", "mean_field_learning_rate"):
        if key in opts and not (isinstance(opts[key], (int, float)) and opts[key] > 0):
            raise InputError(f"{key} must be a positive number, got {opts[key]!r}")
    if "lr_decay" in opts and (isinstance(opts["lr_decay"], bool) or not isinstance(
            opts["lr_decay"], (int, float)) or not 0 < opts["lr_decay"] <= 1):
        raise InputError(f"lr_decay must be in (0, 1], got {opts['lr_decay']!r}")
    if "max_decays" in opts and (isinstance(opts["max_decays"], bool) or not isinstance(
            opts["max_decays"], (int, np.integer)) or opts["max_decays"] < 0):
        raise InputError(f"max_decays must be a non-negative integer, got {opts['max_decays']!r}")
    if opts.get("max_seconds") is not None and (
            isinstance(opts["max_seconds"], bool) or not isinstance(opts["max_seconds"], (int, float))
            or not opts["max_seconds"] > 0):
        raise InputError(f"max_seconds must be a positive number or None, got "
                         f"{opts['max_seconds']!r}")
    if "target_accept" in opts and not 0 < opts["target_accept"] < 1:
        raise InputError(f"target_accept must be in (0, 1), got {opts['target_accept']!r}")
    if method == "nuts" and opts["sampler"] not in SAMPLERS:
        raise InputError(
            f"unknown sampler {opts['sampler']!r}; valid samplers are: {', '.join(SAMPLERS)}"
        )
    if method == "map" and opts["combine"] not in ("all", "best"):
        raise InputError(f"combine must be 'all' or 'best', got {opts['combine']!r}")
    valid_init = {"map": ("prior", "zero"), "nuts": ("auto", "prior"),
                  "advi": ("prior", "zero", "map"), "fullrank_advi": ("prior", "zero", "map"),
                  "minibatch_advi": ("prior", "zero", "map"), "gibbs": ("auto", "prior")}[method]
    if opts.get("init") not in valid_init:
        raise InputError(f"init must be one of {valid_init} for {method}, got {opts.get('init')!r}")
    if "start_sigma" in opts and not (isinstance(opts["start_sigma"], (int, float))
                                      and opts["start_sigma"] > 0):
        raise InputError(f"start_sigma must be a positive number, got {opts['start_sigma']!r}")
    return opts


def fit(model: pm.Model, method: str = "map", *, random_seed: int | None = None,
        progressbar: bool = False, **options) -> xr.DataTree:
    """Fit a PyMC model by MAP, NUTS, (full-rank or minibatch) ADVI, or Gibbs sampling.

    Parameters
    ----------
    model : pm.Model
        Any PyMC model; models from :func:`bayesrec.models.build_model` (or the
        registry's factories) also record their name and config in the fit, so
        that it can predict after saving and loading.
    method : {"map", "nuts", "advi", "fullrank_advi", "minibatch_advi", "gibbs"}
    random_seed : int, optional
        Seed for everything random in the fit.  ``None`` draws one, which is
        recorded in ``attrs["random_seed"]`` so the fit can be repeated.
    progressbar : bool
    **options
        Method options; an unknown one raises listing the valid ones.

        * ``map``: ``maxiter`` (3000), ``tol`` (1e-7, relative change of the
          objective), ``restarts`` (1; each restart starts from its own prior
          draw and becomes a chain), ``combine`` ("all" keeps every restart,
          "best" the one with the highest training log-likelihood), ``init``
          ("prior": a draw from the prior, which breaks the symmetric saddle at
          all-zero factors; "zero": the model's initial point), ``optimizer``
          (any :func:`scipy.optimize.minimize` method; "em": expectation-maximisation,
          for models that declare an EM step (Dirichlet mixtures, see
          :mod:`bayesrec.inference.em`); "auto" (default): "em" for those, else
          "L-BFGS-B").
        * ``nuts``: ``draws`` (1000), ``tune`` (1000), ``chains`` (2), ``cores``,
          ``sampler`` ("nutpie", "pymc", "numpyro", "blackjax"), ``target_accept``
          (0.8), ``max_treedepth`` (10), ``init`` ("auto": the sampler's own;
          "prior": start every chain from a prior draw).  Every sampler returns
          the same groups and dims; see "JAX samplers and GPUs" below.
        * ``advi`` / ``fullrank_advi``: ``n`` (30000 iterations at most),
          ``draws`` (1000, from the fitted approximation), ``learning_rate``
          (Adam; 0.01, full rank 0.001), ``init`` ("prior", "zero" or "map"),
          ``start_sigma`` (0.1, every sd of the starting approximation).  Full rank
          first fits mean-field ADVI (``mean_field_learning_rate``, 0.01), starts
          from its means and sds, and averages ``n_mc`` (10) Monte Carlo draws per
          gradient (:func:`bayesrec.inference.advi.monitored_fit` says why).
          Convergence stopping: every
          ``window`` (200) iterations the mean loss of the last window is
          compared with the window before; when it improved by less than
          ``tol`` (1e-3, relative) the learning rate is multiplied by
          ``lr_decay`` (0.5), and the plateau after ``max_decays`` (3) decays
          stops the fit; ``max_seconds`` (None) caps the wall time.  The
          ``advi`` group records the loss, the stop reason ("converged",
          "max_iterations" or "time_limit"), the iterations where the rate
          decayed and the time per iteration.  A window whose mean loss is more
          than 5 % worse than the best window's means the optimiser diverged:
          :class:`~bayesrec.errors.FitError` is raised (not a fit whose
          predictions would be wrong).
        * ``minibatch_advi``: mean-field ADVI where every step sees ``batch_size``
          (1000) ratings drawn at random (with replacement) and the likelihood
          is scaled by ``n_ratings / batch_size`` (PyMC's ``Minibatch`` and
          ``total_size``), so a step costs the same whatever the data size.
          Works on any model whose per-rating data are ``pm.Data`` on the
          ``obs`` dim (see :mod:`bayesrec.inference.minibatch`).  The same
          options and stopping as ``advi``, except ``n`` (50000),
          ``learning_rate`` (0.02) and the window: ``max(100, one epoch)``
          iterations.  The ``advi`` group also records the epochs.
        * ``gibbs`` (PMF and BPMF only, identity link; see
          :mod:`bayesrec.inference.gibbs`): ``draws``, ``tune`` (burn-in sweeps,
          discarded), ``chains``, ``cores`` (1: chains one after the other),
          ``hyper`` ("exact": conjugate / independence-MH updates of the BPMF
          hyperparameters; "nuts": NUTS on their Markov blanket),
          ``target_accept`` (of that NUTS), ``init`` ("auto" or "prior"),
          ``moves`` (extra exact moves along slow directions), ``hold_bias_sd``
          (burn-in sweeps with the bias scale held small), ``overrelax`` (-0.8:
          over-relaxed factor rows; 0: plain Gibbs).

    Returns
    -------
    xarray.DataTree
        See the module docstring for its groups and attrs.

    Notes
    -----
    **JAX samplers and GPUs.**  ``sampler="numpyro"`` or ``"blackjax"`` compiles
    the model's log-density to JAX (``pip install 'bayesrec[jax]'``; the
    package's own Ops, such as the MMSBM likelihood, get JAX versions
    automatically) and runs NUTS there.  JAX runs on the first accelerator it
    finds: install the CUDA build of JAX, ``pip install -U "jax[cuda12]"``
    (or ``"jax[cuda13]"``; Linux, with an NVIDIA driver recent enough for that
    CUDA major version), check that ``jax.devices()`` lists a CUDA device, and
    the same call then samples on the GPU; nothing in ``fit`` changes.  With
    one device the chains run one after another.  Set ``JAX_PLATFORMS=cpu`` to
    force the CPU.
    Compilation takes seconds to a minute per model, so JAX pays off for
    large data and long chains; for small data nutpie (the default) is faster.
    """
    if not isinstance(model, pm.Model):
        raise InputError(f"fit needs a pymc.Model, got {type(model).__name__}")
    _check_method(method)
    opts = _check_options(method, options)
    if random_seed is None:
        random_seed = int(np.random.SeedSequence().generate_state(1)[0])
    elif isinstance(random_seed, bool) or not isinstance(random_seed, (int, np.integer)) or random_seed < 0:
        raise InputError(f"random_seed must be a non-negative integer or None, got {random_seed!r}")
    random_seed = int(random_seed)

    runner = {"map": _fit_map, "nuts": _fit_nuts, "advi": _fit_advi,
              "fullrank_advi": _fit_advi, "minibatch_advi": _fit_advi, "gibbs": _fit_gibbs}[method]
    start = time.perf_counter()
    with _quiet_pymc(progressbar):
        dt = runner(model, method, opts, random_seed, progressbar)
    seconds = time.perf_counter() - start
    return _finalise(dt, model, method, opts, random_seed, seconds)


# ---------------------------------------------------------------------------------------------
# methods
# ---------------------------------------------------------------------------------------------
def stored_var_names(model: pm.Model) -> list[str]:
    """Free variables and deterministics, except those sized by the data (dim ``obs``)."""
    dims = model.named_vars_to_dims
    names = [rv.name for rv in model.free_RVs + model.deterministics]
    return [n for n in names if "obs" not in (dims.get(n) or ())]


def _child_seeds(random_seed: int, n: int) -> list[int]:
    return [int(s) for s in np.random.SeedSequence(random_seed).generate_state(n)]


def initial_values(model: pm.Model, init: str, seed: int, *, attempts: int = 20) -> dict | None:
    """A starting point: a draw from the prior (``"prior"``), or None (the model's own).

    Prior draws break the symmetry of factor models (all-zero factors are a
    saddle point).  A draw where the log-density is not finite (for example a
    simplex entry that underflows to zero) is redrawn.
    """
    if init != "prior":
        return None
    rvs = model.free_RVs
    to_values = _value_space_fn(model)
    logp = model.compile_logp()
    rng = np.random.default_rng(seed)
    for _ in range(attempts):
        values = pm.draw(rvs, random_seed=rng)
        values = values if isinstance(values, list) else [values]
        point = {rv.name: np.asarray(v) for rv, v in zip(rvs, values, strict=True)}
        with np.errstate(all="ignore"):
            trial = to_values(point)
        if all(np.isfinite(v).all() for v in trial.values()) and np.isfinite(logp(trial)):
            return point
    warnings.warn("no prior draw had a finite log-density; starting from the model's initial point",
                  UserWarning, stacklevel=3)
    return None


def _value_space_fn(model: pm.Model):
    """Compiled map from constrained values of the free variables to the value variables."""
    outs = []
    for rv in model.free_RVs:
        transform = model.rvs_to_transforms.get(rv)
        outs.append(rv if transform is None else transform.forward(rv, *rv.owner.inputs))
    fn = model.compile_fn(outs, inputs=model.free_RVs, on_unused_input="ignore", point_fn=False)
    names = [model.rvs_to_values[rv].name for rv in model.free_RVs]

    def to_values(point: dict) -> dict:
        out = fn(*[point[rv.name] for rv in model.free_RVs])
        return dict(zip(names, out, strict=True))

    return to_values


def _training_loglik(model: pm.Model, posterior: xr.Dataset) -> np.ndarray:
    """Training log-likelihood (summed over observations) of each chain's first draw."""
    ll = pm.compute_log_likelihood(xr.DataTree.from_dict({"posterior": posterior}), model=model,
                                   extend_inferencedata=False, progressbar=False)
    ds = ll["log_likelihood"].to_dataset() if isinstance(ll, xr.DataTree) else ll
    total = sum(ds[v].sum([d for d in ds[v].dims if d not in ("chain", "draw")]) for v in ds.data_vars)
    return np.asarray(total.isel(draw=0).values, dtype=float)


def _map_optimizer(model: pm.Model, optimizer: str) -> str:
    """``optimizer`` with "auto" resolved: "em" if the model declares an EM step."""
    from bayesrec.inference.em import em_step_of

    if optimizer == "auto":
        return "em" if em_step_of(model) is not None else "L-BFGS-B"
    if optimizer == "em" and em_step_of(model) is None:
        raise InputError("optimizer 'em' needs a model that declares an EM step "
                         "(bayesrec.inference.em.set_em_step); use 'L-BFGS-B'")
    return optimizer


def _fit_map(model, method, opts, random_seed, progressbar) -> xr.DataTree:
    seeds = _child_seeds(random_seed, opts["restarts"])
    optimizer = _map_optimizer(model, opts["optimizer"])
    if optimizer == "em":
        from bayesrec.inference.em import em_restarts

        all_chains, reports, observed, constant = em_restarts(model, opts, seeds)
        return _combine_restarts(all_chains, reports, opts, optimizer, observed, constant)
    runs, reports = [], []
    for restart, seed in enumerate(seeds):
        initvals = initial_values(model, opts["init"], seed)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The optimizer did not converge")
            dt = pm.find_MAP(
                method=optimizer, model=model, initvals=initvals, jitter=False,
                random_seed=seed, return_inferencedata=True, progressbar=progressbar,
                maxiter=opts["maxiter"], tol=opts["tol"],
            )
        res = dt["optimizer_result"].to_dataset()
        reports.append({
            "restart": restart,
            "seed": seed,
            "fun": float(np.asarray(res["fun"]).ravel()[0]),
            "nit": int(np.asarray(res["nit"]).ravel()[0]),
            "nfev": int(np.asarray(res["nfev"]).ravel()[0]),
            "success": bool(np.asarray(res["success"]).ravel()[0]),
            "message": str(np.asarray(res["message"]).ravel()[0]),
        })
        runs.append(dt)
    all_chains = xr.concat(
        [dt["posterior"].to_dataset().isel(chain=[0]).assign_coords(chain=[j])
         for j, dt in enumerate(runs)], dim="chain",
    )
    for report, ll in zip(reports, _training_loglik(model, all_chains), strict=True):
        report["log_likelihood"] = float(ll)
    first = runs[0]
    return _combine_restarts(all_chains, reports, opts, optimizer,
                             first["observed_data"].to_dataset(),
                             first["constant_data"].to_dataset())


def _combine_restarts(all_chains, reports, opts, optimizer, observed, constant) -> xr.DataTree:
    """Keep every restart as a chain, or the best by training log-likelihood."""
    keep = list(range(len(reports)))
    if opts["combine"] == "best":
        keep = [int(np.argmax([r["log_likelihood"] for r in reports]))]
    posterior = all_chains.isel(chain=keep).assign_coords(chain=np.arange(len(keep)))
    report = xr.Dataset(
        {key: ("restart", [r[key] for r in reports])
         for key in ("seed", "fun", "nit", "nfev", "success", "message", "log_likelihood")},
        coords={"restart": np.arange(len(reports))},
    )
    report["kept"] = ("restart", np.isin(np.arange(len(reports)), list(keep)))
    report.attrs["optimizer"] = optimizer
    return xr.DataTree.from_dict({
        "posterior": posterior,
        "observed_data": observed,
        "constant_data": constant,
        "optimizer_result": report,
    })


def _fit_nuts(model, method, opts, random_seed, progressbar) -> xr.DataTree:
    sampler = opts["sampler"]
    if sampler in ("numpyro", "blackjax"):
        _require_jax(sampler)
    chains = opts["chains"]
    cores = opts["cores"] or min(chains, os.cpu_count() or 1)
    initvals = initial_values(model, "prior", random_seed) if opts["init"] == "prior" else None
    depth_key = {"numpyro": "max_tree_depth", "blackjax": "max_num_doublings"}.get(
        sampler, "max_treedepth")  # pymc; nutpie's "maxdepth" is renamed by PyMC
    nuts = {"target_accept": opts["target_accept"], depth_key: opts["max_treedepth"]}
    dt = pm.sample(
        draws=opts["draws"], tune=opts["tune"], chains=chains, cores=cores,
        random_seed=random_seed, progressbar=progressbar, nuts_sampler=sampler,
        var_names=stored_var_names(model), model=model, initvals=initvals, nuts=nuts,
        compute_convergence_checks=False, quiet=not progressbar,
    )
    return dt


def _fit_gibbs(model, method, opts, random_seed, progressbar) -> xr.DataTree:
    from bayesrec.inference.gibbs import fit_gibbs

    return fit_gibbs(model, opts, random_seed, progressbar)


def _require_jax(sampler: str) -> None:
    import importlib.util

    missing = [m for m in ("jax", sampler) if importlib.util.find_spec(m) is None]
    if missing:
        raise InputError(
            f"sampler {sampler!r} needs {', '.join(missing)}; install them with "
            "pip install 'bayesrec[jax]'"
        )
    from bayesrec.models._jax import register_jax_ops

    register_jax_ops()  # JAX versions of the package's own Ops (none is model-specific here)


def _advi_start(model, opts, seed, progressbar) -> dict | None:
    """Starting means of (any) ADVI: a MAP fit, a prior draw or the model's initial point."""
    if opts["init"] != "map":
        return initial_values(model, opts["init"], seed)
    map_fit = _fit_map(model, "map", {**_DEFAULTS["map"]}, seed, progressbar)
    post = map_fit["posterior"].to_dataset()
    return {rv.name: post[rv.name].values[0, 0] for rv in model.free_RVs}


def _fit_advi(model, method, opts, random_seed, progressbar) -> xr.DataTree:
    from bayesrec.inference.advi import approximation_tree, monitored_fit
    from bayesrec.inference.minibatch import fit_minibatch_advi

    seed_init, seed_fit, seed_draw = _child_seeds(random_seed, 3)
    start = _advi_start(model, opts, seed_init, progressbar)
    if method == "minibatch_advi":
        approx, advi = fit_minibatch_advi(model, opts, seed_fit, start, progressbar)
    else:
        approx, advi = monitored_fit(model, method, opts, seed_fit, start, progressbar,
                                     window=opts["window"])
    if advi.attrs["stop_reason"] == "diverged":
        # full rank returns its mean-field start's report when that phase diverged
        start_phase = method == "fullrank_advi" and advi.attrs["method"] == "advi"
        rate_key = "mean_field_learning_rate" if start_phase else "learning_rate"
        raise FitError(
            f"{method}{' (its mean-field start)' if start_phase else ''} diverged after "
            f"{advi.attrs['n_iterations']} iterations: the mean loss of the last "
            f"{advi.attrs['convergence_window']} rose to {advi.attrs['last_window_loss']:.6g} "
            f"from a best of {advi.attrs['best_window_loss']:.6g}, so the approximation is not "
            f"a posterior.  Try a smaller {rate_key} (now {opts[rate_key]:g}), "
            f"method='advi', or method='nuts'.")
    dt = approximation_tree(approx, model, stored_var_names(model), opts["draws"], seed_draw)
    return xr.DataTree.from_dict({
        "posterior": dt["posterior"].to_dataset(),
        "observed_data": dt["observed_data"].to_dataset(),
        "constant_data": dt["constant_data"].to_dataset(),
        "advi": advi,
    })


# ---------------------------------------------------------------------------------------------
# post-processing shared by every method
# ---------------------------------------------------------------------------------------------
_STAT_ALIASES = {  # nutpie name -> the name pymc and numpyro use
    "depth": "tree_depth",
    "maxdepth_reached": "reached_max_treedepth",
    "logp": "lp",
    "mean_tree_accept": "acceptance_rate",
}


def _finalise(dt: xr.DataTree, model: pm.Model, method: str, opts: dict, seed: int,
              seconds: float) -> xr.DataTree:
    posterior = dt["posterior"].to_dataset()
    obs_vars = [v for v in posterior.data_vars if "obs" in posterior[v].dims]
    posterior = posterior.drop_vars(obs_vars)
    groups = {"posterior": posterior}
    for name in ("observed_data", "constant_data", "optimizer_result", "advi"):
        if name in dt.children:
            groups[name] = dt[name].to_dataset()
    if "sample_stats" in dt.children:
        stats = dt["sample_stats"].to_dataset()
        stats = stats.rename({k: v for k, v in _STAT_ALIASES.items()
                              if k in stats and v not in stats})
        keep = [v for v in stats.data_vars if stats[v].dims[:2] == ("chain", "draw")]
        groups["sample_stats"] = stats[keep]
    info = model_info(model)
    groups["bayesrec"] = _identity_group(model, info)
    out = xr.DataTree.from_dict(groups)
    out.attrs.update({
        "bayesrec_model": info.name if info else "custom",
        "bayesrec_config": info.config_json() if info else "{}",
        "bayesrec_hash": groups["bayesrec"].attrs["hash"],
        "method": method,
        "method_options": json.dumps(opts, sort_keys=True, default=str),
        "random_seed": seed,
        "fit_seconds": seconds,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": json.dumps(package_versions(), sort_keys=True),
    })
    return out


def _identity_group(model: pm.Model, info) -> xr.Dataset:
    """Id universe, scale, model name and config, with a hash binding them together."""
    coords = {k: np.asarray(v) for k, v in model.coords.items()
              if k in ("user", "item") and v is not None}
    ds = xr.Dataset(coords=coords)
    scale = info.ratings.scale.to_dict() if info else None
    ds.attrs["scale"] = json.dumps(scale)
    ds.attrs["model"] = info.name if info else "custom"
    ds.attrs["config"] = info.config_json() if info else "{}"
    ds.attrs["hash"] = identity_hash(ds)
    return ds


def identity_hash(ds: xr.Dataset) -> str:
    """SHA-256 over the model name, config, scale and id universe of a ``bayesrec`` group."""
    h = hashlib.sha256()
    for key in ("model", "config", "scale"):
        h.update(str(ds.attrs.get(key)).encode())
        h.update(b"\x1e")
    for dim in ("user", "item"):
        if dim in ds.coords:
            h.update("\x1f".join(map(str, ds[dim].values.tolist())).encode())
        h.update(b"\x1e")
    return h.hexdigest()


def package_versions() -> dict[str, str]:
    out = {}
    for pkg in ("bayesrec", "pymc", "pytensor", "arviz", "xarray", "numpy", "nutpie", "numpyro"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            continue
    return out


@contextmanager
def _quiet_pymc(progressbar: bool):
    """Silence PyMC's INFO logging during a fit unless a progress bar was asked for.

    Also silences PyTensor's "could not link to a BLAS" warning: PyMC compiles the
    one-off initial-point function of some distributions (the LKJ prior) with the C
    backend, which warns on pip installs; that function runs a handful of times, so
    the missing BLAS costs nothing.  Everything that runs in the sampling loop is
    compiled with Numba, which brings its own BLAS.
    """
    logger = logging.getLogger("pymc")
    level = logger.level
    if not progressbar:
        logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*could not link to a BLAS")
            yield
    finally:
        logger.setLevel(level)
