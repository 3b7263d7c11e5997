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
PyTensor setting, restored afterwards; nothing global changes).  Every bayesrec entry
point that compiles a model's graph (fits, predictions, diagnostics' evaluations)
runs inside it; the package's own Numba kernels are compiled without reassociation
or contraction for the same reason.
"""

from __future__ import annotations

from contextlib import contextmanager

import pytensor

__all__ = ["reproducible"]


@contextmanager
def reproducible():
    """Compile PyTensor graphs without Numba fast-math inside this block."""
    with pytensor.config.change_flags(numba__fastmath=False):
        yield
