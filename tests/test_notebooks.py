"""The gallery notebooks against their text sources.

Each ``notebooks/NN_name.ipynb`` is built from ``notebooks/NN_name.py`` (jupytext percent
format) by ``notebooks/build.py``.  These tests read files only and take seconds; the
notebooks themselves run in fast mode through nbmake.  They check that every notebook has
its source and holds exactly its cells, that no committed output holds an absolute path of
the machine that ran it, and that the sources are ruff-clean.
"""

from __future__ import annotations

import difflib
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
IPYNB = sorted(NOTEBOOKS.glob("*.ipynb"))
SOURCES = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))

def load_build():
    """``notebooks/build.py`` as a module (the notebooks folder is not a package)."""
    spec = importlib.util.spec_from_file_location("notebooks_build", NOTEBOOKS / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cells(nb) -> list[tuple[str, str]]:
    return [(cell.cell_type, cell.source) for cell in nb.cells]


BUILD = load_build()


def test_the_gallery_is_there():
    assert IPYNB, f"no notebooks in {NOTEBOOKS}"


@pytest.mark.parametrize("notebook", IPYNB, ids=lambda p: p.name)
def test_every_notebook_has_a_source(notebook):
    source = notebook.with_suffix(".py")
    assert source.is_file(), (
        f"{notebook.name} has no text source {source.name}: the gallery's notebooks are "
        "built from jupytext percent scripts by notebooks/build.py"
    )


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_every_source_has_a_notebook(source):
    assert source.with_suffix(".ipynb").is_file(), (
        f"{source.name} has no notebook: run python notebooks/build.py --execute {source.stem}"
    )


@pytest.mark.parametrize("notebook", IPYNB, ids=lambda p: p.name)
def test_notebook_cells_equal_its_source(notebook):
    source = notebook.with_suffix(".py")
    if not source.is_file():
        pytest.fail(f"{notebook.name} has no text source {source.name}")
    want = cells(jupytext.read(source, fmt="py:percent"))
    have = cells(nbformat.read(notebook, as_version=4))
    for i, (w, h) in enumerate(zip(want, have, strict=False)):
        if w != h:
            diff = "\n".join(difflib.unified_diff(
                h[1].splitlines(), w[1].splitlines(), f"{notebook.name} ({h[0]})",
                f"{source.name} ({w[0]})", lineterm=""))
            pytest.fail(f"cell {i} of {notebook.name} differs from its source "
                        f"(python notebooks/build.py {notebook.stem} updates it):\n{diff}")
    assert len(have) == len(want), (
        f"{notebook.name} has {len(have)} cells, {source.name} {len(want)}")


@pytest.mark.parametrize("notebook", IPYNB, ids=lambda p: p.name)
def test_outputs_hold_no_machine_paths(notebook):
    found = BUILD.machine_paths(nbformat.read(notebook, as_version=4))
    assert not found, (
        f"{notebook.name}: committed outputs hold absolute paths of the machine that ran it "
        "(notebooks/build.py scrubs known ones when it writes a notebook):\n"
        + "\n".join(found))


def test_sources_are_ruff_clean():
    assert SOURCES, f"no notebook sources (NN_name.py) in {NOTEBOOKS}"
    paths = sorted(NOTEBOOKS.glob("*.py"))
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", *paths],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_build_check_agrees():
    assert BUILD.check() == []


def test_build_check_finds_an_edited_cell(tmp_path):
    build = load_build()
    source = SOURCES[0]
    nb = nbformat.read(source.with_suffix(".ipynb"), as_version=4)
    nb.cells[1].source += "\nprint('edited')"
    edited = tmp_path / source.with_suffix(".ipynb").name
    nbformat.write(nb, edited)
    found = build.differences(source, edited)
    assert len(found) == 1 and "cell 1" in found[0]


def test_scrubbed_outputs_hold_no_machine_paths():
    """What ``build.py`` does to fresh outputs: the warnings seen in full runs, and paths
    in a traceback, come out without machine paths; the warnings' messages stay."""
    build = load_build()
    site = f"{sys.prefix}/lib/python3.12/site-packages"
    stderr = (
        f"{site}/tqdm/auto.py:21: TqdmWarning: IProgress not found. Please update jupyter "
        "and ipywidgets.\n  from .autonotebook import tqdm as notebook_tqdm\n"
    )
    warning = (
        "/tmp/ipykernel_26539/4189483575.py:14: UserWarning: fit 'pmf (gibbs)': 938 of 80000 "
        "ratings have Pareto k > 0.7\n  loo_table = compare_fits(sampled, ic=\"loo\")\n"
    )
    traceback = [f"\x1b[0;32mFile {ROOT}/src/bayesrec/inference/fit.py:10\x1b[0m, in fit",
                 f"File {site}/pymc/model/core.py:3, in Model"]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x", outputs=[
        nbformat.v4.new_output("stream", name="stderr", text=stderr),
        nbformat.v4.new_output("stream", name="stderr", text=warning),
        nbformat.v4.new_output("error", ename="ValueError", evalue="bad", traceback=traceback),
        nbformat.v4.new_output("display_data", data={"text/plain": f"saved to {ROOT}/x.nc"}),
    ])])
    assert len(BUILD.machine_paths(nb)) == 5  # one per string: the traceback has two
    build.scrub_outputs(nb)
    assert BUILD.machine_paths(nb) == []
    outputs = nb.cells[0].outputs
    assert len(outputs) == 3  # the tqdm warning was all of its stream: removed
    assert outputs[0].text.startswith("<cell>:14: UserWarning: fit 'pmf (gibbs)': 938")
    assert "src/bayesrec/inference/fit.py:10" in outputs[1].traceback[0]
    assert "pymc/model/core.py:3" in outputs[1].traceback[1]
    assert outputs[2].data["text/plain"] == "saved to x.nc"


def _watermark(notebook: Path) -> dict[str, str]:
    """The watermark the notebook's set-up cell printed: ``executed``, ``commit``,
    ``versions``, ``machine`` (see :func:`bayesrec.provenance.watermark`)."""
    nb = nbformat.read(notebook, as_version=4)
    first = next(cell for cell in nb.cells if cell.cell_type == "code")
    text = "".join(out.get("text", "") for out in first.outputs)
    found = dict(re.findall(r"^(executed|commit|versions|machine) +(.+)$", text, re.MULTILINE))
    found["mode"] = "full" if "full mode" in text else "fast" if "fast mode" in text else "?"
    return found


@pytest.mark.parametrize("notebook", IPYNB, ids=lambda p: p.name)
def test_outputs_are_stamped_with_a_full_run_of_committed_code(notebook):
    stamp = _watermark(notebook)
    assert set(stamp) >= {"executed", "commit", "versions", "machine"}, (
        f"{notebook.name} has no watermark in its set-up cell's output: execute it with "
        f"python notebooks/build.py --execute {notebook.stem}")
    assert stamp["mode"] == "full", f"{notebook.name}'s committed outputs are a fast-mode run"
    assert "uncommitted" not in stamp["commit"] and "unknown" not in stamp["commit"], (
        f"{notebook.name} was executed on code that no commit holds ({stamp['commit']})")


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="not a git checkout")
@pytest.mark.parametrize("notebook", IPYNB, ids=lambda p: p.name)
def test_outputs_come_from_todays_library_code(notebook):
    """The library (src/) that made a notebook's outputs is the library of this commit:
    a change of src/ needs the notebooks executed again."""
    commit = _watermark(notebook).get("commit", "").split()[0:1]
    if not commit:
        pytest.fail(f"{notebook.name} has no watermark")
    def git(*args):
        return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)

    if git("cat-file", "-e", f"{commit[0]}^{{commit}}").returncode != 0 \
            and git("rev-parse", "--is-shallow-repository").stdout.strip() == "true":
        pytest.skip(f"a shallow clone: commit {commit[0]} is not in it")
    changed = git("diff", "--stat", commit[0], "HEAD", "--", "src")
    assert changed.returncode == 0, (
        f"{notebook.name} was executed on commit {commit[0]}, which this repository does not "
        f"hold: {changed.stderr.strip()}")
    assert not changed.stdout.strip(), (
        f"{notebook.name} was executed on commit {commit[0]}; src/ has changed since:\n"
        f"{changed.stdout}\nrun python notebooks/build.py --execute {notebook.stem}")


def test_every_picture_in_the_readme_is_written_by_a_notebook():
    pictures = re.findall(r"!\[[^\]]*\]\((docs/[^)]+)\)", (ROOT / "README.md").read_text())
    assert pictures, "the README shows no picture from docs/"
    for picture in pictures:
        assert (ROOT / picture).is_file(), f"{picture} is missing"
        writers = [s.name for s in SOURCES if f'"../{picture}"' in s.read_text()]
        assert writers, f"no notebook source writes {picture}: no record makes it"
