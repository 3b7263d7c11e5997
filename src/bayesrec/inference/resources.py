"""How much memory a fit will need, estimated before anything is drawn or compiled.

:func:`estimate_memory` reads the sizes of a model's variables from its dims and
coords (else from their symbolic shapes), without drawing, and adds up what a fit
by a given method keeps in memory:

* **draws**: the stored values (free variables and deterministics not sized by the
  data) x the stored draws (chains x draws; MAP: restarts; ADVI: draws of the
  approximation) x 8 bytes, twice for the samplers (their trace and the fit's copy),
  once for ADVI and MAP (which build the fit's arrays directly);
* **per-rating intermediates**: the likelihood gathers each rating's rows of the
  per-user and per-item variables (``U[user_idx]``, ``V[item_idx]``): ratings x
  (their row sizes) values, about four copies for gradient-based methods
  (forward values, products, gradients), one for Gibbs (whose kernels work row by
  row), a minibatch's worth for minibatch ADVI;
* **the method's working copies**: a few vectors of the size of the parameters
  (L-BFGS history, Adam's moments, NUTS' mass matrix); full-rank ADVI holds a
  parameters x parameters Cholesky factor with its gradient and Adam moments, and
  dense BFGS a parameters x parameters Hessian.

The estimate is a lower bound (interpreter, compiled code and the data are not
counted; MMSBM's per-rating group x group terms neither), so a refusal is never
a false alarm.  :func:`check_memory`, called by :func:`bayesrec.inference.fit`
before any work, refuses a fit whose estimate is above ``max_memory``: by default
half of this machine's physical memory (:data:`MEMORY_SHARE`).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
import pymc as pm
import pytensor

from bayesrec.errors import InputError

__all__ = [
    "MEMORY_SHARE",
    "MemoryEstimate",
    "check_memory",
    "estimate_memory",
    "format_bytes",
    "machine_memory",
    "parse_bytes",
]

#: Share of the machine's physical memory a fit may use by default (``max_memory="auto"``).
MEMORY_SHARE = 0.5
_BYTES = 8  # float64
_UNIT_DIMS = ("user", "item")
_GRADIENT_COPIES = 4
_UNITS = {"": 1, "B": 1, "K": 2**10, "KB": 2**10, "KIB": 2**10, "M": 2**20, "MB": 2**20,
          "MIB": 2**20, "G": 2**30, "GB": 2**30, "GIB": 2**30, "T": 2**40, "TB": 2**40,
          "TIB": 2**40}


@dataclass(frozen=True)
class MemoryEstimate:
    """What a fit will hold in memory, in bytes (see the module docstring)."""

    method: str
    parameters: int
    stored_per_draw: int
    stored_draws: int
    draws_bytes: int
    intermediate_bytes: int
    working_bytes: int

    @property
    def total(self) -> int:
        return self.draws_bytes + self.intermediate_bytes + self.working_bytes

    def describe(self) -> str:
        """One line: the total and its parts."""
        return (f"{format_bytes(self.total)} ({self.parameters:,} parameters; draws "
                f"{format_bytes(self.draws_bytes)} = {self.stored_draws:,} draw(s) x "
                f"{self.stored_per_draw:,} values; per-rating intermediates "
                f"{format_bytes(self.intermediate_bytes)}; working copies of {self.method} "
                f"{format_bytes(self.working_bytes)})")


def format_bytes(n: float) -> str:
    """``1.5 GB``-style text (powers of 1024)."""
    for unit, size in (("TB", 2**40), ("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


def parse_bytes(text: str) -> int:
    """``"8G"``, ``"512MB"``, ``"1.5 GiB"`` or a number of bytes -> bytes."""
    cleaned = str(text).strip().upper().replace(" ", "")
    number = cleaned.rstrip("KMGTIB")
    unit = cleaned[len(number):]
    try:
        value = float(number)
    except ValueError:
        value = math.nan
    if unit not in _UNITS or not (math.isfinite(value) and value > 0):
        raise InputError(f"a memory size must be a positive number of bytes with an optional "
                         f"unit, such as 8G, 512MB or 2000000000; got {text!r}")
    return int(value * _UNITS[unit])


def machine_memory() -> int | None:
    """This machine's physical memory in bytes (None where it cannot be read)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return None


def _sizes(model: pm.Model, variables: list) -> list[tuple[int, tuple]]:
    """(number of values, dims) of model variables, from their coords where every dim has
    one, else from their symbolic shapes (evaluated together, nothing drawn)."""
    out: list = []
    missing = []
    for var in variables:
        dims = tuple(model.named_vars_to_dims.get(var.name) or ())
        if dims and all(d is not None and d in model.coords for d in dims):
            out.append((int(np.prod([len(model.coords[d]) for d in dims])), dims))
        else:
            out.append((None, dims))
            missing.append(len(out) - 1)
    if missing:
        try:
            shapes = pytensor.function([], [variables[i].shape for i in missing],
                                       on_unused_input="ignore", mode="FAST_COMPILE")()
        except Exception:  # a shape that cannot be evaluated alone: count one value each
            shapes = [()] * len(missing)
        for i, shape in zip(missing, shapes, strict=True):
            out[i] = (int(np.prod(shape)), out[i][1])
    return out


def _stored_draws(method: str, options: dict) -> int:
    if method == "map":
        return int(options.get("restarts", 1))
    if method in ("nuts", "gibbs"):
        return int(options.get("chains", 1)) * int(options.get("draws", 1))
    if method == "staged":  # a point, or one chain of draws of sampled components
        return int(options["draws"]) if options.get("components") == "gibbs" else 1
    return int(options.get("draws", 1))  # the ADVI flavours: draws of the approximation


def estimate_memory(model: pm.Model, method: str, options: dict) -> MemoryEstimate:
    """The memory a fit of ``model`` by ``method`` with ``options`` will hold (a lower bound).

    ``options`` are the method's full options (:func:`~bayesrec.inference.method_options`).
    Nothing is drawn or compiled, except the symbolic shape of a variable without dims.
    """
    n_obs = len(model.coords.get("obs", ())) if "obs" in model.coords else 0
    parameters, per_rating, stored = 0, 0, 0
    sizes = _sizes(model, model.free_RVs + model.deterministics)
    for (size, dims), var in zip(sizes, model.free_RVs + model.deterministics, strict=True):
        if "obs" not in dims:
            stored += size
        if var not in model.free_RVs:
            continue
        parameters += size
        for dim in _UNIT_DIMS:
            if dim in dims and len(model.coords[dim]):
                per_rating += size // len(model.coords[dim])
    draws = _stored_draws(method, options)
    draw_copies = 2 if method in ("nuts", "gibbs") else 1
    rows = n_obs
    copies = _GRADIENT_COPIES
    if method == "minibatch_advi":
        rows = min(n_obs, int(options.get("batch_size", n_obs)))
    elif method == "gibbs":
        copies = 1
    elif method == "fullrank_advi":
        copies *= int(options.get("n_mc", 1))
    working = 20 * parameters  # L-BFGS history, Adam moments, mass matrix, ...
    if method == "fullrank_advi":
        working += 4 * parameters * (parameters + 1) // 2
    optimizer = str(options.get("optimizer", "")).upper()
    if method == "map" and optimizer in ("BFGS", "NEWTON-CG", "TRUST-NCG", "TRUST-EXACT",
                                          "TRUST-KRYLOV", "DOGLEG", "TRUST-CONSTR"):
        working += parameters * parameters
    return MemoryEstimate(
        method=method, parameters=parameters, stored_per_draw=stored, stored_draws=draws,
        draws_bytes=draw_copies * draws * stored * _BYTES,
        intermediate_bytes=copies * rows * per_rating * _BYTES,
        working_bytes=working * _BYTES,
    )


def _limit(max_memory) -> tuple[int | None, str]:
    """(bytes allowed, how the limit was set) for a ``max_memory`` argument."""
    if max_memory is None:
        return None, "no limit"
    if isinstance(max_memory, str) and max_memory == "auto":
        total = machine_memory()
        if total is None:
            return None, "no limit (this machine's memory cannot be read)"
        return int(total * MEMORY_SHARE), (f"{MEMORY_SHARE:.0%} of this machine's "
                                           f"{format_bytes(total)}")
    if isinstance(max_memory, str):
        limit = parse_bytes(max_memory)
    elif isinstance(max_memory, (int, float, np.integer, np.floating)) and not isinstance(
            max_memory, bool) and math.isfinite(max_memory) and max_memory > 0:
        limit = int(max_memory)
    else:
        raise InputError(f"max_memory must be 'auto', a number of bytes, a size such as '8G', "
                         f"or None (no check); got {max_memory!r}")
    return limit, f"max_memory={format_bytes(limit)}"


def check_memory(model: pm.Model, method: str, options: dict,
                 max_memory: int | float | str | None = "auto") -> MemoryEstimate:
    """Estimate a fit's memory and refuse it (:class:`InputError`) above ``max_memory``.

    Parameters
    ----------
    model, method, options
        As for :func:`estimate_memory`.
    max_memory : "auto", int, float, str or None
        ``"auto"`` (the default): :data:`MEMORY_SHARE` of this machine's physical
        memory; a number of bytes or a size such as ``"8G"``; ``None`` skips the check
        (go ahead anyway).

    Returns
    -------
    MemoryEstimate
    """
    limit, source = _limit(max_memory)
    estimate = estimate_memory(model, method, options)
    if limit is not None and estimate.total > limit:
        raise InputError(
            f"this {method} fit would need at least {estimate.describe()}, more than the "
            f"{format_bytes(limit)} allowed ({source}); make the model smaller (fewer factors, "
            "draws or chains, or minibatch_advi for many ratings), or pass max_memory=None to "
            "go ahead anyway (or a larger max_memory, such as '64G')"
        )
    return estimate
