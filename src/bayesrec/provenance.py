"""Provenance of every record bayesrec writes: when, and with which versions.

One place for it: fits (:func:`bayesrec.inference.fit` stamps ``created_at`` and
``versions`` on the DataTree), evaluation records (``bayesrec evaluate --json``)
and the benchmarks' JSON all call :func:`provenance`.
"""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

__all__ = ["PACKAGES", "commit", "machine", "now", "provenance", "versions", "watermark"]

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


def commit() -> str:
    """The git commit of the bayesrec source that is running, and whether its ``src/``
    differs from it: ``"c19b506"``, ``"c19b506 + uncommitted changes in src/"``, or
    ``"unknown (not a git checkout)"`` for an installed copy."""
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return "unknown (not a git checkout)"

    def git(*args):
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                              timeout=30, check=True).stdout.strip()

    try:
        head = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--", "src")
    except (OSError, subprocess.SubprocessError):
        return "unknown (git unavailable)"
    return head + (" + uncommitted changes in src/" if dirty else "")


def machine() -> str:
    """The operating system, CPU model and the number of CPUs this process may use."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{platform.system()} {platform.release()}, {cpu}, {usable} CPUs"


def watermark(*extra_packages: str) -> str:
    """Lines that date a notebook's outputs: when it ran, on which commit, with which
    versions (:func:`versions`, plus ``extra_packages``) and on which machine."""
    listed = ", ".join(f"{k} {v}" for k, v in versions(*extra_packages).items())
    return (f"executed {now()}\ncommit   {commit()}\nversions {listed}\n"
            f"machine  {machine()}")
