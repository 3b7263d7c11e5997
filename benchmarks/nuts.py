"""Benchmark: NUTS (nutpie) on MovieLens 100K u1, with the convergence of what it quotes.

For each model (``--models``, default ``pmf``; ``bpmf`` is the default non-centred BPMF
with biases), in one process, on fold u1 (``--fold``): ``fit(model, "nuts")`` with the
registry's model options (``n_factors=10``) and ``--draws`` / ``--tune`` per chain
(default 500 / 500, as ``benchmarks/pmf_bpmf.py``'s NUTS rows), two chains on the two
cores.  Per model the record holds:

* ``fit_seconds`` (model build and sampling), ``predict_seconds``;
* the test RMSE and 90 % interval coverage of ``predict`` (all draws);
* split R-hat and bulk ESS of the per-draw test RMSE (``rmse_trace``, the quantity the
  RMSE is a mean over), and the median bulk ESS of ``mu`` at 200 sampled test pairs;
* mean tree depth, divergences, and ``converged``: R-hat of the test RMSE < 1.01.

A figure is quoted (README) only from a row with ``converged`` true.  BPMF by NUTS
beside BPMF by Gibbs (ESS per second) is ``benchmarks/gibbs.py``'s NUTS section.

    BAYESREC_DATA=/path/holding/ml-100k python benchmarks/nuts.py
    python benchmarks/nuts.py --models pmf,bpmf --draws 1000
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import arviz as az
import numpy as np
from _common import RHAT_TARGET, command_line, movielens_or_none, nuts_stats

from bayesrec.diagnostics import rmse_trace
from bayesrec.evaluation import provenance, write_json
from bayesrec.inference import fit, predict
from bayesrec.inference.draws import evaluate_draws
from bayesrec.metrics import score
from bayesrec.models import build_model

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "nuts.json"
OPTIONS = {"n_factors": 10}


def run(name: str, split, *, draws: int, tune: int, seed: int) -> dict:
    start = time.perf_counter()
    model = build_model(name, split.train, **OPTIONS)
    dt = fit(model, "nuts", random_seed=seed, draws=draws, tune=tune, chains=2)
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    pred = predict(dt, pairs=split.test, model=model, random_seed=seed, keep_draws=False,
                   max_draws=None)
    predict_seconds = time.perf_counter() - start
    scores = score(pred, split.test)
    trace = rmse_trace(dt, test=split.test, model=model)["rmse"].sel(split="test")
    trace = trace.to_dataset(name="test_rmse")
    rhat = float(az.rhat(trace)["test_rmse"])
    ess = float(az.ess(trace, method="bulk")["test_rmse"])
    picks = np.random.default_rng(seed).choice(len(split.test), 200, replace=False)
    sample = split.test.subset(picks)
    mu = evaluate_draws(dt, sample.user_ids, sample.item_ids, model=model)["mu"]
    pair_ess = az.ess(mu.to_dataset(name="mu"), method="bulk")["mu"].values
    return {
        "model": name, "options": OPTIONS, "draws": draws, "tune": tune,
        "chains": 2, "fit_seconds": fit_seconds, "predict_seconds": predict_seconds,
        "rmse": scores["rmse"], "coverage_90": scores["coverage_90"],
        "rhat_test_rmse": rhat, "ess_test_rmse": ess,
        "ess_pairs_median": float(np.median(pair_ess)),
        **nuts_stats(dt), "converged": rhat < RHAT_TARGET,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-home", help="folder holding ml-100k/ (default $BAYESREC_DATA)")
    parser.add_argument("--models", default="pmf", help="comma-separated (pmf, bpmf)")
    parser.add_argument("--fold", default="u1")
    parser.add_argument("--draws", type=int, default=500, help="draws per chain")
    parser.add_argument("--tune", type=int, default=500, help="tuning steps per chain")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    loaded = movielens_or_none("nuts.py", args.data_home, [args.fold])
    if loaded is None:
        return 0
    _, splits = loaded
    split = splits[0]
    record = {"benchmark": "nuts",
              "command": command_line("nuts.py", argv),
              "dataset": f"ml-100k ({args.fold})", "seed": args.seed,
              "rhat_target": RHAT_TARGET, **provenance(), "rows": []}
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        print(f"{name}: NUTS, 2 chains x ({args.tune} + {args.draws}) ...", file=sys.stderr,
              flush=True)
        row = run(name, split, draws=args.draws, tune=args.tune, seed=args.seed)
        record["rows"].append(row)
        print(f"  {row}", file=sys.stderr, flush=True)
        write_json(args.output, record)  # after every row
    print(f"{'model':6} {'draws':>11} {'fit s':>7} {'RMSE':>7} {'R-hat':>6} {'ESS':>6} "
          f"{'converged':>9}")
    for r in record["rows"]:
        print(f"{r['model']:6} {r['chains']}x{r['tune']}+{r['draws']:<5} {r['fit_seconds']:7.0f} "
              f"{r['rmse']:7.4f} {r['rhat_test_rmse']:6.3f} {r['ess_test_rmse']:6.0f} "
              f"{str(r['converged']):>9}")
    write_json(args.output, record)
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
