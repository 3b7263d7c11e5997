"""Progress where a person is watching, and quiet where no one is.

:func:`show_progress` decides whether a long computation shows a progress bar:
the caller's explicit choice, else on in a notebook or a terminal, and off when
the output is not a terminal, under CI (``CI`` set) or when ``BAYESREC_PROGRESS=0``.
:func:`quiet_pymc` silences PyMC's informational logging while a fit runs without
a progress bar.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from contextlib import contextmanager

from bayesrec.errors import InputError

__all__ = ["quiet_pymc", "show_progress"]

_ENV = "BAYESREC_PROGRESS"


def _in_notebook() -> bool:
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    ip = shell.get_ipython() if hasattr(shell, "get_ipython") else None
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"


def show_progress(requested: bool | None = None) -> bool:
    """Whether to show progress: ``requested`` when given, else the environment's answer."""
    if requested is not None:
        if not isinstance(requested, bool):
            raise InputError(f"progressbar must be True, False or None (automatic), got "
                             f"{requested!r}")
        return requested
    setting = os.environ.get(_ENV)
    if setting is not None:
        return setting.strip().lower() not in ("0", "false", "no", "off", "")
    if os.environ.get("CI"):
        return False
    if _in_notebook():
        return True
    stream = sys.stderr
    return bool(getattr(stream, "isatty", lambda: False)())


@contextmanager
def quiet_pymc(progressbar: bool = False):
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
