"""Benchmark: peak memory of one fold's fit and prediction, per registered model.

Each row runs in a fresh Python process what ``bayesrec evaluate --model NAME --dataset
ml-100k --folds u1`` does for its fold: load MovieLens 100K fold u1, make the model's
recommender with its default method and settings (``make_recommender``), fit it on the
80,000 training ratings, predict the 20,000 test pairs (``predict_ratings``: what
evaluation scores, no per-pair draws kept) and score them.  The process reports its
peak resident set size (``resource.getrusage(RUSAGE_SELF).ru_maxrss``, the figure
``RUSAGE_CHILDREN`` gives the parent for it) after each phase: imports, data, fit,
prediction; with ``/usr/bin/time`` present the parent also reads the same process's
maximum RSS from ``/usr/bin/time -f %M`` as a check.  ``--cli`` adds, per model, the
peak of the command ``bayesrec evaluate`` itself under ``/usr/bin/time`` (how the
figures of the memory issue were measured).

``--large N`` adds a row that needs no data: PMF with its fast settings on N simulated
ratings (a 5-fold split's first fold: 80 % to fit, 20 % to predict), the case of a
2,000,000-row CSV through ``bayesrec evaluate --fast``.

Prints a table and writes ``benchmarks/results/memory.json`` (layout in
``benchmarks/README.md``).  Without MovieLens 100K (``--data-home`` or
``$BAYESREC_DATA``) the MovieLens rows are skipped with a message.

    BAYESREC_DATA=/path/holding/ml-100k python benchmarks/memory.py
    python benchmarks/memory.py --models pmf,bpmf --cli
    python benchmarks/memory.py --models none --large 2000000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "memory.json"
TIME = "/usr/bin/time"
TARGET_MB = 500


def _peak_mb() -> float:
    """Peak resident set size of this process so far, in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------------------------------------
# the worker: one row in a fresh process
# ---------------------------------------------------------------------------------------------
def worker(spec: dict) -> dict:
    """Fit and predict one fold as ``bayesrec evaluate`` does; peaks after each phase."""
    peaks = {"imports": None, "data": None, "fit": None, "predict": None}
    from bayesrec.inference.predict import BLOCK_ELEMENTS
    from bayesrec.metrics import score
    from bayesrec.models import get_spec
    from bayesrec.recommenders import make_recommender

    peaks["imports"] = _peak_mb()
    if spec["data"] == "ml-100k":
        from bayesrec.data.movielens import load_movielens_fold

        split = load_movielens_fold(spec["fold"], data_home=spec.get("data_home"))
    else:
        from bayesrec.data.simulate import simulate_ratings
        from bayesrec.data.splits import kfold

        n = spec["n_ratings"]
        ratings, _ = simulate_ratings(n_users=max(943, n // 100), n_items=max(1682, n // 400),
                                      n_ratings=n, seed=0)
        split = kfold(ratings, k=5, seed=0)[0]
        del ratings
    peaks["data"] = _peak_mb()
    model_spec = get_spec(spec["model"])
    method = model_spec.resolve_method(spec.get("method"), fast=spec["fast"])
    recommender = make_recommender(spec["model"], method, fast=spec["fast"], random_seed=0,
                                   progressbar=False)
    start = time.perf_counter()
    recommender.fit(split.train)
    fit_seconds = time.perf_counter() - start
    peaks["fit"] = _peak_mb()
    start = time.perf_counter()
    prediction = recommender.predict_ratings(split.test)
    predict_seconds = time.perf_counter() - start
    peaks["predict"] = _peak_mb()
    scores = score(prediction, split.test)
    settings = {"method": method, "fast": spec["fast"]}
    if model_spec.kind != "baseline":
        settings["options"] = recommender.options
        settings["fit_options"] = recommender.fit_options
        settings["predict"] = {"max_draws": 1000, "point_draws": 200, "keep_draws": False,
                               "block_elements": BLOCK_ELEMENTS}
        settings["posterior_mb"] = round(sum(
            v.nbytes for v in recommender.fit_["posterior"].to_dataset().data_vars.values())
            / 2**20, 1)
    return {"peak_mb": _peak_mb(), "phase_peak_mb": peaks, "settings": settings,
            "n_train": len(split.train), "n_test": len(split.test),
            "fit_seconds": round(fit_seconds, 2), "predict_seconds": round(predict_seconds, 2),
            "rmse": scores["rmse"], "coverage_90": scores["coverage_90"],
            "prediction_mb": round(prediction.nbytes / 2**20, 2)}


# ---------------------------------------------------------------------------------------------
# the parent: one fresh process per row
# ---------------------------------------------------------------------------------------------
def _run_worker(spec: dict) -> dict:
    command = [sys.executable, __file__, "--worker", json.dumps(spec)]
    timed = Path(tempfile.mkstemp(suffix=".time")[1])
    if shutil.which(TIME):
        command = [TIME, "-f", "%M", "-o", str(timed), *command]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"row {spec} failed:\n{done.stderr[-3000:]}")
    row = json.loads(done.stdout.strip().splitlines()[-1])
    text = timed.read_text().strip() if timed.exists() else ""
    timed.unlink(missing_ok=True)
    row["time_max_rss_mb"] = round(int(text.splitlines()[-1]) / 1024, 1) if text else None
    row["children_max_rss_mb"] = round(
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)  # max so far
    return row


def _run_cli(model: str, method: str, data_home: str | None) -> float | None:
    """Peak RSS (MB) of ``bayesrec evaluate`` on fold u1, from ``/usr/bin/time -f %M``."""
    exe = shutil.which("bayesrec") or str(Path(sys.executable).with_name("bayesrec"))
    if not shutil.which(TIME) or not Path(exe).exists():
        return None
    command = [TIME, "-f", "%M", exe, "evaluate", "--model", model, "--method", method,
               "--dataset", "ml-100k", "--folds", "u1", "--seed", "0"]
    if data_home:
        command += ["--data-home", data_home]
    done = subprocess.run(command, capture_output=True, text=True, check=False,
                          env={**os.environ, "BAYESREC_PROGRESS": "0"})
    if done.returncode != 0:
        raise RuntimeError(f"bayesrec evaluate --model {model} failed:\n{done.stderr[-3000:]}")
    return round(int(done.stderr.strip().splitlines()[-1]) / 1024, 1)


def _table(rows: list[dict]) -> str:
    lines = [f"{'row':<28} {'peak MB':>8} {'(time)':>8} {'imports':>8} {'data':>6} {'fit':>6} "
             f"{'predict':>8} {'posterior':>9} {'fit s':>7} {'pred s':>7} {'rmse':>7} "
             f"{'cli MB':>7}"]
    for r in rows:
        p = r["phase_peak_mb"]
        lines.append(
            f"{r['row']:<28} {r['peak_mb']:8.0f} {r['time_max_rss_mb'] or float('nan'):8.0f} "
            f"{p['imports']:8.0f} {p['data']:6.0f} {p['fit']:6.0f} {p['predict']:8.0f} "
            f"{r['settings'].get('posterior_mb', 0):9.1f} {r['fit_seconds']:7.1f} "
            f"{r['predict_seconds']:7.1f} {r['rmse']:7.4f} "
            f"{r.get('cli_max_rss_mb') or float('nan'):7.0f}")
    return "\n".join(lines)


def _write(args, argv, rows: list[dict]) -> None:
    from _common import command_line

    from bayesrec.evaluation import provenance, write_json

    write_json(args.output, {"benchmark": "memory", "target_mb": TARGET_MB,
                             "measure": "getrusage(RUSAGE_SELF).ru_maxrss of a fresh worker "
                                        "process per row; time_max_rss_mb: /usr/bin/time -f %M",
                             "command": command_line("memory.py", argv),
                             **provenance(), "rows": rows})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--data-home", help="folder holding ml-100k/ (default $BAYESREC_DATA)")
    parser.add_argument("--models", default="all",
                        help="registered models, comma-separated ('all', or 'none')")
    parser.add_argument("--cli", action="store_true",
                        help="also measure `bayesrec evaluate` itself under /usr/bin/time")
    parser.add_argument("--large", type=int, default=0,
                        help="add PMF --fast on this many simulated ratings (e.g. 2000000)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="JSON output file")
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0

    from bayesrec.errors import InputError
    from bayesrec.models import get_spec, list_models

    names = ([s.name for s in list_models()] if args.models == "all" else
             [] if args.models == "none" else [m.strip() for m in args.models.split(",")])
    specs = []
    if names:
        try:
            from bayesrec.data.movielens import load_movielens_fold

            load_movielens_fold("u1", data_home=args.data_home)
        except InputError as exc:
            print(f"benchmarks/memory.py: MovieLens 100K is not available, skipping its rows."
                  f"\n{exc}", file=sys.stderr)
            names = []
    for name in names:
        specs.append({"row": f"{name}/{get_spec(name).resolve_method()} u1", "model": name,
                      "method": None, "fast": False, "data": "ml-100k", "fold": "u1",
                      "data_home": args.data_home})
    if args.large:
        specs.append({"row": f"pmf --fast {args.large:,} sim.", "model": "pmf", "method": None,
                      "fast": True, "data": "simulated", "n_ratings": args.large})
    rows = []
    for spec in specs:
        print(f"{spec['row']} ...", file=sys.stderr, flush=True)
        row = {"row": spec["row"], "model": spec["model"], **_run_worker(spec)}
        row["method"] = row["settings"]["method"]
        row["import_only_mb"] = row["phase_peak_mb"]["imports"]  # the library and its stack
        row["seconds"] = round(row["fit_seconds"] + row["predict_seconds"], 2)
        if args.cli and spec["data"] == "ml-100k":
            row["cli_max_rss_mb"] = _run_cli(spec["model"], row["settings"]["method"],
                                             args.data_home)
        row["under_target"] = row["peak_mb"] < TARGET_MB
        rows.append(row)
        print(_table([row]).splitlines()[-1], file=sys.stderr, flush=True)
        _write(args, argv, rows)  # after every row: an interrupted run keeps what it measured
    print(f"Peak resident memory (MB) of one fold's fit + prediction, fresh process per row "
          f"(target: under {TARGET_MB} MB)")
    print(_table(rows))
    _write(args, argv, rows)
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
