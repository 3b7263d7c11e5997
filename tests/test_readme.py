"""The README says what the code does: its model table is the registry's."""

from __future__ import annotations

import re

from bayesrec.models import model_table
from conftest import REPO_ROOT


def _block(text: str, name: str) -> str:
    match = re.search(rf"<!-- {name}[^>]*-->\n(.*?)\n<!-- /{name} -->", text, re.S)
    assert match, f"the README has no <!-- {name} --> block"
    return match.group(1).strip()


def test_the_model_table_is_the_registry():
    readme = (REPO_ROOT / "README.md").read_text()
    assert _block(readme, "model-table") == model_table(), (
        "the README's model table differs from the registry: paste the output of "
        "`bayesrec models --markdown` between its model-table markers")


def test_the_table_lists_every_method_of_every_model():
    table = model_table()
    assert "minibatch_advi" in table.split("`pmf`")[1].split("\n")[0]
    assert "minibatch_advi" in table.split("`bpmf`")[1].split("\n")[0]


def test_the_benchmark_tables_are_their_records():
    """Every figure of a generated benchmark table comes from its JSON record."""
    import importlib.util

    path = REPO_ROOT / "benchmarks" / "readme_figures.py"
    spec = importlib.util.spec_from_file_location("readme_figures", path)
    figures = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(figures)
    readme = (REPO_ROOT / "README.md").read_text()
    for name in figures.TABLES:
        assert figures.current(readme, name) == figures.render(name), (
            f"the README's {name} table differs from its record: run "
            "python benchmarks/readme_figures.py")
