"""The same numbers on every machine, whether a function was compiled now or cached.

PyTensor compiles models with Numba, by default with fast-math flags that let LLVM
reorder floating-point sums.  Measured here: the log-density of a PMF model compiled
in a fresh cache differs in its last digits from the same function loaded from the
cache (-10320.849236668733 against -...728), and the flags reorder sums by the
vector width of the CPU.  A MAP fit's optimiser path, or a Markov chain, amplifies
those digits: two runs of the same fit with the same seed gave different results
(201 against 197 L-BFGS iterations).  Without fast-math, sums keep their written
order: fresh and cached compiles agree, and so do CPUs.

:func:`reproducible` compiles without fast-math for the duration of a block (a scoped
PyTensor setting, restored afterwards; nothing global changes).  PyTensor's settings
are process-global, and a scoped change is saved and restored by each thread on its
own: two threads compiling at once (fits on a dask cluster of threads, say) would
each restore what the other set, and leave the process with fast-math or with a
compile mode of PyTensor's own rewrites (seen: the Python linker's ``FAST_COMPILE``,
which then compiled every later function in the process).  So the block holds a
process-wide lock: fits in threads of one process take turns (processes, dask's
default, run in parallel as before).  Every bayesrec entry
point that compiles a model's graph (fits, predictions, diagnostics' evaluations)
runs inside it; the package's own Numba kernels are compiled without reassociation
or contraction for the same reason.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

import pytensor

__all__ = ["reproducible"]

_COMPILE_LOCK = threading.RLock()  # re-entrant: entry points nest


@contextmanager
def reproducible():
    """Compile PyTensor graphs without Numba fast-math inside this block (one thread
    of the process at a time)."""
    with _COMPILE_LOCK, pytensor.config.change_flags(numba__fastmath=False):
        yield
