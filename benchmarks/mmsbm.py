"""Benchmark: the MMSBM on MovieLens 100K folds u1..u5, against the ``mmsbm`` package's EM.

Rows (K = L = 10, the same folds, in the same process, fold by fold):

* ``mmsbm-package EM`` -- the reference: ``mmsbm`` 2.0.1, numba backend, 5 restarts
  (``sampling=5``, averaged predictions), 400 EM iterations;
* ``bayesrec MAP`` -- :func:`bayesrec.models.mmsbm.mmsbm` with its defaults, MAP by EM from
  10 restarts of 400 iterations, predictions averaged over restarts;
* ``bayesrec ADVI`` -- the posterior version: mean-field ADVI started at the MAP, predictions
  averaged over posterior draws (slow, so by default on fold u1 only: ``--posterior-folds``).

Every row is scored by :func:`bayesrec.metrics.score` on all test pairs: accuracy of the most
probable rating, RMSE of the expected rating, MAE of the median.  The package cannot predict
pairs whose item is absent from its training set (it drops them); for those its memberships
are taken uniform, which is what the bayesrec model does (prior mean).  Fit times are wall
seconds of fitting alone; the package's include its worker processes.  Prints per-fold rows,
the mean ± sd over folds, the median time ratio bayesrec / package, and writes
``benchmarks/results/mmsbm.json``.  Needs MovieLens 100K under ``--data-home`` or
``$BAYESREC_DATA`` (exits with status 0 without it) and the ``mmsbm`` package.

    BAYESREC_DATA=/path/holding/ml-100k python benchmarks/mmsbm.py
    python benchmarks/mmsbm.py --folds u1 --quick
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from importlib import metadata
from pathlib import Path


def _load_common():
    """``benchmarks/_common.py`` by its path: this folder is off the import path (below),
    also in the ``mmsbm`` package's worker processes, which re-run this script."""
    spec = importlib.util.spec_from_file_location("_common", Path(__file__).with_name("_common.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


fold_summary = _load_common().fold_summary

# This script is named like the ``mmsbm`` package it compares with: keep its own folder off
# the import path (here and in the package's worker processes, which inherit sys.path).
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from bayesrec.diagnostics.mmsbm import package_probabilities  # noqa: E402
from bayesrec.errors import InputError  # noqa: E402
from bayesrec.evaluation import MOVIELENS_FOLDS, load_dataset, provenance, write_json  # noqa: E402
from bayesrec.inference import fit, predict  # noqa: E402
from bayesrec.metrics import score  # noqa: E402
from bayesrec.models import build_model  # noqa: E402
from bayesrec.models.mmsbm import MMSBM_MAP_RESTARTS  # noqa: E402
from bayesrec.predictions import from_probabilities  # noqa: E402

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "mmsbm.json"
METRICS = ("accuracy", "rmse", "mae", "fit_seconds")
GROUPS = 10


def settings(quick: bool) -> dict:
    """Iterations, restarts and ADVI settings (``--quick``: a short check of the pipeline)."""
    if quick:
        return {"iterations": 60, "package_restarts": 2, "restarts": 2,
                "advi": {"n": 300, "draws": 50, "init": "map"}}
    return {"iterations": 400, "package_restarts": 5, "restarts": MMSBM_MAP_RESTARTS,
            "advi": {"n": 10000, "draws": 300, "init": "map", "learning_rate": 0.01}}


# ---------------------------------------------------------------------------------------------
# the reference: the mmsbm package's EM
# ---------------------------------------------------------------------------------------------
def package_row(train, test, cfg: dict, seed: int) -> tuple[dict, dict]:
    from mmsbm import MMSBM

    frame = pd.DataFrame({"users": train.user_ids, "items": train.item_ids,
                          "ratings": train.rating})
    em = MMSBM(GROUPS, GROUPS, iterations=cfg["iterations"], sampling=cfg["package_restarts"],
               seed=seed, backend="numba")
    em._show_progress = False
    start = time.perf_counter()
    em.fit(frame, silent=True)
    seconds = time.perf_counter() - start
    prob = package_probabilities(em, train, test)
    scores = score(from_probabilities(test.user_ids, test.item_ids, prob, test.scale), test)
    # the package's own scoring, on the test pairs it keeps (known user and item)
    em.predict(pd.DataFrame({"users": test.user_ids, "items": test.item_ids,
                             "ratings": test.rating}))
    own = em.score(silent=True)["stats"]
    extra = {"package_accuracy_on_kept_pairs": own["accuracy"], "n_kept_pairs": len(em.test),
             "training_loglik": [float(r["likelihood"]) for r in em.results]}
    return {**scores, "fit_seconds": seconds}, extra


# ---------------------------------------------------------------------------------------------
# bayesrec
# ---------------------------------------------------------------------------------------------
def bayesrec_row(train, test, method: str, fit_options: dict, seed: int) -> tuple[dict, dict]:
    start = time.perf_counter()
    model = build_model("mmsbm", train, n_user_groups=GROUPS, n_item_groups=GROUPS)
    dt = fit(model, method, random_seed=seed, **fit_options)
    seconds = time.perf_counter() - start
    start = time.perf_counter()
    prediction = predict(dt, pairs=test, model=model, random_seed=seed, keep_draws=False)
    extra = {"predict_seconds": time.perf_counter() - start}
    if method == "map":
        extra["training_loglik"] = dt["optimizer_result"]["log_likelihood"].values.tolist()
    else:
        extra["advi_iterations"] = int(dt["advi"].attrs["n_iterations"])
    return {**score(prediction, test), "fit_seconds": seconds}, extra


def warm_up(splits, cfg: dict) -> None:
    """Compile (or load from cache) both packages' kernels before anything is timed."""
    small = splits[0].train.subset(np.arange(2000))
    package_row(small, small, {**cfg, "iterations": 2, "package_restarts": 2}, 0)
    bayesrec_row(small, small, "map", {"restarts": 2, "maxiter": 2}, 0)


# ---------------------------------------------------------------------------------------------
# table
# ---------------------------------------------------------------------------------------------
def summary_table(rows: list[dict]) -> pd.DataFrame:
    return fold_summary(rows, METRICS, ratio="time_ratio")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-home", help="folder holding ml-100k/ (default $BAYESREC_DATA)")
    parser.add_argument("--folds", default=",".join(MOVIELENS_FOLDS),
                        help="MovieLens folds, comma-separated (default u1,...,u5)")
    parser.add_argument("--posterior-folds", default="u1",
                        help="folds for the (slow) ADVI row: comma-separated, 'all' or 'none'")
    parser.add_argument("--quick", action="store_true", help="few iterations: a short check")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="JSON output file")
    args = parser.parse_args(argv)

    folds = [f.strip() for f in args.folds.split(",") if f.strip()]
    posterior_folds = (folds if args.posterior_folds == "all" else [] if args.posterior_folds
                       == "none" else [f.strip() for f in args.posterior_folds.split(",")])
    try:
        import mmsbm  # noqa: F401
    except ImportError:
        print("benchmarks/mmsbm.py needs the mmsbm package: pip install 'mmsbm[numba]'",
              file=sys.stderr)
        return 1
    try:
        dataset, splits = load_dataset("ml-100k", data_home=args.data_home, folds=folds)
    except (InputError, FileNotFoundError) as exc:
        print(f"benchmarks/mmsbm.py: MovieLens 100K is not available, nothing to do.\n{exc}",
              file=sys.stderr)
        return 0
    cfg = settings(args.quick)
    map_options = {"restarts": cfg["restarts"], "maxiter": cfg["iterations"]}
    warm_up(splits, cfg)

    rows, extras = [], {}
    for split in splits:
        name, train, test = split.name, split.train, split.test
        say = lambda msg, n=name: print(f"[{n}] {msg}", file=sys.stderr, flush=True)  # noqa: E731
        ref, extras[f"package/{name}"] = package_row(train, test, cfg, args.seed)
        rows.append({"row": f"mmsbm-package EM ({cfg['package_restarts']} restarts)", "fold": name,
                     **ref})
        say(f"package   acc {ref['accuracy']:.4f} rmse {ref['rmse']:.4f} "
            f"fit {ref['fit_seconds']:.1f} s")
        ours, extras[f"map/{name}"] = bayesrec_row(train, test, "map", map_options, args.seed)
        ratio = ours["fit_seconds"] / ref["fit_seconds"]
        rows.append({"row": f"bayesrec MAP ({cfg['restarts']} restarts)", "fold": name, **ours,
                     "time_ratio": ratio})
        say(f"MAP       acc {ours['accuracy']:.4f} rmse {ours['rmse']:.4f} "
            f"fit {ours['fit_seconds']:.1f} s (x{ratio:.2f} the package)")
        if name in posterior_folds:
            post, extras[f"advi/{name}"] = bayesrec_row(train, test, "advi", cfg["advi"],
                                                        args.seed)
            ratio = post["fit_seconds"] / ref["fit_seconds"]
            rows.append({"row": "bayesrec ADVI (from MAP)", "fold": name, **post,
                         "time_ratio": ratio})
            say(f"ADVI      acc {post['accuracy']:.4f} rmse {post['rmse']:.4f} "
                f"fit {post['fit_seconds']:.1f} s (x{ratio:.2f} the package)")

    per_fold = pd.DataFrame(rows)
    print(f"MMSBM on MovieLens 100K, folds {', '.join(folds)}, K = L = {GROUPS}"
          f"{' (quick)' if args.quick else ''}")
    shown = per_fold[["row", "fold", *METRICS, "time_ratio"]].copy()
    print(shown.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print("\nmean ± sd over folds; time ratio = bayesrec fit s / package fit s, same fold")
    print(summary_table(rows).to_string(index=False))

    record = {
        "benchmark": "mmsbm",
        "dataset": dataset,
        "folds": folds,
        "posterior_folds": posterior_folds,
        "seed": args.seed,
        "quick": args.quick,
        "settings": cfg,
        **provenance(mmsbm=metadata.version("mmsbm")),
        "rows": json.loads(per_fold.to_json(orient="records")),
        "details": extras,
    }
    write_json(args.output, record)
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
