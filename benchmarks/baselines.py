"""Benchmark: every registered baseline on MovieLens 100K folds u1..u5.

Prints, per model, the 5-fold mean ± sd of test RMSE, MAE, exact-rating accuracy,
90 % interval coverage and fit seconds, and writes ``benchmarks/results/baselines.json``
(layout in ``benchmarks/README.md``).  Needs MovieLens 100K under ``--data-home`` or
``$BAYESREC_DATA``; without it, says so and exits with status 0.

    BAYESREC_DATA=/path/holding/ml-100k python benchmarks/baselines.py
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
from _common import movielens_or_none

from bayesrec.evaluation import MOVIELENS_FOLDS, evaluate, provenance, write_json
from bayesrec.models import list_models

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "baselines.json"
COLUMNS = ("rmse", "mae", "accuracy", "coverage_90", "fit_seconds")


def summary_row(result) -> dict:
    """One table row: ``mean ± sd`` over folds of each of COLUMNS."""
    summary = result.summary()
    row = {"model": result.model}
    for col in COLUMNS:
        digits = 3 if col == "fit_seconds" else 4
        mean, sd = summary.loc[col, "mean"], summary.loc[col, "sd"]
        row[col] = f"{mean:.{digits}f} ± {sd:.{digits}f}"
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-home", help="folder holding ml-100k/ (default $BAYESREC_DATA)")
    parser.add_argument("--folds", default=",".join(MOVIELENS_FOLDS),
                        help="MovieLens folds, comma-separated (default u1,...,u5)")
    parser.add_argument("--seed", type=int, default=0, help="seed (only `uniform` uses it)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="JSON output file")
    args = parser.parse_args(argv)

    folds = [f.strip() for f in args.folds.split(",") if f.strip()]
    loaded = movielens_or_none("baselines.py", args.data_home, folds)
    if loaded is None:
        return 0
    dataset, splits = loaded

    results = {}
    for spec in list_models(kind="baseline"):
        print(f"{spec.name} ...", file=sys.stderr, flush=True)
        results[spec.name] = evaluate(spec.name, splits, seed=args.seed, dataset=dataset)

    table = pd.DataFrame([summary_row(r) for r in results.values()])
    print(f"Baselines on MovieLens 100K, folds {', '.join(folds)} (mean ± sd over folds)")
    print(table.to_string(index=False))

    record = {
        "benchmark": "baselines",
        "dataset": dataset,
        "folds": folds,
        "seed": args.seed,
        **provenance(),
        "models": {name: r.to_json() for name, r in results.items()},
    }
    write_json(args.output, record)
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
