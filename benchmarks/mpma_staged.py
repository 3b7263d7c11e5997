"""Benchmark: MPMA fitted in stages against PMF MAP, MovieLens 100K folds u1..u5 (issue 22).

Rows, on the same folds (test RMSE of the mean prediction; MAE of the median):

* ``mpma staged`` -- ``fit(build_model("mpma", train, n_factors=10, n_user_clusters=2,
  n_item_clusters=2), "staged")`` with the staged method's default options (the recipe of
  ``benchmarks/README.md``, chosen on validation splits, never on these test folds);
* ``pmf map (defaults)`` -- ``fit(build_model("pmf", train), "map")``, the library's PMF MAP
  (factor prior sd 0.3, run to convergence: it overfits);
* ``pmf map (point_estimate)`` -- the same with the preset the library recommends for a
  MAP (``preset="point_estimate"``: factor prior sd 0.2);
* ``global component alone`` -- the staged fit of MPMA with only its global component
  (``components=["global"]``): the biased MF by ridge ALS with the global component's
  penalties (factors 15, biases 5, in units of the noise variance), i.e. PMF's MAP at the
  penalty MPMA's global component uses;
* ``pmf map (global's penalty)`` -- the library's PMF MAP (L-BFGS, noise learned) with its
  priors set to that penalty: factor sd ``s / sqrt(15)`` and bias sd ``s / sqrt(5)``, ``s``
  the training RMSE of the global component alone on the same fold (slow: by default on
  fold u1 only, ``--lbfgs-folds``).

The mixture's own contribution is ``mpma staged`` against the equally tuned PMF rows.
Prints per-fold rows and the mean ± sd over folds, and writes
``benchmarks/results/mpma_staged.json``.  Needs MovieLens 100K under ``--data-home`` or
``$BAYESREC_DATA`` (exits with status 0 without it).

    BAYESREC_DATA=/path/holding/ml-100k python benchmarks/mpma_staged.py
    python benchmarks/mpma_staged.py --folds u1 --output /tmp/mpma_staged_u1.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _common import fold_summary, movielens_or_none

from bayesrec.evaluation import MOVIELENS_FOLDS, provenance, write_json
from bayesrec.inference import fit, method_defaults, predict
from bayesrec.metrics import score
from bayesrec.models import build_model

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "mpma_staged.json"
METRICS = ("rmse", "mae", "coverage_90", "fit_seconds")
MPMA_OPTIONS = {"n_factors": 10, "n_user_clusters": 2, "n_item_clusters": 2}
TARGET_GAIN = 0.008  # staged must beat PMF MAP (defaults) by this much on the 5-fold mean


def _scored(dt, test, seed: int, seconds: float) -> dict:
    pred = predict(dt, pairs=test, random_seed=seed, keep_draws=False)
    return {**score(pred, test), "fit_seconds": seconds}


def _timed_fit(model, method: str, seed: int, **options):
    start = time.perf_counter()
    dt = fit(model, method, random_seed=seed, progressbar=False, **options)
    return dt, time.perf_counter() - start


def fold_rows(train, test, seed: int, say, lbfgs: bool) -> tuple[list[dict], dict]:
    """The rows of one fold, and details (weights, sigmas, penalties)."""
    rows, details = [], {}
    staged_opts = method_defaults("staged")

    model = build_model("mpma", train, **MPMA_OPTIONS)
    dt, seconds = _timed_fit(model, "staged", seed)
    rows.append({"row": "mpma staged", **_scored(dt, test, seed, seconds)})
    report = dt["staged"].to_dataset()
    details["mpma_staged"] = {k: report[k].values.tolist() for k in
                              ("weights", "sigma", "in_sample_weights", "out_of_fold_rmse",
                               "training_rmse", "em_iterations", "em_converged")}
    say(f"mpma staged        rmse {rows[-1]['rmse']:.4f}  weights "
        f"{np.round(report['weights'].values, 3)}  fit {seconds:.1f} s")

    dt, seconds = _timed_fit(build_model("pmf", train), "map", seed)
    rows.append({"row": "pmf map (defaults)", **_scored(dt, test, seed, seconds)})
    say(f"pmf map (defaults) rmse {rows[-1]['rmse']:.4f}  fit {seconds:.1f} s")

    dt, seconds = _timed_fit(build_model("pmf", train, preset="point_estimate"), "map", seed)
    rows.append({"row": "pmf map (point_estimate)", **_scored(dt, test, seed, seconds)})
    say(f"pmf map (point_est) rmse {rows[-1]['rmse']:.4f}  fit {seconds:.1f} s")

    glob = build_model("mpma", train, n_factors=MPMA_OPTIONS["n_factors"],
                       components=["global"])
    dt, seconds = _timed_fit(glob, "staged", seed)
    rows.append({"row": "global component alone", **_scored(dt, test, seed, seconds)})
    s = float(dt["staged"]["training_rmse"].values[0])
    say(f"global alone       rmse {rows[-1]['rmse']:.4f}  fit {seconds:.1f} s")

    priors = {"user_factor_sd": s / np.sqrt(staged_opts["factor_penalty"]),
              "item_factor_sd": s / np.sqrt(staged_opts["factor_penalty"]),
              "bias_sd": s / np.sqrt(staged_opts["bias_penalty"])}
    details["pmf_priors_at_global_penalty"] = priors
    if not lbfgs:
        return rows, details
    dt, seconds = _timed_fit(build_model("pmf", train, priors=priors), "map", seed)
    rows.append({"row": "pmf map (global's penalty)", **_scored(dt, test, seed, seconds)})
    say(f"pmf map (global's) rmse {rows[-1]['rmse']:.4f}  fit {seconds:.1f} s")
    return rows, details


def summary(rows: list[dict]) -> pd.DataFrame:
    return fold_summary(rows, METRICS)


def verdict(rows: list[dict]) -> dict:
    """The issue's targets on the mean over the folds run."""
    mean = pd.DataFrame(rows).groupby("row")["rmse"].mean()
    staged = float(mean["mpma staged"])
    gain_default = float(mean["pmf map (defaults)"]) - staged
    gain_preset = float(mean["pmf map (point_estimate)"]) - staged
    tuned = float(mean["global component alone"])
    return {"staged_rmse": staged, "gain_over_pmf_map_defaults": gain_default,
            "gain_over_pmf_map_point_estimate": gain_preset,
            "target_gain": TARGET_GAIN, "meets_gain_target": gain_default >= TARGET_GAIN,
            "meets_gain_target_against_point_estimate": gain_preset >= TARGET_GAIN,
            "gain_over_equally_tuned_pmf": tuned - staged,
            "beats_equally_tuned_pmf": staged < tuned}


def _record(args, dataset, folds, rows, details, *, complete: bool) -> dict:
    per_fold = pd.DataFrame(rows)[["row", "fold", *METRICS]]
    return {"benchmark": "mpma_staged", "dataset": dataset, "folds": folds,
            "complete": complete, "seed": args.seed, "mpma_options": MPMA_OPTIONS,
            "staged_options": method_defaults("staged"), **provenance(),
            "rows": json.loads(per_fold.to_json(orient="records")),
            "verdict": verdict(rows), "details": details}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-home", help="folder holding ml-100k/ (default $BAYESREC_DATA)")
    parser.add_argument("--folds", default=",".join(MOVIELENS_FOLDS),
                        help="MovieLens folds, comma-separated (default u1,...,u5)")
    parser.add_argument("--lbfgs-folds", default="u1",
                        help="folds for the slow L-BFGS PMF row at the global's penalty")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="JSON output file")
    args = parser.parse_args(argv)
    folds = [f.strip() for f in args.folds.split(",") if f.strip()]
    loaded = movielens_or_none("mpma_staged.py", args.data_home, folds)
    if loaded is None:
        return 0
    dataset, splits = loaded
    lbfgs_folds = {f.strip() for f in args.lbfgs_folds.split(",") if f.strip()}
    rows, details = [], {}
    for split in splits:
        say = lambda msg, n=split.name: print(f"[{n}] {msg}", file=sys.stderr, flush=True)  # noqa: E731
        fold, details[split.name] = fold_rows(split.train, split.test, args.seed, say,
                                              split.name in lbfgs_folds)
        rows += [{**r, "fold": split.name} for r in fold]
        write_json(args.output, _record(args, dataset, folds, rows, details, complete=False))
    per_fold = pd.DataFrame(rows)[["row", "fold", *METRICS]]
    print(f"MPMA staged against PMF MAP on MovieLens 100K, folds {', '.join(folds)}")
    print(per_fold.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print("\nmean ± sd over folds")
    print(summary(rows).to_string(index=False))
    result = verdict(rows)
    print(f"\nstaged - PMF MAP (defaults): {-result['gain_over_pmf_map_defaults']:+.4f} "
          f"(target <= -{TARGET_GAIN}); staged - equally tuned PMF: "
          f"{-result['gain_over_equally_tuned_pmf']:+.4f}")
    write_json(args.output, _record(args, dataset, folds, rows, details, complete=True))
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
