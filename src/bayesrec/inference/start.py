"""Where fits start and what they store: shared by every inference method."""

from __future__ import annotations

import warnings

import numpy as np
import pymc as pm

from bayesrec.errors import InputError

__all__ = [
    "check_seed",
    "child_seeds",
    "initial_values",
    "stored_var_names",
    "value_space_fn",
    "var_dims",
]


def check_seed(random_seed) -> int:
    """A valid seed: ``random_seed`` itself, or a fresh one drawn for ``None`` (to be
    recorded, so that the run can be repeated)."""
    if random_seed is None:
        return int(np.random.SeedSequence().generate_state(1)[0])
    if (isinstance(random_seed, bool) or not isinstance(random_seed, (int, np.integer))
            or random_seed < 0):
        raise InputError(f"random_seed must be a non-negative integer or None, got "
                         f"{random_seed!r}")
    return int(random_seed)


def child_seeds(random_seed: int, n: int) -> list[int]:
    """``n`` independent seeds derived from ``random_seed``."""
    return [int(s) for s in np.random.SeedSequence(random_seed).generate_state(n)]


def stored_var_names(model: pm.Model) -> list[str]:
    """Free variables and deterministics, except those sized by the data (dim ``obs``)."""
    dims = model.named_vars_to_dims
    names = [rv.name for rv in model.free_RVs + model.deterministics]
    return [n for n in names if "obs" not in (dims.get(n) or ())]


def initial_values(model: pm.Model, init: str, seed: int, *, attempts: int = 20) -> dict | None:
    """A starting point: a draw from the prior (``"prior"``), or None (the model's own).

    Prior draws break the symmetry of factor models (all-zero factors are a
    saddle point).  A draw where the log-density is not finite (for example a
    simplex entry that underflows to zero) is redrawn.
    """
    if init != "prior":
        return None
    rvs = model.free_RVs
    to_values = value_space_fn(model)
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


def value_space_fn(model: pm.Model):
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


def var_dims(model: pm.Model, name: str, shape: tuple, coords: dict) -> tuple[str, ...]:
    """The dims of variable ``name`` (the model's, else ``name_dim_k``), filling ``coords``."""
    named = model.named_vars_to_dims.get(name) or ()
    dims = []
    for axis, size in enumerate(shape):
        dim = named[axis] if axis < len(named) and named[axis] else f"{name}_dim_{axis}"
        values = model.coords.get(dim)
        coords.setdefault(dim, np.asarray(values) if values is not None else np.arange(size))
        dims.append(dim)
    return tuple(dims)
