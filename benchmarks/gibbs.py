"""Benchmark: BPMF by block-Gibbs inside PyMC against myFM and NUTS on MovieLens 100K.

In one process, on the same folds (u1..u5 by default):

* **myFM** (Bayesian factorisation machine, Gibbs; rank 10, 200 iterations, all kept,
  user and item hyperprior groups, one-hot user and item features): the reference row.
  Skipped with a message when ``myfm`` is not installed.
* **bayesrec BPMF, Gibbs** (``fit(model, "gibbs")`` on ``bpmf(n_factors=10,
  parameterisation="centered", biases=False)``, the paper's BPMF; ``--biases`` adds
  the offset and user/item biases): two chains on the two cores (``--cores``), the
  sampler's defaults otherwise (over-relaxed rows).  Test RMSE of the posterior mean
  (``predict``), time per fold (model build, sampling and prediction), its
  ratio to myFM's, split R-hat and bulk ESS of the training log-likelihood and of
  the per-draw test RMSE.  On u1 also the other model (with/without biases).
* **ESS per second against NUTS on u1** (``fit(bpmf, "nuts")`` via nutpie, the default
  non-centred BPMF with the same ``biases``, same posterior; 2 chains x (500 + 2,500)
  by default, ``--nuts-tune`` / ``--nuts-draws``): ESS of the per-draw test RMSE and the
  median ESS of the predicted mean of 200 test pairs, divided by each fit's wall time.
  ``nuts_u1.converged`` says whether NUTS's split R-hat of the per-draw test RMSE is below
  1.01; the ratio is quoted only when it is (a run of 2 x (150 + 150) draws had R-hat
  1.075 and bulk ESS 21, so the ratio it gave, 894x, measured NUTS's tuning, not its
  mixing).
* **Sweep time** of the Gibbs sampler on simulated data (100k and 1M ratings,
  10/20/50 factors), timed on the steps directly.

Before anything is timed, both systems run once on 5,000 ratings of the first fold
(compilation and cache loading, as ``benchmarks/mmsbm.py`` does; its seconds are
recorded as ``warm_up``), so that no fold pays a one-time cost the others do not.

Prints tables and writes ``benchmarks/results/gibbs.json``.  ``--quick`` runs u1 only
with short chains, no NUTS, and a small scaling grid.  The records: ``gibbs.json``
(u1..u5, ``--no-nuts``) and ``gibbs_nuts_u1.json`` (u1 with NUTS, ``--no-scaling``).

    BAYESREC_DATA=/path/holding/ml-100k python benchmarks/gibbs.py --no-nuts
    BAYESREC_DATA=... python benchmarks/gibbs.py --folds u1 --no-scaling \
        --output benchmarks/results/gibbs_nuts_u1.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr
from _common import RHAT_TARGET, command_line, import_myfm, nuts_stats, one_hot_pairs

from bayesrec.data.movielens import movielens_folds
from bayesrec.data.simulate import simulate_ratings
from bayesrec.errors import InputError
from bayesrec.evaluation import provenance, write_json
from bayesrec.inference import fit, method_defaults, predict
from bayesrec.inference.gibbs import gibbs_steps
from bayesrec.models import build_model

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "gibbs.json"


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------
def rmse(pred, truth) -> float:
    return float(np.sqrt(np.mean((np.asarray(pred) - np.asarray(truth)) ** 2)))


def draw_predictions(dt: xr.DataTree, users: np.ndarray, items: np.ndarray) -> np.ndarray:
    """``mu`` of every posterior draw at the pairs (chain, draw, pair), one draw at a time."""
    post = dt["posterior"].to_dataset()
    U, V = post["user_factors"].values, post["item_factors"].values
    biases = "offset" in post  # BPMF with biases=True: offset and user/item biases
    if biases:
        m, b, c = (post[name].values for name in ("offset", "user_bias", "item_bias"))
    out = np.empty(U.shape[:2] + (len(users),))
    for ch in range(U.shape[0]):
        for d in range(U.shape[1]):
            out[ch, d] = np.einsum("nk,nk->n", U[ch, d, users], V[ch, d, items])
            if biases:
                out[ch, d] += m[ch, d] + b[ch, d, users] + c[ch, d, items]
    return out


def trace_diagnostics(dt: xr.DataTree, test, pair_sample: np.ndarray) -> dict:
    """R-hat / ESS of the log-likelihood and of the per-draw test RMSE; ESS of 200 pairs."""
    mu = draw_predictions(dt, test.user, test.item)
    per_draw_rmse = np.sqrt(((mu - test.rating) ** 2).mean(-1))
    traces = xr.Dataset({"test_rmse": (("chain", "draw"), per_draw_rmse)})
    stats = dt["sample_stats"].to_dataset()
    if "training_log_likelihood" in stats:
        traces["log_likelihood"] = stats["training_log_likelihood"]
    rhat, ess = az.rhat(traces), az.ess(traces, method="bulk")
    pairs = xr.Dataset({"mu": (("chain", "draw", "pair"), mu[:, :, pair_sample])})
    pair_ess = az.ess(pairs, method="bulk")["mu"].values
    out = {f"rhat_{k}": float(rhat[k]) for k in traces.data_vars}
    out |= {f"ess_{k}": float(ess[k]) for k in traces.data_vars}
    out["ess_pairs_median"] = float(np.median(pair_ess))
    out["n_draws"] = int(mu.shape[0] * mu.shape[1])
    return out


# ---------------------------------------------------------------------------------------------
# the rows
# ---------------------------------------------------------------------------------------------
def run_myfm(split, seed: int) -> dict | None:
    myfm = import_myfm("pip install myfm")
    if myfm is None:
        return None
    train, test = split.train, split.test
    n_users, n_items = train.n_users, train.n_items

    def one_hot(r):
        return one_hot_pairs(r, train)

    start = time.perf_counter()
    fm = myfm.MyFMRegressor(rank=10, random_seed=seed)
    fm.fit(one_hot(train), train.rating, n_iter=200, n_kept_samples=200,
           group_shapes=[n_users, n_items])
    pred = fm.predict(one_hot(test))
    seconds = time.perf_counter() - start
    return {"rmse": rmse(train.scale.clip(pred), test.rating), "rmse_unclipped": rmse(pred, test.rating),
            "seconds": seconds}


def run_gibbs(split, seed: int, fit_options: dict, pair_sample: np.ndarray,
              biases: bool) -> tuple[dict, object]:
    start = time.perf_counter()
    model = build_model("bpmf", split.train, n_factors=10, parameterisation="centered",
                        biases=biases)
    dt = fit(model, "gibbs", random_seed=seed, **fit_options)
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    pred = predict(dt, pairs=split.test, model=model, random_seed=seed, keep_draws=False,
                   max_draws=None)
    predict_seconds = time.perf_counter() - start
    row = {"rmse": rmse(pred["mean"].values, split.test.rating), "fit_seconds": fit_seconds,
           "predict_seconds": predict_seconds, "seconds": fit_seconds + predict_seconds}
    row |= trace_diagnostics(dt, split.test, pair_sample)
    return row, dt


def warm_up(split, seed: int, fit_options: dict, biases: bool) -> dict:
    """Run both systems once on 5,000 ratings (compile, load caches); their seconds."""
    idx = np.random.default_rng(seed).choice(split.train.n_ratings, 5000, replace=False)
    small = SimpleNamespace(train=split.train.subset(idx), test=split.test.subset(np.arange(500)))
    start = time.perf_counter()
    run_myfm(small, seed)
    myfm_seconds = time.perf_counter() - start
    start = time.perf_counter()
    run_gibbs(small, seed, {**fit_options, "draws": 20, "tune": 10}, np.arange(200), biases)
    return {"myfm_seconds": myfm_seconds, "gibbs_seconds": time.perf_counter() - start,
            "n_ratings": len(idx)}


def run_nuts(split, seed: int, draws: int, tune: int, pair_sample: np.ndarray,
             biases: bool) -> dict:
    start = time.perf_counter()
    model = build_model("bpmf", split.train, n_factors=10, biases=biases)
    dt = fit(model, "nuts", random_seed=seed, draws=draws, tune=tune, chains=2)
    seconds = time.perf_counter() - start
    pred = predict(dt, pairs=split.test, model=model, random_seed=seed, keep_draws=False,
                   max_draws=None)
    row = {"rmse": rmse(pred["mean"].values, split.test.rating), "fit_seconds": seconds,
           "draws": draws, "tune": tune}
    row |= trace_diagnostics(dt, split.test, pair_sample)
    return row | nuts_stats(dt)


def sweep_time(n_ratings: int, n_factors: int, sweeps: int, seed: int, biases: bool) -> dict:
    """Median seconds per sweep of the Gibbs compound step, timed on the steps themselves."""
    n_users, n_items = (943, 1682) if n_ratings <= 100_000 else (6040, 3706)
    ratings, _ = simulate_ratings(n_users=n_users, n_items=n_items, n_ratings=n_ratings,
                                  n_factors=5, seed=seed)
    model = build_model("bpmf", ratings, n_factors=n_factors, parameterisation="centered",
                        biases=biases)
    steps = gibbs_steps(model)
    for j, step in enumerate(steps):
        step.setup_chain(np.random.default_rng(seed + j), 0, sweeps)
    point = model.initial_point()
    times, parts = [], {type(s).__name__: [] for s in steps}
    for _ in range(sweeps + 1):
        t0 = time.perf_counter()
        for step in steps:
            t = time.perf_counter()
            point, _ = step.step(point)
            parts[type(step).__name__].append(time.perf_counter() - t)
        times.append(time.perf_counter() - t0)
    return {"n_ratings": n_ratings, "n_users": n_users, "n_items": n_items,
            "n_factors": n_factors, "sweeps": sweeps,
            "seconds_per_sweep": float(np.median(times[1:])),
            "parts": {k: float(np.median(v[1:])) for k, v in parts.items()}}


# ---------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------
def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-home", help="folder holding ml-100k/ (default $BAYESREC_DATA)")
    parser.add_argument("--folds", default="u1,u2,u3,u4,u5")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--draws", type=int, default=None, help="Gibbs draws per chain")
    parser.add_argument("--tune", type=int, default=None, help="Gibbs burn-in sweeps per chain")
    parser.add_argument("--cores", type=int, default=2, help="Gibbs: parallel chains")
    parser.add_argument("--biases", action="store_true",
                        help="BPMF with offset and user/item biases (default: the paper's, none)")
    parser.add_argument("--nuts-draws", type=int, default=2500, help="NUTS draws per chain")
    parser.add_argument("--nuts-tune", type=int, default=500, help="NUTS tuning steps per chain")
    parser.add_argument("--no-nuts", action="store_true")
    parser.add_argument("--no-scaling", action="store_true")
    parser.add_argument("--scaling-only", action="store_true",
                        help="rerun only the sweep-time grid and replace it in --output")
    parser.add_argument("--quick", action="store_true", help="u1, short chains, no NUTS")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.scaling_only:
        record = json.loads(args.output.read_text()) if args.output.exists() else {}
        record["scaling"] = scaling_grid(args)
        record["scaling_created_at"] = provenance()["created_at"]
        print_tables(record)
        write_json(args.output, record)
        return 0
    folds = ["u1"] if args.quick else [f.strip() for f in args.folds.split(",") if f.strip()]
    try:
        splits = movielens_folds(folds, data_home=args.data_home)
    except (InputError, FileNotFoundError) as exc:
        print(f"benchmarks/gibbs.py: MovieLens 100K is not available, nothing to do.\n{exc}",
              file=sys.stderr)
        return 0
    gibbs_opts = {"draws": args.draws or (100 if args.quick else 600),
                  "tune": args.tune or (60 if args.quick else 100),
                  "chains": 2, "cores": args.cores}
    rng = np.random.default_rng(args.seed)
    record = {"benchmark": "gibbs",
              "command": command_line("gibbs.py", argv),
              "dataset": "ml-100k", "folds": folds, "seed": args.seed,
              "gibbs_options": gibbs_opts, "sampler_defaults": {
                  k: v for k, v in method_defaults("gibbs").items() if k not in gibbs_opts},
              "model": {"name": "bpmf", "n_factors": 10, "biases": args.biases},
              **provenance(), "per_fold": {}}
    print("warm-up (compilation, caches) ...", file=sys.stderr, flush=True)
    record["warm_up"] = warm_up(splits[0], args.seed, gibbs_opts, args.biases)
    dt_u1 = None
    for name, split in zip(folds, splits, strict=True):
        pair_sample = rng.choice(split.test.n_ratings, 200, replace=False)
        print(f"{name}: myFM ...", file=sys.stderr, flush=True)
        ref = run_myfm(split, args.seed)
        print(f"{name}: bayesrec BPMF Gibbs ...", file=sys.stderr, flush=True)
        row, dt = run_gibbs(split, args.seed, gibbs_opts, pair_sample, args.biases)
        if name == "u1":
            dt_u1, pairs_u1 = dt, pair_sample
        if ref is not None:
            row["time_ratio_to_myfm"] = row["seconds"] / ref["seconds"]
        record["per_fold"][name] = {"myfm": ref, "gibbs": row}
        print(f"  myFM {ref}\n  gibbs {row}", file=sys.stderr, flush=True)

    if not args.quick and "u1" in folds:
        other = not args.biases
        print(f"u1: Gibbs with biases={other} ...", file=sys.stderr, flush=True)
        row, _ = run_gibbs(splits[folds.index("u1")], args.seed, gibbs_opts, pairs_u1, other)
        ref = record["per_fold"]["u1"]["myfm"]
        if ref is not None:
            row["time_ratio_to_myfm"] = row["seconds"] / ref["seconds"]
        record["u1_other_model"] = {"biases": other, **row}

    if not (args.no_nuts or args.quick) and dt_u1 is not None:
        print(f"u1: NUTS (nutpie) {args.nuts_draws} draws ...", file=sys.stderr, flush=True)
        nuts = run_nuts(splits[folds.index("u1")], args.seed, args.nuts_draws, args.nuts_tune,
                        pairs_u1, args.biases)
        gibbs = record["per_fold"]["u1"]["gibbs"]
        ratios = {}
        for key in ("ess_test_rmse", "ess_pairs_median"):
            ratios[key] = (gibbs[key] / gibbs["seconds"]) / (nuts[key] / nuts["fit_seconds"])
        nuts["converged"] = nuts["rhat_test_rmse"] < RHAT_TARGET
        record["nuts_u1"] = nuts
        record["ess_per_second_ratio_gibbs_over_nuts"] = ratios  # quoted only if converged

    if not args.no_scaling:
        record["scaling"] = scaling_grid(args)

    print_tables(record)
    write_json(args.output, record)
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


def scaling_grid(args) -> list[dict]:
    grid = [(100_000, 10)] if args.quick else [
        (100_000, 10), (100_000, 20), (100_000, 50), (1_000_000, 10), (1_000_000, 20),
        (1_000_000, 50)]
    rows = []
    for n, k in grid:
        print(f"sweep time: {n} ratings, {k} factors ...", file=sys.stderr, flush=True)
        rows.append(sweep_time(n, k, 3 if args.quick else 5, args.seed, args.biases))
    return rows


def print_tables(record: dict) -> None:
    rows = []
    for fold, r in record.get("per_fold", {}).items():
        g, m = r["gibbs"], r["myfm"] or {}
        rows.append({"fold": fold, "myfm_rmse": m.get("rmse"), "myfm_s": m.get("seconds"),
                     "gibbs_rmse": g["rmse"], "gibbs_s": g["seconds"],
                     "ratio": g.get("time_ratio_to_myfm"), "rhat_ll": g.get("rhat_log_likelihood"),
                     "rhat_test_rmse": g["rhat_test_rmse"], "ess_ll": g.get("ess_log_likelihood"),
                     "ess_test_rmse": g["ess_test_rmse"]})
    table = pd.DataFrame(rows).set_index("fold") if rows else pd.DataFrame()
    if len(table) > 1:
        table.loc["mean"] = table.mean()
    if rows:
        print(f"MovieLens 100K, BPMF n_factors=10, biases={record['model']['biases']} "
              "(seconds per fold: model build, sampling and prediction;\n"
              "one-time compilation is in the warm-up)")
        print(table.to_string(float_format=lambda x: f"{x:.4f}" if abs(x) < 10 else f"{x:.1f}"))
    if "u1_other_model" in record:
        o = record["u1_other_model"]
        print(f"\nu1, Gibbs on BPMF with biases={o['biases']}: RMSE {o['rmse']:.4f}, "
              f"{o['seconds']:.1f} s (ratio {o.get('time_ratio_to_myfm') or float('nan'):.2f}), "
              f"R-hat ll {o.get('rhat_log_likelihood', float('nan')):.4f}, "
              f"R-hat test RMSE {o['rhat_test_rmse']:.4f}")
    if "nuts_u1" in record:
        n, g = record["nuts_u1"], record["per_fold"]["u1"]["gibbs"]
        print("\nESS per second on u1 (wall time of the fit; NUTS includes its compilation, Gibbs had its in the warm-up)")
        for name, row, secs in (("gibbs", g, g["seconds"]), ("nuts", n, n["fit_seconds"])):
            print(f"  {name:5s} draws {row['n_draws']:5d}  {secs:8.1f} s  RMSE {row['rmse']:.4f}  "
                  f"ESS(test RMSE) {row['ess_test_rmse']:7.1f} ({row['ess_test_rmse'] / secs:.3f}/s)"
                  f"  median ESS(pair mean) {row['ess_pairs_median']:7.1f} "
                  f"({row['ess_pairs_median'] / secs:.3f}/s)")
        print(f"  ratio gibbs / nuts: {record['ess_per_second_ratio_gibbs_over_nuts']}")
    if "scaling" in record:
        print("\nGibbs seconds per sweep (median; simulated ratings)")
        sc = pd.DataFrame([{"ratings": s["n_ratings"], "factors": s["n_factors"],
                            "s/sweep": s["seconds_per_sweep"], **s["parts"]}
                           for s in record["scaling"]])
        print(sc.to_string(index=False, float_format=lambda x: f"{x:.4f}"))


if __name__ == "__main__":
    raise SystemExit(main())
