"""Layers point one way: data -> models -> inference -> diagnostics / evaluation -> CLI.

The contracts live in ``pyproject.toml`` ([tool.importlinter]) and are checked by
import-linter, which reads every import statement, those inside functions too.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import REPO_ROOT

LINT = Path(sys.executable).with_name("lint-imports")


def _lint(*args: str, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT), "--no-cache", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def test_the_layer_contracts_hold():
    out = _lint()
    assert out.returncode == 0, out.stdout + out.stderr
    assert "layers point one way KEPT" in out.stdout
    assert "no import cycles inside a layer's package KEPT" in out.stdout


def test_the_checker_sees_imports_inside_functions(tmp_path):
    # the CLI imports the diagnostics report only inside a function: a contract that
    # forbids it must break, or the checker would miss the imports that made the old cycle
    config = tmp_path / "contracts.toml"
    config.write_text(
        '[tool.importlinter]\nroot_package = "bayesrec"\n\n'
        '[[tool.importlinter.contracts]]\nname = "cli without diagnostics"\n'
        'type = "forbidden"\nsource_modules = ["bayesrec.cli"]\n'
        'forbidden_modules = ["bayesrec.diagnostics"]\n'
    )
    out = _lint("--config", str(config))
    assert out.returncode != 0
    assert "cli without diagnostics BROKEN" in out.stdout
    assert "bayesrec.cli -> bayesrec.diagnostics" in out.stdout
