"""Provenance of every record bayesrec writes: when, and with which versions.

One place for it: fits (:func:`bayesrec.inference.fit` stamps ``created_at`` and
``versions`` on the DataTree), evaluation records (``bayesrec evaluate --json``)
and the benchmarks' JSON all call :func:`provenance`.
"""

from __future__ import annotations

import platform
from datetime import UTC, datetime
from importlib import metadata

__all__ = ["PACKAGES", "now", "provenance", "versions"]

#: The packages whose versions every record carries.
PACKAGES = ("bayesrec", "pymc", "pytensor", "arviz", "xarray", "numpy", "nutpie", "numpyro")


def now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def versions(*extra: str) -> dict[str, str]:
    """Python's version and those of :data:`PACKAGES` plus ``extra`` (installed ones only)."""
    out = {"python": platform.python_version()}
    for package in (*PACKAGES, *extra):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return out


def provenance(*extra_packages: str, **extra_versions: str) -> dict:
    """``created_at`` and ``versions`` for a record; ``extra_packages`` are looked up,
    ``extra_versions`` (for example a compared system's version) are given."""
    return {"created_at": now(), "versions": {**versions(*extra_packages), **extra_versions}}
