"""Build the gallery notebooks from their text sources, and optionally execute them.

Each notebook's source is a jupytext percent script, ``notebooks/NN_name.py`` (``# %%``
code cells, ``# %% [markdown]`` cells); the committed ``NN_name.ipynb`` holds the same
cells with the outputs of a full run.

    python notebooks/build.py                   # update every .ipynb's cells from its .py
    python notebooks/build.py 02_pmf 03_bpmf    # only these
    python notebooks/build.py --execute 02_pmf  # and run it top to bottom, saving outputs
    python notebooks/build.py --check           # exit 1 if any .ipynb differs from its .py

Without ``--execute``, the sources are combined with the existing outputs the way
``jupytext --sync`` does it: a cell keeps its outputs when jupytext matches it to a cell of
the old notebook, so an edited cell shows outputs of its old source until the notebook is
executed again (the cells whose source changed are listed).

``--execute`` runs in full mode (MovieLens 100K, found through ``$BAYESREC_DATA``) unless
``BAYESREC_FAST=1`` is set; fast-mode outputs are not for the committed notebooks, so fast
mode needs ``--output-dir``.  A notebook is written only when every cell ran.  Whenever a
notebook is written, absolute paths of this machine are removed from its outputs first
(``scrub_outputs``).  The test
suite runs the notebooks in fast mode through ``pytest --nbmake`` (see the root
``conftest.py``); ``tests/test_notebooks.py`` checks that sources and notebooks agree.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path

import jupytext
import nbformat
from jupytext.combine import combine_inputs_with_outputs

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
FORMAT = "py:percent"

# Outputs are scanned and scrubbed as text; these data are base64-encoded binaries.
BINARY_MIME_TYPES = ("image/png", "image/jpeg", "image/gif")
# Absolute paths of the machine that ran a notebook (tests/test_notebooks.py scans for these).
MACHINE_PATH = re.compile("|".join(re.escape(p) for p in [
    "/work/", "/root/", "/home/", "/tmp/", "site-packages", "dist-packages", str(ROOT),
    tempfile.gettempdir() + "/", *([str(Path.home()) + "/"] if Path.home() != Path("/") else []),
]))
# Warnings printed by the warnings module: "path:line: Category: message" and the indented
# source line(s) after it.  TqdmWarning ("IProgress not found": no ipywidgets) is noise.
_DROPPED_WARNING = re.compile(r"^[^\n]*:\d+: TqdmWarning: [^\n]*\n(?:[ \t][^\n]*(?:\n|$))*",
                              re.MULTILINE)
_SEGMENT = r"(?:/[^\s/:'\"\x1b]+)+"
_PATH_REWRITES = [
    # a warning raised in a cell names the kernel's temporary file for it
    (re.compile(_SEGMENT + r"/ipykernel_\d+/\d+\.py"), "<cell>"),
    # installed packages and the standard library: the path inside them is enough
    (re.compile(_SEGMENT + r"/(?:site|dist)-packages/"), ""),
    (re.compile(_SEGMENT + r"/lib/python3\.\d+/"), ""),
    # this checkout (bayesrec installed in editable mode): relative to the repository
    (re.compile(re.escape(str(ROOT)) + r"/"), ""),
    (re.compile(re.escape(str(Path.home())) + r"/"), "~/"),
]


def sources(names: list[str] | None = None) -> list[Path]:
    """The notebooks' sources, ``notebooks/NN_name.py``, all or the named ones."""
    everything = sorted(HERE.glob("[0-9][0-9]_*.py"))
    if not names:
        return everything
    by_name = {p.stem: p for p in everything}
    unknown = [n for n in names if Path(n).stem not in by_name]
    if unknown:
        raise SystemExit(f"unknown notebook(s) {unknown}; choose from {sorted(by_name)}")
    return [by_name[Path(n).stem] for n in names]


def cell_sources(nb) -> list[tuple[str, str]]:
    """What must agree between a source and its notebook: each cell's type and source."""
    return [(cell.cell_type, cell.source) for cell in nb.cells]


def differences(source: Path, notebook: Path | None = None) -> list[str]:
    """How ``notebook`` (default: the .ipynb beside ``source``) differs from ``source``."""
    notebook = notebook or source.with_suffix(".ipynb")
    if not notebook.exists():
        return [f"{notebook.name} is missing: run python notebooks/build.py {source.stem}"]
    want = cell_sources(jupytext.read(source, fmt=FORMAT))
    have = cell_sources(nbformat.read(notebook, as_version=4))
    found = []
    if len(want) != len(have):
        found.append(f"{notebook.name} has {len(have)} cells, {source.name} {len(want)}")
    for i, (w, h) in enumerate(zip(want, have, strict=False)):  # lengths compared above
        if w != h:
            found.append(f"{notebook.name} cell {i} ({h[0]}) differs from {source.name}'s "
                         f"({w[0]}): {h[1][:60]!r}... against {w[1][:60]!r}...")
    return found


def check() -> list[str]:
    """Every difference between the notebooks and their sources, and notebooks without one."""
    found = [d for source in sources() for d in differences(source)]
    for notebook in sorted(HERE.glob("*.ipynb")):
        if not notebook.with_suffix(".py").exists():
            found.append(f"{notebook.name} has no source {notebook.with_suffix('.py').name}")
    return found


def combine(source: Path, notebook: Path) -> tuple[nbformat.NotebookNode, list[int]]:
    """The cells of ``source`` with the outputs of ``notebook`` where jupytext matches them
    (as ``jupytext --sync``), and the indices of the cells whose source changed."""
    new = jupytext.read(source, fmt=FORMAT)
    if not notebook.exists():
        return new, list(range(len(new.cells)))
    old = nbformat.read(notebook, as_version=4)
    old_cells = cell_sources(old)
    changed = [i for i, cell in enumerate(cell_sources(new))
               if i >= len(old_cells) or cell != old_cells[i]]
    return combine_inputs_with_outputs(new, old, fmt=FORMAT), changed


def _scrub_text(text: str) -> str:
    text = _DROPPED_WARNING.sub("", text)
    for pattern, replacement in _PATH_REWRITES:
        text = pattern.sub(replacement, text)
    return text


def _scrub(value):
    if isinstance(value, str):
        return _scrub_text(value)
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    if isinstance(value, dict):
        return {k: v if k in BINARY_MIME_TYPES else _scrub(v) for k, v in value.items()}
    return value


def scrub_outputs(nb) -> None:
    """Remove absolute paths of this machine from the outputs, in place.

    tqdm's "IProgress not found" warning is dropped; a path into an installed package or
    the standard library keeps only its part inside them (``tqdm/auto.py``), the kernel's
    file for a cell becomes ``<cell>``, and paths in this checkout become relative.  A
    stream output left empty is removed.
    """
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        outputs = []
        for output in cell.outputs:
            output = nbformat.from_dict(_scrub(dict(output)))
            if output.output_type == "stream" and not output.text:
                continue
            outputs.append(output)
        cell.outputs = outputs


def machine_paths(nb) -> list[str]:
    """Where the outputs still hold an absolute path of this machine: ``cell i: text``."""
    found = []

    def walk(value, where):
        if isinstance(value, str):
            match = MACHINE_PATH.search(value)
            if match:
                found.append(f"{where}: {value[max(0, match.start() - 60):match.end() + 60]!r}")
        elif isinstance(value, list):
            for v in value:
                walk(v, where)
        elif isinstance(value, dict):
            for k, v in value.items():
                if k not in BINARY_MIME_TYPES:
                    walk(v, where)

    for i, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            walk(dict(output), f"cell {i}")
    return found


def execute(nb, timeout: int = 3600) -> bool:
    """Run the notebook top to bottom in ``notebooks/``, in place; False (and the error
    printed) when a cell failed, timed out or the kernel died."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    # no progress bars in committed outputs (they need ipywidgets, and are noise on paper)
    os.environ["BAYESREC_PROGRESS"] = "0"
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(HERE)}}).execute()
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as exc:
        print(exc, file=sys.stderr)
        return False
    return True


def build(source: Path, *, run: bool = False, output_dir: Path | None = None) -> int:
    """Write ``source``'s notebook (into ``output_dir`` if given); 1 if anything went wrong."""
    target = (output_dir or HERE) / source.with_suffix(".ipynb").name
    nb, changed = combine(source, source.with_suffix(".ipynb"))
    if run:
        fast = os.environ.get("BAYESREC_FAST", "0") == "1"
        print(f"executing {source.stem} ({'fast' if fast else 'full'} mode)", flush=True)
        if not execute(nb):  # the error is printed; go on with the next notebook
            print(f"{source.stem} failed: not written", file=sys.stderr)
            return 1
    elif changed:
        print(f"{source.stem}: cells {changed} changed; their outputs are from the old "
              "source until the notebook is executed (--execute)")
    scrub_outputs(nb)
    jupytext.write(nb, target, fmt="ipynb")
    print(target)
    leftover = machine_paths(nb)
    if leftover:
        print(f"{target.name}: outputs still hold machine paths (tests/test_notebooks.py "
              "will fail): clean the cell or extend scrub_outputs\n  " + "\n  ".join(leftover),
              file=sys.stderr)
        return 1
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="notebooks to build (default: all), e.g. 02_pmf")
    parser.add_argument("--execute", action="store_true", help="run them, saving outputs")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if any .ipynb's cells differ from its .py")
    parser.add_argument("--output-dir", type=Path,
                        help="write the notebooks here instead of notebooks/ (fast-mode runs)")
    args = parser.parse_args(argv)
    if args.check:
        found = check()
        print("\n".join(found) or "every notebook agrees with its source")
        return 1 if found else 0
    fast = os.environ.get("BAYESREC_FAST", "0") == "1"
    if args.execute and fast and args.output_dir is None:
        parser.error("BAYESREC_FAST=1: fast-mode outputs must not replace the committed "
                     f"full-mode ones; pass --output-dir (e.g. {tempfile.gettempdir()})")
    if args.output_dir is not None:
        args.output_dir.mkdir(parents=True, exist_ok=True)
    failed = [s.stem for s in sources(args.names)
              if build(s, run=args.execute, output_dir=args.output_dir)]
    if failed:
        print(f"failed: {failed}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
