"""The README's benchmark tables, generated from the records in ``benchmarks/results/``.

Every figure of a generated table comes from a JSON record written by a benchmark script
(the record's date, commit-independent settings and versions are in the JSON); nothing
is typed by hand.  ``python benchmarks/readme_figures.py`` rewrites the blocks between
``<!-- benchmark-table: NAME -->`` and ``<!-- /benchmark-table -->`` in README.md;
``--check`` exits 1 when the README differs from the records (``tests/test_readme.py``
runs the same check).

Tables:

``pmf_bpmf``
    ``benchmarks/results/pmf_bpmf.json`` (``benchmarks/pmf_bpmf.py``): per row the test
    RMSE, exact-rating accuracy, log predictive density (when recorded), 90 % interval
    coverage and fit time, as means over the record's folds.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
README = ROOT / "README.md"

_TITLES = {"global_mean/fit": "global mean", "mean_of_means/fit": "mean of means",
           "biases/fit": "biases baseline"}


def _label(row: str) -> str:
    if row in _TITLES:
        return _TITLES[row]
    model, method = row.split("/")
    names = {"gibbs": "Gibbs", "staged": "staged", "fullrank_advi": "full-rank ADVI",
             "minibatch_advi": "minibatch ADVI"}
    return f"{model.upper()} {names.get(method, method.upper())}"


def _number(value, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)


def pmf_bpmf_table(record: dict) -> str:
    """The u1 (or the record's folds) table of ``pmf_bpmf.json``."""
    lines = [f"Recorded {record['created_at'][:10]} on {record['dataset']} "
             f"(`benchmarks/results/pmf_bpmf.json`, bayesrec {record['versions']['bayesrec']}, "
             f"PyMC {record['versions']['pymc']}):", "",
             "| model / method | test RMSE | accuracy | LPD | 90 % coverage | fit time |",
             "|---|---|---|---|---|---|"]
    for row, res in record["results"].items():
        mean = res["mean"]
        lines.append(
            f"| {_label(row)} | {_number(mean.get('rmse'), '{:.3f}')} | "
            f"{_number(mean.get('accuracy'), '{:.3f}')} | {_number(mean.get('lpd'), '{:.3f}')} "
            f"| {_number(mean.get('coverage_90'), '{:.3f}')} | "
            f"{_number(mean.get('fit_seconds'), '{:.0f} s') if (mean.get('fit_seconds') or 0) >= 1 else _number(mean.get('fit_seconds'), '{:.2f} s')} |")
    return "\n".join(lines)


TABLES = {"pmf_bpmf": ("pmf_bpmf.json", pmf_bpmf_table)}


def render(name: str) -> str:
    filename, make = TABLES[name]
    return make(json.loads((RESULTS / filename).read_text()))


def _pattern(name: str) -> re.Pattern:
    return re.compile(rf"(<!-- benchmark-table: {name} -->\n)(.*?)(\n<!-- /benchmark-table -->)",
                      re.S)


def current(text: str, name: str) -> str | None:
    match = _pattern(name).search(text)
    return None if match is None else match.group(2)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the README differs")
    args = parser.parse_args(argv)
    text = README.read_text()
    stale = []
    for name in TABLES:
        want = render(name)
        if current(text, name) is None:
            print(f"README.md has no benchmark-table block {name!r}", file=sys.stderr)
            return 1
        if current(text, name) != want:
            stale.append(name)
            text = _pattern(name).sub(lambda m, w=want: m.group(1) + w + m.group(3), text)
    if args.check:
        if stale:
            print(f"README.md's tables {stale} differ from their records: run "
                  "python benchmarks/readme_figures.py", file=sys.stderr)
        return 1 if stale else 0
    README.write_text(text)
    print(f"rewrote {stale or 'nothing'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
