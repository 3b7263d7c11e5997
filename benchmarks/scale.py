"""Benchmark: minibatch ADVI of PMF from 100k to 10M simulated ratings.

Three parts, each printed as a table and written to ``benchmarks/results/scale.json``:

1. **Time per epoch** at each size: 100k, 1M and 10M ratings of PMF data
   simulated over the same users and items (by default those of MovieLens 10M:
   69,878 x 10,677), so that only the number of ratings changes.  Each size runs
   at least one full epoch (``n_ratings / batch_size`` steps) of
   ``fit(model, "minibatch_advi")``; the time per step excludes compilation.  A
   step costs the same at every size (one batch, plus the Adam update of every
   user's and item's parameters), so the time per epoch grows linearly with the
   number of ratings.
2. **A time-limited fit** of the largest size (``--time-limit`` seconds of
   iterations): wall time of build + compile + fit + draws, the stop reason,
   epochs done, held-out RMSE on 1 % of the ratings, and the peak memory of the
   fit (``resource.getrusage`` of a fresh process that simulates the ratings and
   fits them, so the simulation is included).
3. **Minibatch against full-batch ADVI** on a random subsample (``--compare-size``)
   of those ratings: held-out RMSE and fit time of both.

The default run (every size, 10M fit, 1M comparison) takes about 1.5 hours on two
cores; ``--quick`` (100k and 1M ratings of ML-1M's 6,040 users x 3,706 items, a 1M
fit for 2 minutes, a 100k comparison) takes about 5 minutes::

    .venv/bin/python benchmarks/scale.py --quick
    .venv/bin/python benchmarks/scale.py                       # the full run
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import platform
import resource
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from _common import command_line

from bayesrec.data.simulate import simulate_ratings, true_mean
from bayesrec.data.splits import holdout
from bayesrec.evaluation import provenance, write_json
from bayesrec.inference import fit, predict
from bayesrec.metrics import rmse
from bayesrec.models import build_model

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "scale.json"
#: name -> number of ratings (MovieLens 100K / 1M / 10M)
SIZES = {"100k": 100_000, "1m": 1_000_209, "10m": 10_000_054}


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def peak_memory_mb() -> float:
    """Peak resident memory of this process so far, in MB (``ru_maxrss`` is KB on Linux)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if sys.platform != "darwin" else peak / 2**20


def simulate(size: str, args):
    start = time.perf_counter()
    ratings, truth = simulate_ratings(args.users, args.items, SIZES[size], scale=None,
                                      seed=args.seed)
    _say(f"[{size}] simulated {len(ratings):,} ratings in {time.perf_counter() - start:.1f} s")
    return ratings, truth


def time_epochs(size: str, ratings, args) -> dict:
    """One epoch (at least ``--min-steps`` steps) of minibatch ADVI of ``ratings``."""
    model = build_model("pmf", ratings, n_factors=args.n_factors)
    per_epoch = len(ratings) / args.batch_size
    steps = max(args.min_steps, math.ceil(per_epoch))
    start = time.perf_counter()
    dt = fit(model, "minibatch_advi", random_seed=args.seed, batch_size=args.batch_size,
             n=steps, draws=10, tol=1e-12)  # tol: never stop early, time every step
    wall = time.perf_counter() - start
    step = dt["advi"].attrs["seconds_per_iteration"]
    row = {"size": size, "n_ratings": len(ratings), "n_users": ratings.n_users,
           "n_items": ratings.n_items, "batch_size": args.batch_size, "steps": steps,
           "steps_per_epoch": per_epoch, "seconds_per_step": step,
           "seconds_per_epoch": step * per_epoch, "fit_wall_seconds": wall,
           "compile_and_draw_seconds": wall - step * (steps - 1)}
    _say(f"[{size}] {steps} steps: {1e3 * step:.2f} ms/step, "
         f"{row['seconds_per_epoch']:.2f} s/epoch")
    return row


def held_out_rmse(dt, test, draws: int, model) -> float:
    """Test RMSE of the posterior mean; ``model`` is the fitted one (a rebuild would copy the data)."""
    pred = predict(dt, pairs=test, model=model, random_seed=0, max_draws=draws)
    return rmse(test.rating, pred["mean"])


def timed_fit(split, truth, args) -> dict:
    """Minibatch ADVI of ``split.train``, stopped after ``--time-limit`` seconds."""
    start = time.perf_counter()
    model = build_model("pmf", split.train, n_factors=args.n_factors)
    # n caps the iterations (PyMC allocates a loss array of n floats): 10**6 is hours here
    dt = fit(model, "minibatch_advi", random_seed=args.seed, batch_size=args.batch_size,
             n=10**6, draws=args.draws, max_seconds=args.time_limit)
    wall = time.perf_counter() - start
    report = dt["advi"].attrs
    out = {"n_train": len(split.train), "n_test": len(split.test),
           "batch_size": args.batch_size, "time_limit_seconds": args.time_limit,
           "wall_seconds": wall, "stop_reason": report["stop_reason"],
           "iterations": int(report["n_iterations"]), "epochs": float(report["epochs"]),
           "seconds_per_step": float(report["seconds_per_iteration"]),
           "lr_decayed_at": [int(i) for i in report["lr_decayed_at"]],
           "test_rmse": held_out_rmse(dt, split.test, args.draws, model),
           "noise_floor_rmse": rmse(split.test.rating,
                                    true_mean(truth, split.test.user, split.test.item)),
           "peak_memory_mb": peak_memory_mb()}
    _say(f"[fit] {out['wall_seconds']:.0f} s wall, {out['epochs']:.1f} epochs "
         f"({out['stop_reason']}), test RMSE {out['test_rmse']:.4f}, "
         f"peak memory {out['peak_memory_mb']:.0f} MB")
    return out


def simulate_and_fit(args) -> dict:
    """:func:`timed_fit` of freshly simulated ratings, 1 % held out (run in a child process)."""
    ratings, truth = simulate(args.fit_size, args)
    split = holdout(ratings, 0.01, seed=args.seed)
    del ratings  # only the split is needed
    return timed_fit(split, truth, args)


def compare_full_batch(ratings, truth, args) -> dict:
    """Held-out RMSE of minibatch and full-batch ADVI on a subsample of ``ratings``."""
    n = min(SIZES[args.compare_size], len(ratings))
    rng = np.random.default_rng(args.seed)
    sample = ratings.subset(np.sort(rng.choice(len(ratings), n, replace=False)))
    split = holdout(sample, 0.1, seed=args.seed)
    model = build_model("pmf", split.train, n_factors=args.n_factors)
    rows = []
    for method, options in (
        ("minibatch_advi", {"batch_size": args.batch_size}),
        ("advi", {"n": args.full_iterations, "learning_rate": 0.02}),
    ):
        _say(f"[compare] {method} on {len(split.train):,} ratings ...")
        start = time.perf_counter()
        dt = fit(model, method, random_seed=args.seed, draws=args.draws, **options)
        seconds = time.perf_counter() - start
        attrs = dt["advi"].attrs
        rows.append({"method": method, "fit_seconds": seconds,
                     "iterations": int(attrs["n_iterations"]),
                     "converged": bool(attrs["converged"]),
                     "test_rmse": held_out_rmse(dt, split.test, args.draws, model)})
        _say(f"[compare] {method}: test RMSE {rows[-1]['test_rmse']:.4f} in {seconds:.0f} s")
    floor = rmse(split.test.rating, true_mean(truth, split.test.user, split.test.item))
    return {"n_ratings": n, "n_train": len(split.train), "n_test": len(split.test),
            "noise_floor_rmse": floor, "methods": rows,
            "rmse_difference": rows[0]["test_rmse"] - rows[1]["test_rmse"]}


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100k,1m,10m",
                        help="sizes to time, comma-separated, of 100k, 1m, 10m")
    parser.add_argument("--fit-size", default=None,
                        help="size of the time-limited fit (default: the largest of --sizes; "
                        "'none' skips it and the comparison)")
    parser.add_argument("--time-limit", type=float, default=1800.0,
                        help="seconds of iterations for the time-limited fit (default 1800)")
    parser.add_argument("--compare-size", default="1m",
                        help="subsample of the fit data for minibatch vs full batch (default 1m; "
                        "'none' skips the comparison)")
    parser.add_argument("--full-iterations", type=int, default=5000,
                        help="iterations of full-batch ADVI in the comparison (default 5000)")
    parser.add_argument("--users", type=int, default=69_878, help="users (default: ML-10M's)")
    parser.add_argument("--items", type=int, default=10_677, help="items (default: ML-10M's)")
    parser.add_argument("--batch-size", type=int, default=50_000,
                        help="ratings per step (default 50,000; --quick: 10,000).  A step "
                        "also updates every user's and item's parameters (1.6M for 80k x 10 "
                        "factors, ~0.1 s on two cores), so small batches waste epochs")
    parser.add_argument("--n-factors", type=int, default=10)
    parser.add_argument("--min-steps", type=int, default=200,
                        help="timed steps at least (default 200; at least one epoch anyway)")
    parser.add_argument("--draws", type=int, default=100, help="draws from each approximation")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true",
                        help="100k and 1m ratings of 6,040 users x 3,706 items; 1m fit for "
                        "120 s; 100k comparison")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    if args.quick:  # ML-1M's users and items, so that the 100k comparison is not all cold users
        args.sizes, args.fit_size, args.time_limit, args.compare_size = "100k,1m", "1m", 120.0, "100k"
        args.users, args.items, args.batch_size = 6_040, 3_706, 10_000
    sizes = [s.strip().lower() for s in args.sizes.split(",") if s.strip()]
    unknown = sorted(set(sizes) - set(SIZES))
    if unknown or not sizes:
        parser.error(f"--sizes takes some of {', '.join(SIZES)}; got {args.sizes!r}")
    args.sizes = sorted(sizes, key=lambda s: SIZES[s])
    args.fit_size = (args.fit_size or args.sizes[-1]).lower()
    if args.fit_size != "none" and args.fit_size not in SIZES:
        parser.error(f"--fit-size takes one of {', '.join(SIZES)} or none")
    if args.compare_size.lower() not in (*SIZES, "none"):
        parser.error(f"--compare-size takes one of {', '.join(SIZES)} or none")
    args.compare_size = args.compare_size.lower()
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    record = {"benchmark": "scale", "command": command_line("scale.py", argv),
              "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
              "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform()},
              **provenance()}

    rows = []
    for size in args.sizes:
        ratings, truth = simulate(size, args)
        rows.append(time_epochs(size, ratings, args))
        del ratings, truth
    table = pd.DataFrame(rows)
    base = table.iloc[0]
    table["epoch_time_ratio"] = table["seconds_per_epoch"] / base["seconds_per_epoch"]
    table["ratings_ratio"] = table["n_ratings"] / base["n_ratings"]
    record["epochs"] = table.to_dict(orient="records")
    print("time per epoch of minibatch ADVI (PMF, K = "
          f"{args.n_factors}, batch {args.batch_size:,})")
    print(table[["size", "n_ratings", "n_users", "n_items", "steps", "seconds_per_step",
                 "seconds_per_epoch", "ratings_ratio", "epoch_time_ratio"]]
          .to_string(index=False, float_format=lambda v: f"{v:.4g}"))

    if args.fit_size != "none":
        # in a fresh process, so that its peak memory is the fit's own
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            record["fit"] = {"size": args.fit_size,
                             **pool.submit(simulate_and_fit, args).result()}
        fit_ = record["fit"]
        print(f"\n{args.fit_size} fit: {fit_['wall_seconds']:.0f} s wall "
              f"({fit_['stop_reason']}, {fit_['epochs']:.1f} epochs), test RMSE "
              f"{fit_['test_rmse']:.4f} (noise floor {fit_['noise_floor_rmse']:.4f}), "
              f"peak memory {fit_['peak_memory_mb']:.0f} MB")
    if args.fit_size != "none" and args.compare_size != "none":
        ratings, truth = simulate(args.fit_size, args)
        record["comparison"] = {"subsample_of": args.fit_size,
                                **compare_full_batch(ratings, truth, args)}
        comp = record["comparison"]
        print(f"\nminibatch vs full-batch ADVI on {comp['n_ratings']:,} ratings "
              f"(noise floor {comp['noise_floor_rmse']:.4f}):")
        print(pd.DataFrame(comp["methods"]).to_string(index=False,
                                                      float_format=lambda v: f"{v:.4f}"))
    record["peak_memory_mb"] = peak_memory_mb()
    write_json(args.output, record)
    _say(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
