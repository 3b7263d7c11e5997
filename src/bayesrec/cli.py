"""The ``bayesrec`` command line: ``evaluate``, ``report``, ``demo`` and ``models``.

Examples
--------
::

    bayesrec models
    bayesrec evaluate --model biases --dataset ml-100k --data-home /data
    bayesrec evaluate --model pmf --method map --dataset ratings.csv --kfold 5 \\
        --option n_factors=10 --json pmf.json
    bayesrec demo --seed 1
    bayesrec evaluate --model bpmf --method nuts --dataset ml-100k --folds u1 --save-fit fits/
    bayesrec evaluate --model pmf --method nuts --dataset ml-100k --dask   # folds in parallel
    bayesrec evaluate --model pmf --dataset ml-100k --dask tcp://10.0.0.5:8786
    bayesrec report fits/bpmf-nuts-u1.nc --test ml-100k:u1 --out reports/bpmf-u1

Bad input (unknown model, method or option, a missing file, ...) prints
``bayesrec: error: <message>`` on stderr and exits with status 2, without a
traceback.  Progress goes to stderr, tables to stdout.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd

from bayesrec import __version__
from bayesrec.errors import FitError, InputError
from bayesrec.evaluation import (
    MOVIELENS_NAMES,
    evaluate,
    load_dataset,
    read_ratings_file,
    write_json,
)
from bayesrec.evaluation.parallel import check_scheduler
from bayesrec.inference.record import FitRecord
from bayesrec.metrics import rmse
from bayesrec.models.registry import get_spec, list_models, model_table
from bayesrec.provenance import versions
from bayesrec.recommenders import make_recommender

__all__ = ["main", "build_parser"]

_FIT_FLAGS = ("draws", "tune", "chains", "sampler")


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def parse_option(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` -> (key, value), the value parsed as JSON when it is valid JSON."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not re.fullmatch(r"[A-Za-z_]\w*", key):
        raise InputError(
            f"--option must look like KEY=VALUE with KEY a name (for example "
            f"--option n_factors=10), got {text!r}"
        )
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key, value


def _parse_options(items: list[str] | None) -> dict:
    options: dict = {}
    for text in items or []:
        key, value = parse_option(text)
        if key in options:
            raise InputError(f"--option {key} is given twice")
        options[key] = value
    return options


def _write_json(path: str, record: dict) -> None:
    target = Path(path)
    try:
        write_json(target, record)
    except OSError as exc:
        raise InputError(f"cannot write the JSON record to {target}: {exc.strerror}") from None
    _stderr(f"wrote {target}")


# ----------------------------------------------------------------------------------------------
# commands
# ----------------------------------------------------------------------------------------------
def _cmd_evaluate(args: argparse.Namespace) -> int:
    options = _parse_options(args.option)
    if args.preset is not None:
        if "preset" in options:
            raise InputError("give the preset once: --preset NAME or --option preset=NAME")
        options["preset"] = args.preset
    fit_options = {k: getattr(args, k) for k in _FIT_FLAGS if getattr(args, k) is not None}
    spec = get_spec(args.model)
    if fit_options and spec.kind == "baseline":
        flags = ", ".join(f"--{k}" for k in fit_options)
        raise InputError(f"{flags} apply to Bayesian models only; {args.model!r} is a baseline")
    if args.save_fit and spec.kind == "baseline":
        raise InputError(f"--save-fit applies to Bayesian models only; {args.model!r} is a "
                         "baseline")
    if args.dask_workers is not None and args.dask != "local":
        raise InputError("--dask-workers applies to a local cluster only (--dask without an "
                         "address)")
    check_scheduler(args.dask, n_workers=args.dask_workers)
    # check model, method and options before loading any data
    make_recommender(args.model, args.method, options=options, fit_options=fit_options,
                     fast=args.fast, random_seed=args.seed)
    folds = None
    if args.folds is not None:
        folds = [f.strip() for f in args.folds.split(",") if f.strip()]
        if not folds:
            raise InputError(f"--folds needs fold names such as u1,u2; got {args.folds!r}")
    description, splits = load_dataset(args.dataset, data_home=args.data_home, folds=folds,
                                       kfold=args.kfold, seed=args.seed)
    _stderr(f"evaluating {args.model} on {description}: {len(splits)} fold(s)"
            + (f" on dask ({args.dask})" if args.dask else ""))
    on_fit = _fit_saver(args, spec) if args.save_fit else None
    result = evaluate(args.model, splits, method=args.method, options=options,
                      fit_options=fit_options, seed=args.seed, fast=args.fast,
                      dataset=description, progress=_stderr, on_fit=on_fit,
                      scheduler=args.dask, n_workers=args.dask_workers)
    print(result.table())
    if args.json:
        _write_json(args.json, result.to_json())
    return 0


def _fit_saver(args: argparse.Namespace, spec):
    """``on_fit`` for :func:`evaluate`: save each fold's fit as ``DIR/<model>-<method>-<fold>.nc``."""
    from bayesrec.inference.io import save_fit

    folder = Path(args.save_fit)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create --save-fit folder {folder}: {exc.strerror}") from None
    method = spec.resolve_method(args.method, fast=args.fast)

    def save(fold: str, recommender) -> None:
        path = folder / f"{args.model}-{method}-{fold}.nc"
        save_fit(recommender.fit_, path)
        _stderr(f"[{fold}] wrote {path}")

    return save


def _ratings_spec(spec: str, which: str, args: argparse.Namespace, id_type="str"):
    """Ratings named by ``--train``/``--test``: a ratings file (ids read as ``id_type``, the
    fit's), or ``DATASET:FOLD``."""
    if Path(spec).expanduser().is_file():
        return read_ratings_file(Path(spec).expanduser(), id_type=id_type)
    dataset, sep, fold = spec.rpartition(":")
    if not sep or not dataset or not fold:
        raise InputError(
            f"--{which} must be a ratings file or DATASET:FOLD (for example ml-100k:u1, or "
            f"synthetic:fold1 with --kfold/--seed as in evaluate); got {spec!r}"
        )
    movielens = dataset.lower() in MOVIELENS_NAMES
    _description, splits = load_dataset(
        dataset, data_home=args.data_home, folds=[fold] if movielens else None,
        kfold=None if movielens else (args.kfold or 5), seed=args.seed)
    for split in splits:
        if split.name == fold:
            return getattr(split, which)
    names = ", ".join(s.name for s in splits)
    raise InputError(f"--{which} {spec!r}: no fold {fold!r}; the folds are {names}")


def _id_types(record) -> dict:
    """How to read the ids of a ratings file for this fit: as ints when the fit's are ints."""
    return {what: "int" if pd.api.types.is_integer_dtype(index) else "str"
            for what, index in (("user", record.users), ("item", record.items))}


def _cmd_report(args: argparse.Namespace) -> int:
    from bayesrec.diagnostics.report import write_report
    from bayesrec.inference.io import load_fit

    fit = load_fit(args.fit_file)
    id_type = _id_types(FitRecord(fit))
    train = _ratings_spec(args.train, "train", args, id_type) if args.train else None
    test = _ratings_spec(args.test, "test", args, id_type) if args.test else None
    comparison = []
    for path in args.compare or []:
        if Path(path).suffix.lower() != ".json":
            comparison.append(load_fit(path))  # another saved fit, scored on the test set
            continue
        try:
            record = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"--compare {path}: not a readable JSON record ({exc})") from None
        comparison += record if isinstance(record, list) else [record]
    users = None
    if args.users:
        users = [u.strip() for u in args.users.split(",") if u.strip()]
    out = Path(args.out) if args.out else Path(args.fit_file).with_suffix("")
    _stderr(f"writing the report of {args.fit_file} to {out}")
    path = write_report(fit, out, train=train, test=test, comparison=comparison or None,
                        users=users, max_draws=args.max_draws, n_pairs=args.n_pairs,
                        seed=args.seed, progress=_stderr)
    print(path)
    return 0


def _demo_row(result) -> dict:
    fold = result.folds.iloc[0]
    return {"model": result.model, "method": result.method, "rmse": fold["rmse"],
            "mae": fold["mae"], "accuracy": fold["accuracy"],
            "coverage_90": fold["coverage_90"], "fit s": fold["fit_seconds"]}


def _format_rows(rows: list[dict]) -> str:
    table = pd.DataFrame(rows)
    formats = {"rmse": "{:.4f}", "mae": "{:.4f}", "accuracy": "{:.4f}",
               "coverage_90": "{:.3f}", "fit s": "{:.2f}"}
    for col, fmt in formats.items():
        table[col] = [fmt.format(v) if isinstance(v, float) else v for v in table[col]]
    return table.to_string(index=False)


def _cmd_demo(args: argparse.Namespace) -> int:
    from bayesrec.data.simulate import load_synthetic, true_mean
    from bayesrec.data.splits import holdout

    start = time.perf_counter()
    ratings, truth = load_synthetic()
    split = holdout(ratings, 0.2, seed=args.seed)
    test = split.test
    dataset = f"synthetic (80/20 holdout, seed {args.seed})"
    _stderr(f"demo on {dataset}: {split.report()}")
    rows, records, failed = [], [], []
    for spec in list_models():
        try:
            result = evaluate(spec.name, [split], fast=True, seed=args.seed, dataset=dataset,
                              progress=_stderr)
        except Exception as exc:  # the demo reports a broken model and runs the others
            _stderr(f"bayesrec: {spec.name} failed: {type(exc).__name__}: {exc}")
            failed.append(spec.name)
            continue
        rows.append(_demo_row(result))
        records.append(result.to_json())
    floor = rmse(test.rating, true_mean(truth, test.user, test.item))
    rows.append({"model": "truth (noise floor)", "method": "-", "rmse": floor, "mae": "-",
                 "accuracy": "-", "coverage_90": "-", "fit s": "-"})
    print(f"bayesrec demo on {dataset}: {len(split.train)} train / {len(test)} test ratings")
    print(_format_rows(rows))
    _stderr(f"demo finished in {time.perf_counter() - start:.1f} s")
    if args.json:
        _write_json(args.json, {"dataset": dataset, "seed": args.seed,
                                "noise_floor_rmse": floor, "models": records,
                                "failed": failed, "versions": versions()})
    if failed:
        _stderr(f"bayesrec: error: model(s) failed: {', '.join(failed)}")
        return 1
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    if args.markdown:
        print(model_table())
        return 0
    print(_model_listing(list_models()))
    return 0


def _model_listing(specs, width: int = 100) -> str:
    """One block per model, wrapped to ``width`` columns: name, kind and title, then its
    methods (the default marked), presets and reference."""
    indent = 16
    blocks = []
    for s in specs:
        head = f"{s.name:<14}  {s.kind:<8}  {s.title}"
        lines = textwrap.wrap(head, width, subsequent_indent=" " * indent)
        methods = ", ".join(f"{m} (default)" if m == s.default_method and len(s.methods) > 1
                            else m for m in s.methods)
        details = [f"methods: {methods}"]
        if s.presets:
            details.append("presets: " + ", ".join(
                f"{name} ({', '.join(f'{k}={v:.3g}' if isinstance(v, float) else f'{k}={v}' for k, v in opts.items())})"
                for name, opts in s.presets.items()))
        if s.reference:
            details.append(s.reference)
        for text in details:
            lines += textwrap.wrap(text, width, initial_indent=" " * indent,
                                   subsequent_indent=" " * (indent + 2))
        blocks.append("\n".join(lines))
    return "\n".join(blocks)


# ----------------------------------------------------------------------------------------------
# parser
# ----------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bayesrec", description="Bayesian recommender model zoo on PyMC."
    )
    parser.add_argument("--version", action="version", version=f"bayesrec {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    ev = commands.add_parser("evaluate", help="fit and score a model over folds")
    ev.add_argument("--model", required=True, help="registered model name (see `bayesrec models`)")
    ev.add_argument("--method", help="inference method (default: the model's default)")
    ev.add_argument("--dataset", required=True,
                    help="'synthetic', 'ml-100k' or the path of a CSV/TSV ratings file")
    split = ev.add_mutually_exclusive_group()
    split.add_argument("--folds", help="MovieLens folds, comma-separated (default u1,...,u5)")
    split.add_argument("--kfold", type=int, help="random K-fold cross-validation "
                       "(default 5 for datasets other than ml-100k)")
    ev.add_argument("--data-home", help="folder holding ml-100k/ (default: $BAYESREC_DATA, "
                    "then a cache folder)")
    ev.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    ev.add_argument("--json", metavar="FILE", help="write the results as JSON to FILE")
    ev.add_argument("--option", action="append", metavar="KEY=VALUE",
                    help="model option, repeatable; VALUE is parsed as JSON when possible")
    ev.add_argument("--preset", metavar="NAME", help="a named preset of model options (see "
                    "`bayesrec models`), e.g. point_estimate for PMF and MPMA")
    ev.add_argument("--draws", type=int, help="posterior draws per chain (Bayesian models)")
    ev.add_argument("--tune", type=int, help="tuning steps per chain (Bayesian models)")
    ev.add_argument("--chains", type=int, help="number of chains (Bayesian models)")
    ev.add_argument("--sampler", help="NUTS sampler backend (Bayesian models)")
    ev.add_argument("--fast", action="store_true", help="use the model's fast settings")
    ev.add_argument("--save-fit", metavar="DIR", help="save each fold's fit (Bayesian models) "
                    "as DIR/<model>-<method>-<fold>.nc, for `bayesrec report`")
    ev.add_argument("--dask", nargs="?", const="local", metavar="ADDRESS",
                    help="fit the folds in parallel on dask.distributed: a local cluster, or "
                    "the scheduler at ADDRESS (tcp://host:port); same results as without "
                    "(needs pip install 'bayesrec[dask]')")
    ev.add_argument("--dask-workers", type=int, metavar="N",
                    help="worker processes of the local --dask cluster (default: one per "
                    "core, at most one per fold)")
    ev.set_defaults(func=_cmd_evaluate)

    rep = commands.add_parser(
        "report", help="diagnostics report of a saved fit (PNG figures and report.md)",
        description="Write the diagnostics report of a fit saved by `evaluate --save-fit` or "
                    "save_fit(): norms, RMSE traces, convergence, calibration, method "
                    "comparison and predictive plots.  --train/--test name ratings as a file "
                    "or DATASET:FOLD, where DATASET is as in `evaluate --dataset` and FOLD a "
                    "fold name (u1..u5, ua, ub for ml-100k; fold1..foldK of --kfold K with "
                    "--seed for other datasets).")
    rep.add_argument("fit_file", metavar="FIT_FILE", help="a saved fit (.nc or .zarr)")
    rep.add_argument("--test", metavar="SPEC", help="held-out ratings: a file or DATASET:FOLD "
                     "(e.g. ml-100k:u1); without them there is no test section")
    rep.add_argument("--train", metavar="SPEC", help="training ratings (default: the fit's own)")
    rep.add_argument("--data-home", help="folder holding ml-100k/ (as for evaluate)")
    rep.add_argument("--kfold", type=int, help="k of the k-fold split behind DATASET:foldN "
                     "(default 5; not for ml-100k)")
    rep.add_argument("--seed", type=int, default=0, help="seed of the k-fold split and of every "
                     "random choice in the report (default 0)")
    rep.add_argument("--out", metavar="DIR", help="output folder (default: FIT_FILE without "
                     "its suffix)")
    rep.add_argument("--compare", action="append", metavar="FILE",
                     help="add to the method comparison: an `evaluate --json` record, or "
                     "another saved fit (scored on the same test set); repeatable")
    rep.add_argument("--users", help="comma-separated user ids for the predictive plot "
                     "(default: 3 random test users)")
    rep.add_argument("--max-draws", type=int, default=500,
                     help="posterior draws used to predict the test ratings (default 500)")
    rep.add_argument("--n-pairs", type=int, default=50,
                     help="test pairs whose predictions are checked for convergence (default 50)")
    rep.set_defaults(func=_cmd_report)

    demo = commands.add_parser("demo", help="every registered model on the embedded dataset")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo.add_argument("--json", metavar="FILE", help="write the results as JSON to FILE")
    demo.set_defaults(func=_cmd_demo)

    models = commands.add_parser("models", help="list the registered models")
    models.add_argument("--markdown", action="store_true",
                        help="print the README's model table (markdown) instead")
    models.set_defaults(func=_cmd_models)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 a fit failed, 2 bad input)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed its usage message
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return args.func(args)
    except (InputError, FileNotFoundError) as exc:
        _stderr(f"bayesrec: error: {exc}")
        return 2
    except FitError as exc:
        _stderr(f"bayesrec: the fit failed: {exc}")
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
