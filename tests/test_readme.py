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
