"""NUTS through :func:`pymc.sample`: nutpie (default), PyMC's own, or a JAX sampler.

**JAX samplers and GPUs.**  ``sampler="numpyro"`` or ``"blackjax"`` compiles the
model's log-density to JAX (``pip install 'bayesrec[jax]'``; the package's own
Ops, such as the MMSBM likelihood, get JAX versions automatically) and runs NUTS
there.  JAX runs on the first accelerator it finds: install the CUDA build of JAX,
``pip install -U "jax[cuda12]"`` (or ``"jax[cuda13]"``; Linux, with an NVIDIA driver
recent enough for that CUDA major version), check that ``jax.devices()`` lists a
CUDA device, and the same call then samples on the GPU; nothing in ``fit`` changes.
With one device the chains run one after another.  Set ``JAX_PLATFORMS=cpu`` to
force the CPU.  Compilation takes seconds to a minute per model, so JAX pays off
for large data and long chains; for small data nutpie (the default) is faster.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Literal

import pymc as pm
import xarray as xr

from bayesrec.errors import InputError
from bayesrec.inference.options import Fraction, MethodOptions, NonNegativeInt, PositiveInt
from bayesrec.inference.start import initial_values, stored_var_names

__all__ = ["SAMPLERS", "Options", "run", "sampled_groups"]

SAMPLERS = ("nutpie", "pymc", "numpyro", "blackjax")

#: nutpie's names of sampler statistics -> the names pymc and numpyro use
STAT_ALIASES = {"depth": "tree_depth", "maxdepth_reached": "reached_max_treedepth",
                "logp": "lp", "mean_tree_accept": "acceptance_rate"}


class Options(MethodOptions):
    """``draws`` (1000), ``tune`` (1000), ``chains`` (2), ``cores`` (None: one per chain,
    at most the CPU count), ``sampler`` (nutpie, pymc, numpyro, blackjax),
    ``target_accept`` (0.8), ``max_treedepth`` (10), ``init`` ("auto": the sampler's
    own; "prior": every chain from a prior draw)."""

    draws: PositiveInt = 1000
    tune: NonNegativeInt = 1000
    chains: PositiveInt = 2
    cores: PositiveInt | None = None
    sampler: Literal["nutpie", "pymc", "numpyro", "blackjax"] = "nutpie"
    target_accept: Fraction = 0.8
    max_treedepth: PositiveInt = 10
    init: Literal["auto", "prior"] = "auto"


def require_jax(sampler: str) -> None:
    """Raise unless JAX and ``sampler`` are installed; register the package's JAX Ops."""
    missing = [m for m in ("jax", sampler) if importlib.util.find_spec(m) is None]
    if missing:
        raise InputError(
            f"sampler {sampler!r} needs {', '.join(missing)}; install them with "
            "pip install 'bayesrec[jax]'"
        )
    from bayesrec.models._jax import register_jax_ops  # imports jax: only when asked for

    register_jax_ops()


def sampled_groups(dt: xr.DataTree) -> dict:
    """``posterior`` and ``sample_stats`` (per-draw statistics, pymc's names) of a
    :func:`pymc.sample` result."""
    groups = {"posterior": dt["posterior"].to_dataset()}
    if "sample_stats" in dt.children:
        stats = dt["sample_stats"].to_dataset()
        stats = stats.rename({k: v for k, v in STAT_ALIASES.items()
                              if k in stats and v not in stats})
        keep = [v for v in stats.data_vars if stats[v].dims[:2] == ("chain", "draw")]
        groups["sample_stats"] = stats[keep]
    return groups


def run(model: pm.Model, opts: dict, random_seed: int, progressbar: bool) -> dict:
    """The ``posterior`` and ``sample_stats`` of NUTS."""
    sampler = opts["sampler"]
    if sampler in ("numpyro", "blackjax"):
        require_jax(sampler)
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
    return sampled_groups(dt)
