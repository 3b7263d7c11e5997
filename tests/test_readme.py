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


def _recorded_values() -> list[float]:
    """Every number in the benchmark records (benchmarks/results/*.json)."""
    import json

    found: list[float] = []

    def walk(value):
        if isinstance(value, bool):
            return
        if isinstance(value, int | float):
            found.append(float(value))
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    for path in sorted((REPO_ROOT / "benchmarks" / "results").glob("*.json")):
        record = json.loads(path.read_text())
        walk(record)
        # records of per-fold rows ({"row", "fold", metrics...}): their means over folds
        rows = record.get("rows") if isinstance(record, dict) else None
        if isinstance(rows, list) and rows and isinstance(rows[0], dict) and "fold" in rows[0]:
            by_row: dict = {}
            for r in rows:
                by_row.setdefault(r.get("row"), []).append(r)
            for group in by_row.values():
                for key in group[0]:
                    numbers = [g.get(key) for g in group]
                    if all(isinstance(v, int | float) and not isinstance(v, bool)
                           for v in numbers):
                        found.append(sum(numbers) / len(numbers))
    return found


#: Numbers the README quotes that are not measurements.
CONSTANTS = {"-1.609": "log(1/5): the LPD of uniform guessing on five levels"}


def test_every_quoted_score_is_in_a_record():
    """A score the README quotes to three or four decimals (an RMSE, an accuracy, a log
    predictive density, a coverage) is some benchmark record's number, rounded, or the
    mean over folds of a record's per-fold rows."""
    import numpy as np

    readme = (REPO_ROOT / "README.md").read_text()
    quoted = sorted({m for m in re.findall(r"(?<![\d.])-?\d\.\d{3,4}(?![\d])", readme)})
    values = np.array(_recorded_values())
    missing = []
    for text in quoted:
        if text in CONSTANTS:
            continue
        decimals = len(text.split(".")[1])
        if not np.any(np.round(values, decimals) == float(text)):
            missing.append(text)
    assert not missing, (
        f"the README quotes {missing}, which no record in benchmarks/results/ holds (rounded): "
        "quote a record's figure, or rerun the benchmark that makes it")
