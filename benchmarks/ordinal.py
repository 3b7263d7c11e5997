"""Benchmark: BPMF with the ordered-probit likelihood by block Gibbs against myFM's ordered probit.

On MovieLens 100K folds u1..u5 (by default), in one process:

* **bayesrec BPMF ordered probit, Gibbs**: ``bpmf(n_factors=10,
  parameterisation="centered", likelihood="ordered_probit")`` fitted with
  ``fit(model, "gibbs")`` (two chains on two cores, ``--tune`` + ``--draws`` sweeps each,
  the sampler's defaults otherwise); level probabilities ``prob`` from ``predict``.
* **myFM ordered probit** (``myfm.MyFMOrderedProbit``, rank 10, one-hot user and item
  features with one hyperprior group each, as many sweeps as one Gibbs chain,
  ``n_kept_samples = --draws``); level probabilities from ``predict_proba``.  Skipped
  with a message when ``myfm`` is not installed (``pip install .[bench]``).

Each row: accuracy (the most probable level against the true one), LPD (mean log
probability of the true level, nats), RMSE of the expected rating ``sum_k p_k
level_k``, and seconds per fold (model build + fit + prediction; the Gibbs row's
ratio to myFM's in the same run).  Both systems first run once on 5,000 ratings
(compilation, caches; ``warm_up``), as ``benchmarks/gibbs.py`` does.

``--all-models`` adds, for every registered model with its default method and
default options (Gaussian likelihoods for PMF / BPMF), the mean LPD, accuracy and RMSE
over the folds from :func:`bayesrec.evaluation.evaluate` (every model's prediction
carries level probabilities ``prob`` on a discrete scale: Gaussian models' are the
predictive mass of each level's interval).

Targets (issue 20, 5-fold means): accuracy >= 0.46, LPD >= -1.22, RMSE <= 0.897,
Gibbs time per fold <= 2 x myFM's.  Prints a table and writes
``benchmarks/results/ordinal.json``.

    BAYESREC_DATA=/path/holding/ml-100k python benchmarks/ordinal.py [--folds u1]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
from _common import import_myfm, one_hot_pairs

from bayesrec.data.movielens import movielens_folds
from bayesrec.errors import InputError
from bayesrec.evaluation import evaluate, provenance, write_json
from bayesrec.inference import fit, method_defaults, predict
from bayesrec.models import build_model, list_models

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "ordinal.json"
TARGETS = {"accuracy": (">=", 0.46), "lpd": (">=", -1.22), "rmse": ("<=", 0.897),
           "time_ratio_to_myfm": ("<=", 2.0)}


def level_scores(prob: np.ndarray, test) -> dict:
    """Accuracy, LPD and expected-rating RMSE of level probabilities ``(pairs, levels)``."""
    levels = np.asarray(test.scale.levels, dtype=float)
    codes = test.level_codes
    picked = prob[np.arange(len(codes)), codes]
    expected = prob @ levels
    return {"accuracy": float(np.mean(prob.argmax(axis=1) == codes)),
            "lpd": float(np.mean(np.log(np.maximum(picked, 1e-300)))),
            "rmse": float(np.sqrt(np.mean((expected - np.asarray(test.rating)) ** 2)))}


def run_myfm(split, seed: int, n_iter: int, n_kept: int) -> dict | None:
    myfm = import_myfm("pip install myfm, or .[bench]")
    if myfm is None:
        return None
    train, test = split.train, split.test
    n_users, n_items = train.n_users, train.n_items

    def one_hot(r):
        return one_hot_pairs(r, train)

    start = time.perf_counter()
    fm = myfm.MyFMOrderedProbit(rank=10, random_seed=seed)
    fm.fit(one_hot(train), train.level_codes, n_iter=n_iter, n_kept_samples=n_kept,
           group_shapes=[n_users, n_items])
    prob = fm.predict_proba(one_hot(test))
    seconds = time.perf_counter() - start
    return {**level_scores(prob, test), "seconds": seconds, "n_iter": n_iter,
            "n_kept_samples": n_kept}


def run_gibbs(split, seed: int, fit_options: dict) -> dict:
    start = time.perf_counter()
    model = build_model("bpmf", split.train, n_factors=10, parameterisation="centered",
                        likelihood="ordered_probit")
    dt = fit(model, "gibbs", random_seed=seed, **fit_options)
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    pred = predict(dt, pairs=split.test, model=model, random_seed=seed, max_draws=None)
    predict_seconds = time.perf_counter() - start
    prob = pred["prob"].transpose("pair", "rating_level").values
    stats = dt["sample_stats"]
    return {**level_scores(prob, split.test), "fit_seconds": fit_seconds,
            "predict_seconds": predict_seconds, "seconds": fit_seconds + predict_seconds,
            "cutpoint_acceptance": float(stats["cutpoint_acceptance"].mean()),
            "cutpoints": dt["posterior"]["cutpoints"].mean(("chain", "draw")).values.tolist()}


def warm_up(split, seed: int, fit_options: dict) -> dict:
    """Run both systems once on 5,000 ratings (compile, load caches); their seconds."""
    idx = np.random.default_rng(seed).choice(split.train.n_ratings, 5000, replace=False)
    small = SimpleNamespace(train=split.train.subset(idx), test=split.test.subset(np.arange(500)))
    start = time.perf_counter()
    run_myfm(small, seed, 20, 10)
    myfm_seconds = time.perf_counter() - start
    start = time.perf_counter()
    run_gibbs(small, seed, {**fit_options, "draws": 20, "tune": 10})
    return {"myfm_seconds": myfm_seconds, "gibbs_seconds": time.perf_counter() - start,
            "n_ratings": len(idx)}


def all_models(folds: list[str], splits, seed: int) -> dict:
    """LPD, accuracy and RMSE of every registered model (default method) over the folds."""
    out = {}
    for spec in list_models():
        print(f"all models: {spec.name} ...", file=sys.stderr, flush=True)
        try:
            result = evaluate(spec.name, splits, seed=seed, dataset="ml-100k")
        except Exception as exc:  # noqa: BLE001 (a benchmark records what failed and goes on)
            out[spec.name] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        summary = result.summary()["mean"]
        out[spec.name] = {"method": result.method, "folds": folds,
                          **{k: float(summary[k]) for k in ("lpd", "accuracy", "rmse",
                                                             "fit_seconds")}}
    return out


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-home", help="folder holding ml-100k/ (default $BAYESREC_DATA)")
    parser.add_argument("--folds", default="u1,u2,u3,u4,u5", help="comma-separated folds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--draws", type=int, default=400, help="kept sweeps per Gibbs chain")
    parser.add_argument("--tune", type=int, default=100, help="burn-in sweeps per chain")
    parser.add_argument("--cores", type=int, default=2, help="Gibbs chains run in parallel")
    parser.add_argument("--all-models", action="store_true",
                        help="add LPD and accuracy of every registered model (evaluate)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="JSON output file")
    return parser.parse_args(argv)


def summarise(per_fold: dict) -> dict:
    """5-fold (or fewer) means of each row and the targets met."""
    means = {}
    for system in ("gibbs", "myfm"):
        rows = [r[system] for r in per_fold.values() if r.get(system)]
        if rows:
            keys = ("accuracy", "lpd", "rmse", "seconds") + (
                ("time_ratio_to_myfm",) if "time_ratio_to_myfm" in rows[0] else ())
            means[system] = {k: float(np.mean([r[k] for r in rows])) for k in keys}
    gibbs = means.get("gibbs", {})
    means["targets_met"] = {
        k: (gibbs[k] >= v if op == ">=" else gibbs[k] <= v)
        for k, (op, v) in TARGETS.items() if k in gibbs}
    return means


def print_tables(record: dict) -> None:
    rows = []
    for fold, r in record["per_fold"].items():
        for system in ("gibbs", "myfm"):
            if r.get(system):
                rows.append({"fold": fold, "system": system,
                             **{k: r[system].get(k) for k in ("accuracy", "lpd", "rmse",
                                                               "seconds",
                                                               "time_ratio_to_myfm")}})
    for system, m in record["mean"].items():
        if system != "targets_met":
            rows.append({"fold": "mean", "system": system, **m})
    print(f"Ordered probit on MovieLens 100K ({', '.join(record['folds'])}), rank 10, "
          f"{record['gibbs_options']['tune']} + {record['gibbs_options']['draws']} sweeps")
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda x: f"{x:.4f}"))
    print("targets (5-fold means):", {k: f"{op} {v}" for k, (op, v) in TARGETS.items()},
          "met:", record["mean"]["targets_met"])
    if "all_models" in record:
        print(pd.DataFrame(record["all_models"]).T.to_string())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    folds = [f.strip() for f in args.folds.split(",") if f.strip()]
    try:
        splits = movielens_folds(folds, data_home=args.data_home)
    except (InputError, FileNotFoundError) as exc:
        print(f"benchmarks/ordinal.py: MovieLens 100K is not available, nothing to do.\n{exc}",
              file=sys.stderr)
        return 0
    gibbs_opts = {"draws": args.draws, "tune": args.tune, "chains": 2, "cores": args.cores}
    record = {"benchmark": "ordinal", "dataset": "ml-100k", "folds": folds, "seed": args.seed,
              "gibbs_options": gibbs_opts, "sampler_defaults": {
                  k: v for k, v in method_defaults("gibbs").items() if k not in gibbs_opts},
              "model": {"name": "bpmf", "n_factors": 10, "parameterisation": "centered",
                        "likelihood": "ordered_probit"},
              "myfm": {"class": "MyFMOrderedProbit", "rank": 10,
                       "n_iter": args.tune + args.draws, "n_kept_samples": args.draws},
              "targets": {k: f"{op} {v}" for k, (op, v) in TARGETS.items()},
              **provenance(), "per_fold": {}}
    print("warm-up (compilation, caches) ...", file=sys.stderr, flush=True)
    record["warm_up"] = warm_up(splits[0], args.seed, gibbs_opts)
    for name, split in zip(folds, splits, strict=True):
        print(f"{name}: myFM ordered probit ...", file=sys.stderr, flush=True)
        ref = run_myfm(split, args.seed, args.tune + args.draws, args.draws)
        print(f"{name}: bayesrec BPMF ordered probit, Gibbs ...", file=sys.stderr, flush=True)
        row = run_gibbs(split, args.seed, gibbs_opts)
        if ref is not None:
            row["time_ratio_to_myfm"] = row["seconds"] / ref["seconds"]
        record["per_fold"][name] = {"gibbs": row, "myfm": ref}
        print(f"  myFM {ref}\n  gibbs {row}", file=sys.stderr, flush=True)
        record["mean"] = summarise(record["per_fold"])
        write_json(args.output, record)  # after every fold: a partial run keeps its folds
    if args.all_models:
        record["all_models"] = all_models(folds, splits, args.seed)
    record["mean"] = summarise(record["per_fold"])
    print_tables(record)
    write_json(args.output, record)
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
