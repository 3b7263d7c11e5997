"""Every benchmark script starts: its imports resolve and its command line parses
(``--help``), in one fresh process.  (A script named like a package it compares with
removes its folder from the import path; an import of a shared helper placed after that
broke ``benchmarks/mmsbm.py`` without any test noticing.)"""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO_ROOT

DRIVER = r"""
import runpy, sys
failed = []
for path in sys.argv[1:]:
    sys.argv = [path, "--help"]
    saved = list(sys.path)
    sys.modules.pop("_common", None)  # each script imports its helpers afresh
    sys.path.insert(0, path.rsplit("/", 1)[0])
    try:
        runpy.run_path(path, run_name="__main__")
    except SystemExit as exc:
        if exc.code not in (0, None):
            failed.append(f"{path}: exit {exc.code}")
    except BaseException as exc:  # report every script's failure, not only the first
        failed.append(f"{path}: {type(exc).__name__}: {exc}")
    finally:
        sys.path[:] = saved
print("\n".join(failed))
sys.exit(1 if failed else 0)
"""


def test_every_benchmark_script_starts():
    scripts = sorted(str(p) for p in (REPO_ROOT / "benchmarks").glob("*.py")
                     if not p.name.startswith("_"))
    assert len(scripts) >= 8, scripts
    result = subprocess.run([sys.executable, "-c", DRIVER, *scripts], capture_output=True,
                            text=True, cwd=REPO_ROOT, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
