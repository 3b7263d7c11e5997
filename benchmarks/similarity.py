"""Benchmark: similar items with their uncertainty, from a 1,000-draw fit of MovieLens 100K.

Fits BPMF (``n_factors=10``, the factory's defaults) by block Gibbs on fold u1
(2 chains x 500 draws after 100 tuning sweeps: 1,000 draws), then times
:func:`bayesrec.inference.similar_items` for one item (default 50) against every other
item (1,681 candidates, 1,000 draws each), several runs after one warm-up call:

* the fast path (the model's declared factor structure), returning the top 10 and
  returning every neighbour (the work is the same: all candidates are scored);
* :func:`~bayesrec.inference.similar_users` for one user, fast path;
* the generic path (``fast=False``: ``mu`` for every user x item through the model's
  graph), once, with the largest difference from the fast path's numbers.

Target (issue 23): all neighbourhoods of one item in under 2 s (median of the runs).
Also recorded: the median interval width of the neighbours by how many ratings they
have (items with few ratings should be uncertain).  Prints a table and writes
``benchmarks/results/similarity.json`` (ids and numbers only, no MovieLens data).

    BAYESREC_DATA=/path/holding/ml-100k python benchmarks/similarity.py
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bayesrec.data.movielens import movielens_folds
from bayesrec.errors import InputError
from bayesrec.evaluation import provenance, write_json
from bayesrec.inference import fit, similar_items, similar_users
from bayesrec.models import build_model

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "similarity.json"
TARGET_SECONDS = 2.0
POPULARITY_BINS = (0, 5, 20, 100, 10**9)


def timed(function, runs: int) -> tuple[list[float], object]:
    seconds, out = [], None
    for _ in range(runs):
        start = time.perf_counter()
        out = function()
        seconds.append(time.perf_counter() - start)
    return seconds, out


def row(name: str, seconds: list[float], out) -> dict:
    return {"row": name, "runs": len(seconds), "median_seconds": float(np.median(seconds)),
            "min_seconds": float(np.min(seconds)), "max_seconds": float(np.max(seconds)),
            "n_draws": int(out.attrs["n_draws"]), "neighbours": int(out.sizes["neighbour"]),
            "computed_by": out.attrs["computed_by"]}


def width_by_popularity(neighbours) -> list[dict]:
    """Median 90 % interval width of the neighbours, by their number of training ratings."""
    width = (neighbours["upper"] - neighbours["lower"]).values
    counts = neighbours["n_ratings"].values
    rows = []
    for low, high in zip(POPULARITY_BINS[:-1], POPULARITY_BINS[1:], strict=True):
        inside = (counts > low) & (counts <= high)
        label = f"{low + 1}-{high}" if high < 10**9 else f">{low}"
        rows.append({"n_ratings": label, "items": int(inside.sum()),
                     "median_interval_width": float(np.median(width[inside]))
                     if inside.any() else None})
    return rows


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-home", help="folder holding ml-100k/ (default $BAYESREC_DATA)")
    parser.add_argument("--item", type=int, default=50, help="the item (MovieLens id)")
    parser.add_argument("--user", type=int, default=1, help="the user of the similar_users row")
    parser.add_argument("--runs", type=int, default=7, help="timed runs per row")
    parser.add_argument("--draws", type=int, default=500, help="Gibbs draws per chain (2 chains)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-generic", action="store_true", help="skip the generic-path row")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        (split,) = movielens_folds(["u1"], data_home=args.data_home)
    except (InputError, FileNotFoundError) as exc:
        print(f"benchmarks/similarity.py: MovieLens 100K is not available, nothing to do.\n{exc}",
              file=sys.stderr)
        return 0
    gibbs = {"draws": args.draws, "tune": 100, "chains": 2, "cores": 2}
    print(f"u1: BPMF Gibbs {gibbs} ...", file=sys.stderr, flush=True)
    start = time.perf_counter()
    model = build_model("bpmf", split.train, n_factors=10)
    dt = fit(model, "gibbs", random_seed=args.seed, progressbar=False, **gibbs)
    fit_seconds = time.perf_counter() - start
    n_items = split.train.n_items

    similar_items(dt, args.item)  # warm-up: model record, caches
    rows = []
    seconds, top = timed(lambda: similar_items(dt, args.item, n=10), args.runs)
    rows.append(row("similar_items, top 10 (fast path)", seconds, top))
    seconds, every = timed(lambda: similar_items(dt, args.item, n=n_items - 1), args.runs)
    rows.append(row("similar_items, every neighbour (fast path)", seconds, every))
    seconds, users = timed(lambda: similar_users(dt, args.user, n=10), args.runs)
    rows.append(row("similar_users, top 10 (fast path)", seconds, users))
    agreement = None
    if not args.no_generic:
        print("generic path (model graph) ...", file=sys.stderr, flush=True)
        seconds, generic = timed(lambda: similar_items(dt, args.item, n=n_items - 1,
                                                       fast=False), 1)
        rows.append(row("similar_items, every neighbour (model graph)", seconds, generic))
        fast = every.sel(neighbour=generic["neighbour"].values)
        agreement = {name: float(np.nanmax(np.abs(fast[name].values - generic[name].values)))
                     for name in ("mean", "lower", "upper", "prob_top_n")}

    headline = rows[1]["median_seconds"]
    record = {"benchmark": "similarity", "dataset": "ml-100k", "fold": "u1", "seed": args.seed,
              "model": {"name": "bpmf", "n_factors": 10}, "gibbs_options": gibbs,
              "fit_seconds": fit_seconds, "item": args.item, "user": args.user,
              "n_items": n_items, "n_users": split.train.n_users, **provenance(),
              "rows": rows, "target_seconds": TARGET_SECONDS,
              "meets_target": bool(headline < TARGET_SECONDS),
              "fast_minus_generic_max_abs": agreement,
              "interval_width_by_popularity": width_by_popularity(every),
              "top_10": [{"item": int(k), "mean": float(m), "lower": float(lo),
                          "upper": float(hi), "prob_top_n": float(p)}
                         for k, m, lo, hi, p in zip(top["neighbour"].values, top["mean"].values,
                                                    top["lower"].values, top["upper"].values,
                                                    top["prob_top_n"].values, strict=True)]}
    print(f"\nSimilar items on MovieLens 100K u1: BPMF Gibbs, {rows[0]['n_draws']} draws, item "
          f"{args.item}, {n_items - 1} candidates (fit {fit_seconds:.1f} s)")
    print(pd.DataFrame(rows).set_index("row").round(4).to_string())
    print(f"\nall neighbourhoods of one item: {headline:.3f} s (median of {args.runs}); target "
          f"< {TARGET_SECONDS} s: {'met' if record['meets_target'] else 'NOT met'}")
    if agreement is not None:
        print(f"fast path - model graph, max abs difference: {agreement}")
    print("\nmedian 90% interval width of the neighbours, by their training ratings:")
    print(pd.DataFrame(record["interval_width_by_popularity"]).to_string(index=False))
    print(f"\ntop 10 neighbours of item {args.item}:")
    print(top.to_dataframe().round(3).to_string())
    write_json(args.output, record)
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
