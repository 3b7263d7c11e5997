"""The notebooks' data cells substitute nothing silently.

Full mode runs on MovieLens 100K and fails, naming ``BAYESREC_DATA``, when it is missing;
only fast mode uses the synthetic data, and it prints that it does.  The set-up cell and
the data cell of every notebook that loads MovieLens run here, without a kernel.
"""

from __future__ import annotations

import ast
from pathlib import Path

import jupytext
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
SOURCES = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))


def data_cells(source: Path) -> tuple[str, str] | None:
    """The set-up cell (the first code cell) and the cell that loads MovieLens, as Python
    (IPython magics dropped), or None when the notebook does not load MovieLens."""
    code = [c.source for c in jupytext.read(source, fmt="py:percent").cells
            if c.cell_type == "code"]
    loading = [s for s in code if "example_split(" in s]
    if not loading:
        return None

    def python(text):
        return "\n".join(line for line in text.splitlines() if not line.startswith("%"))

    return python(code[0]), python(loading[0])


LOADING = [s for s in SOURCES if data_cells(s)]


def run(cells: tuple[str, str]) -> dict:
    namespace: dict = {}
    for i, text in enumerate(cells):
        exec(compile(text, f"<cell {i}>", "exec"), namespace)
    return namespace


def test_notebooks_load_movielens():
    assert LOADING, "no notebook source loads MovieLens (example_split)"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_no_exception_is_swallowed_wholesale(source):
    """No bare ``except:`` and no ``except Exception``/``BaseException`` in a notebook."""
    broad = [
        node.lineno for node in ast.walk(ast.parse(source.read_text()))
        if isinstance(node, ast.ExceptHandler)
        and (node.type is None or ast.unparse(node.type) in ("Exception", "BaseException"))
    ]
    assert not broad, f"{source.name} catches every exception at line(s) {broad}"


@pytest.mark.parametrize("source", LOADING, ids=lambda p: p.name)
def test_full_mode_without_movielens_fails_naming_bayesrec_data(source, monkeypatch, tmp_path):
    monkeypatch.setenv("BAYESREC_FAST", "0")
    monkeypatch.setenv("BAYESREC_DATA", str(tmp_path))  # an empty data home
    with pytest.raises((ValueError, OSError), match="BAYESREC_DATA"):
        run(data_cells(source))


@pytest.mark.parametrize("source", LOADING, ids=lambda p: p.name)
def test_fast_mode_says_it_uses_the_synthetic_data(source, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("BAYESREC_FAST", "1")
    monkeypatch.setenv("BAYESREC_DATA", str(tmp_path))
    namespace = run(data_cells(source))
    out = capsys.readouterr().out
    assert "fast mode" in out and "synthetic" in out and "not MovieLens" in out
    assert namespace["train"].n_ratings + namespace["test"].n_ratings == 4000


@pytest.mark.movielens
def test_full_mode_loads_movielens(movielens_home, monkeypatch, capsys):
    monkeypatch.setenv("BAYESREC_FAST", "0")
    monkeypatch.setenv("BAYESREC_DATA", str(movielens_home))
    namespace = run(data_cells(LOADING[0]))
    assert "MovieLens 100K, fold u1" in capsys.readouterr().out
    assert namespace["train"].n_ratings == 80_000
