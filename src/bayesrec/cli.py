"""The ``bayesrec`` command line: ``evaluate``, ``report``, ``demo`` and ``models``.

Examples
--------
::

    bayesrec models
    bayesrec evaluate --model biases --dataset ml-100k --data-home /data
    bayesrec evaluate --model pmf --method map --dataset ratings.csv --kfold 5 \\
        --option n_factors=10 --json pmf.json
    bayesrec evaluate --model biases --dataset ml-25m.csv --user-col userId \\
        --item-col movieId --scale 0.5-5:0.5 --id-type int
    bayesrec demo --seed 1
    bayesrec evaluate --model bpmf --method nuts --dataset ml-100k --folds u1 --save-fit fits/
    bayesrec evaluate --model pmf --method nuts --dataset ml-100k --dask   # folds in parallel
    bayesrec evaluate --model pmf --dataset ml-100k --dask tcp://10.0.0.5:8786
    bayesrec report fits/bpmf-gibbs-u1-3f9c2a71d0.nc --test ml-100k:u1 --out reports/bpmf-u1

Exit status: 0 ok; 1 a fit failed (or an unexpected error, reported in one line;
``bayesrec --traceback ...`` shows it in full); 2 bad input: an unknown model,
method or option, a file that cannot be read, a destination that cannot be
written, a fit too large for the machine's memory (``--max-memory``), ...; 130
interrupted (Ctrl-C).  Errors print ``bayesrec: error: <message>`` (bad input) or
``bayesrec: the fit failed: <message>`` on stderr, in one line that names the
problem and the fix, without a traceback.  Progress goes to stderr, tables to
stdout.

Nothing is written over an input, and nothing is lost: every destination (``--json``,
``--save-fit``, ``report --out``) is checked before any data is loaded or any fit
runs (writable, not a file or folder that is read, not a folder where a file is
expected), an existing file is replaced only with ``--overwrite``, and the fits of
an evaluation are named after the run (``<model>-<method>-<fold>-<run id>.nc``,
the run id a hash of the resolved settings, seed and data, recorded in the JSON).
If a write still fails late (a full disk), the results go to a temporary folder and
the message says where.

A ``--dask`` scheduler must be trusted like code: tasks and results travel as
cloudpickle, so the cluster runs what this process sends and this process runs
what the cluster sends back.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
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
from bayesrec.evaluation.datasets import dataset_inputs, parse_scale
from bayesrec.evaluation.folds import named_splits, resolved_settings
from bayesrec.evaluation.outputs import (
    check_output_file,
    check_output_folder,
    fallback_folder,
    fit_file_name,
    run_id,
)
from bayesrec.evaluation.parallel import check_scheduler
from bayesrec.inference.record import FitRecord
from bayesrec.inference.resources import parse_bytes
from bayesrec.metrics import rmse
from bayesrec.models.registry import get_spec, list_models, model_table
from bayesrec.provenance import versions
from bayesrec.recommenders import make_recommender

__all__ = ["main", "build_parser"]

_FIT_FLAGS = ("draws", "tune", "chains", "sampler")
_READ_FLAGS = {"user_col": "user", "item_col": "item", "rating_col": "rating",
               "duplicates": "duplicates", "encoding": "encoding", "id_type": "id_type"}
# the library's advice names Python keywords; the command line has flags for them
_CLI_WORDS = [
    (r"encoding='([\w-]+)'", r"--encoding \1"),
    (r"duplicates='(\w+)'", r"--duplicates \1"),
    (r"name them with user=, item=, rating= \(or give names= for a file without a header "
     r"row\)", "name them with --user-col, --item-col and --rating-col"),
    (r"id_type='(\w+)'", r"--id-type \1"),
    (r"pass scale= explicitly", "pass --scale (for example --scale 1-5)"),
    (r"pass scale=", "pass --scale (for example --scale 1-5)"),
    (r"pass max_memory=None to go ahead anyway \(or a larger max_memory, such as '(\w+)'\)",
     r"pass --max-memory none to go ahead anyway (or a larger --max-memory, such as \1)"),
    (r"pass overwrite=True", "pass --overwrite"),
    (r"pass allow_train_overlap=True", "pass --allow-train-overlap"),
    (r"\(or data_home=\)", "(or --data-home)"),
    (r"or pass download=True to fetch (\S+) from (\S+)", r"or download \1 from \2 into it"),
    (r"load again with download=True to fetch a verified copy",
     "download a fresh copy of ml-100k.zip from GroupLens"),
    (r"; pass verify=False only to load a copy you changed on purpose", ""),
]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _one_line(exc: BaseException) -> str:
    """An exception's message in one line, with the library's keywords as CLI flags."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    for pattern, replacement in _CLI_WORDS:
        text = re.sub(pattern, replacement, text)
    return text


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
    except (json.JSONDecodeError, RecursionError):
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


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"the seed must be a non-negative integer, got {text!r}")
    return value


def _memory(text: str):
    if text.strip().lower() == "auto":
        return "auto"
    if text.strip().lower() in ("none", "off", "no"):
        return None
    try:
        return parse_bytes(text)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _scale(text: str):
    try:
        return parse_scale(text)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _read_options(args: argparse.Namespace) -> dict:
    """Keywords of read_ratings_file given on the command line (and only those)."""
    read = {key: getattr(args, flag) for flag, key in _READ_FLAGS.items()
            if getattr(args, flag, None) is not None}
    if getattr(args, "scale", None) is not None:
        read["scale"] = args.scale
    return read


def scale_note(scale) -> str:
    """The line telling the user which scale was inferred, and how to declare another."""
    levels = scale.levels
    even = levels is not None and len({round(b - a, 9) for a, b in zip(levels, levels[1:],
                                                                      strict=False)}) == 1
    if even:
        step = levels[1] - levels[0]
        shown = f"{levels[0]:g}..{levels[-1]:g}" + ("" if step == 1 else f" in steps of {step:g}")
    elif levels is not None:
        shown = ",".join(f"{v:g}" for v in levels)
    else:
        shown = f"[{scale.low:g}, {scale.high:g}] (continuous)"
    note = f"scale {shown} inferred from the data"
    if even and step in (1, 0.5) and scale.low > step:
        wider = f"{step:g}-{scale.high:g}" + ("" if step == 1 else f":{step:g}")
        return note + f"; pass --scale {wider} if ratings can be {step:g}"
    return note + "; pass --scale to declare another (for example --scale 1-5)"


# ----------------------------------------------------------------------------------------------
# evaluate
# ----------------------------------------------------------------------------------------------
def _check_settings(args: argparse.Namespace) -> tuple[dict, dict]:
    """Model and fit options from the flags, checked before any data is read."""
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
    try:  # a baseline checks its option values here; a Bayesian model's factory later
        make_recommender(args.model, args.method, options=options, fit_options=fit_options,
                         fast=args.fast, random_seed=args.seed)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"invalid --option value for {args.model!r}: "
                         f"{type(exc).__name__}: {exc}") from None
    return options, fit_options


class _FitSaver:
    """``on_fit`` for :func:`evaluate`: each fold's fit to its path, or, if that write
    fails, to a temporary folder (said on stderr and recorded)."""

    def __init__(self, paths: dict[str, Path], overwrite: bool):
        self.paths, self.overwrite = paths, overwrite
        self.written: dict[str, str] = {}
        self.failed: dict[str, str] = {}
        self._fallback: Path | None = None

    def __call__(self, fold: str, recommender) -> None:
        from bayesrec.inference.io import save_fit

        path = self.paths[fold]
        try:
            save_fit(recommender.fit_, path, overwrite=self.overwrite)
        except (InputError, OSError) as exc:
            problem = _one_line(exc)
            try:
                self._fallback = self._fallback or fallback_folder("bayesrec-fits-")
                path = save_fit(recommender.fit_, self._fallback / path.name)
            except (InputError, OSError) as again:
                self.failed[fold] = f"{problem}; and in a temporary folder: {_one_line(again)}"
                _stderr(f"[{fold}] could not save the fit: {self.failed[fold]}")
                return
            self.failed[fold] = problem
            _stderr(f"[{fold}] could not save the fit where asked ({problem}); saved it to "
                    f"{path} instead")
        self.written[fold] = str(path)
        _stderr(f"[{fold}] wrote {path}")


def _write_record(path: Path, record: dict) -> str | None:
    """Write the JSON record; on failure write it to a temporary folder and say so."""
    try:
        write_json(path, record)
    except OSError as exc:
        fallback = fallback_folder("bayesrec-results-") / path.name
        write_json(fallback, record)
        return (f"cannot write the JSON record to {path} ({exc.strerror or exc}); the results "
                f"were written to {fallback} instead")
    _stderr(f"wrote {path}")
    return None


def _plan_fits(args, spec, options, fit_options, splits, inputs, claimed) -> tuple[str, dict]:
    """The run id and each fold's fit path, checked (not an input, not there already)."""
    method = spec.resolve_method(args.method, fast=args.fast)
    used_options, used_fit = resolved_settings(spec, method, options, fit_options, args.fast)
    named = named_splits(splits)
    run = run_id({"model": spec.name, "method": method, "options": used_options,
                  "fit_options": used_fit, "seed": args.seed, "fast": args.fast}, named)
    paths = {}
    if args.save_fit:
        folder = Path(args.save_fit).expanduser()
        for name, _train, _test in named:
            paths[name] = check_output_file(
                folder / fit_file_name(spec.name, method, name, run), what="--save-fit file",
                inputs=inputs, overwrite=args.overwrite, claimed=claimed)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"cannot create the --save-fit folder {folder}: "
                             f"{exc.strerror or exc}") from None
    return run, paths


def _cmd_evaluate(args: argparse.Namespace) -> int:
    options, fit_options = _check_settings(args)
    spec = get_spec(args.model)
    folds = None
    if args.folds is not None:
        folds = [f.strip() for f in args.folds.split(",") if f.strip()]
        if not folds:
            raise InputError(f"--folds needs fold names such as u1,u2; got {args.folds!r}")
    inputs = dataset_inputs(args.dataset, data_home=args.data_home)
    json_path = None
    if args.json:  # every destination is checked before data is read or a fit runs
        json_path = check_output_file(args.json, what="--json", inputs=inputs,
                                      overwrite=args.overwrite)
    if args.save_fit:
        check_output_folder(args.save_fit, what="--save-fit", inputs=inputs)
    read = _read_options(args)
    description, splits = load_dataset(args.dataset, data_home=args.data_home, folds=folds,
                                       kfold=args.kfold, seed=args.seed, read_options=read)
    if "scale" not in read and args.dataset.lower() not in (*MOVIELENS_NAMES, "synthetic"):
        _stderr(scale_note(splits[0].train.scale))
    run, paths = _plan_fits(args, spec, options, fit_options, splits, inputs,
                            [json_path] if json_path else [])
    _stderr(f"evaluating {args.model} on {description}: {len(splits)} fold(s)"
            + (f" on dask ({args.dask})" if args.dask else "")
            + (f"; run {run}, fits to {args.save_fit}" if paths else ""))
    saver = _FitSaver(paths, args.overwrite) if paths else None
    result = evaluate(args.model, splits, method=args.method, options=options,
                      fit_options=fit_options, seed=args.seed, fast=args.fast,
                      dataset=description, progress=_stderr, on_fit=saver,
                      scheduler=args.dask, n_workers=args.dask_workers,
                      progressbar=args.progress, max_memory=args.max_memory)
    print(result.table())
    record = {**result.to_json(), "run_id": run}
    if saver is not None:
        record["fits"] = saver.written
        if saver.failed:
            record["fit_errors"] = saver.failed
    problems = [f"the fit of {fold} was not saved where asked: {why}"
                for fold, why in (saver.failed.items() if saver else [])]
    if json_path is not None:
        problem = _write_record(json_path, record)
        problems += [problem] if problem else []
    for problem in problems:
        _stderr(f"bayesrec: error: {problem}")
    return 2 if problems else 0


# ----------------------------------------------------------------------------------------------
# report
# ----------------------------------------------------------------------------------------------
_REPORT_FILES = ("report.md", "diagnostics.nc", "norms.png", "rmse_trace.png", "calibration.png",
                 "method_comparison.png", "user_predictive.png", "advi_loss.png")


def _spec_inputs(spec: str, args: argparse.Namespace) -> list[Path]:
    path = Path(spec).expanduser()
    if path.is_file():
        return [path]
    return dataset_inputs(spec.rpartition(":")[0] or spec, data_home=args.data_home)


def _ratings_spec(spec: str, which: str, args: argparse.Namespace, record: FitRecord):
    """Ratings named by ``--train``/``--test``: a ratings file (ids read as the fit's, on its
    scale), or ``DATASET:FOLD``."""
    path = Path(spec).expanduser()
    if path.is_file():
        read = {"id_type": _id_types(record), "scale": record.scale, **_read_options(args)}
        return read_ratings_file(path, **read)
    dataset, sep, fold = spec.rpartition(":")
    if not sep or not dataset or not fold:
        raise InputError(
            f"--{which} must be a ratings file or DATASET:FOLD (for example ml-100k:u1, or "
            f"synthetic:fold1 with --kfold/--seed as in evaluate); got {spec!r}"
        )
    movielens = dataset.lower() in MOVIELENS_NAMES
    read = None
    if not movielens and dataset.lower() != "synthetic":  # a ratings file, read as for the fit
        read = {"id_type": _id_types(record), "scale": record.scale, **_read_options(args)}
    _description, splits = load_dataset(
        dataset, data_home=args.data_home, folds=[fold] if movielens else None,
        kfold=None if movielens else (args.kfold or 5), seed=args.seed, read_options=read)
    for split in splits:
        if split.name == fold:
            return getattr(split, which)
    names = ", ".join(s.name for s in splits)
    raise InputError(f"--{which} {spec!r}: no fold {fold!r}; the folds are {names}")


def _id_types(record) -> dict:
    """How to read the ids of a ratings file for this fit: as ints when the fit's are ints."""
    return {what: "int" if pd.api.types.is_integer_dtype(index) else "str"
            for what, index in (("user", record.users), ("item", record.items))}


def _report_out(args: argparse.Namespace, inputs: list[Path]) -> Path:
    """The report folder, checked: a folder (not the fit), writable, no input among the
    files it will hold, no earlier report replaced without --overwrite."""
    fit_path = Path(args.fit_file).expanduser()
    out = Path(args.out).expanduser() if args.out else fit_path.with_suffix("")
    if not args.out and out == fit_path:
        raise InputError(f"{fit_path} has no suffix, so the default report folder would be the "
                         "fit itself; give the report a folder with --out")
    check_output_folder(out, what="--out", inputs=inputs)
    for name in _REPORT_FILES:
        check_output_file(out / name, what="report file", inputs=inputs, overwrite=True)
    if (out / "report.md").exists() and not args.overwrite:
        raise InputError(f"--out {out} already holds a report; pass --overwrite to replace it, "
                         "or choose another folder")
    return out


def _cmd_report(args: argparse.Namespace) -> int:
    from bayesrec.diagnostics.report import write_report
    from bayesrec.inference.io import load_fit

    inputs = [Path(args.fit_file).expanduser()]
    for spec in (args.train, args.test):
        inputs += _spec_inputs(spec, args) if spec else []
    inputs += [Path(p).expanduser() for p in args.compare or []]
    out = _report_out(args, inputs)
    fit = load_fit(args.fit_file)
    record = FitRecord(fit)
    train = _ratings_spec(args.train, "train", args, record) if args.train else None
    test = _ratings_spec(args.test, "test", args, record) if args.test else None
    comparison = []
    for path in args.compare or []:
        if Path(path).suffix.lower() != ".json":
            comparison.append(load_fit(path))  # another saved fit, scored on the test set
            continue
        try:
            compared = json.loads(Path(path).read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"--compare {path}: not a readable JSON record ({exc})") from None
        comparison += compared if isinstance(compared, list) else [compared]
    users = None
    if args.users:
        users = [u.strip() for u in args.users.split(",") if u.strip()]
    _stderr(f"writing the report of {args.fit_file} to {out}")
    path = write_report(fit, out, train=train, test=test, comparison=comparison or None,
                        users=users, max_draws=args.max_draws, n_pairs=args.n_pairs,
                        seed=args.seed, progress=_stderr,
                        allow_train_overlap=args.allow_train_overlap)
    print(path)
    return 0


# ----------------------------------------------------------------------------------------------
# demo and models
# ----------------------------------------------------------------------------------------------
def _demo_row(result) -> dict:
    fold = result.folds.iloc[0]
    return {"model": result.model, "method": result.method, "rmse": fold["rmse"],
            "mae": fold["mae"], "accuracy": fold["accuracy"], "lpd": fold["lpd"],
            "coverage_90": fold["coverage_90"], "fit s": fold["fit_seconds"]}


def _format_rows(rows: list[dict]) -> str:
    table = pd.DataFrame(rows)
    formats = {"rmse": "{:.4f}", "mae": "{:.4f}", "accuracy": "{:.4f}", "lpd": "{:.4f}",
               "coverage_90": "{:.3f}", "fit s": "{:.2f}"}
    for col, fmt in formats.items():
        table[col] = [fmt.format(v) if isinstance(v, float) else v for v in table[col]]
    return table.to_string(index=False)


def _cmd_demo(args: argparse.Namespace) -> int:
    from bayesrec.data.simulate import load_synthetic, true_mean
    from bayesrec.data.splits import holdout
    from bayesrec.predictions import normal_level_probabilities

    json_path = check_output_file(args.json, what="--json", overwrite=args.overwrite) if \
        args.json else None
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
                              progress=_stderr, progressbar=args.progress,
                              max_memory=args.max_memory)
        except Exception as exc:  # the demo reports a broken model and runs the others
            _stderr(f"bayesrec: {spec.name} failed: {type(exc).__name__}: {_one_line(exc)}")
            failed.append(spec.name)
            continue
        rows.append(_demo_row(result))
        records.append(result.to_json())
    truth_mean = true_mean(truth, test.user, test.item)
    floor = rmse(test.rating, truth_mean)
    # the true level probabilities: the true Normal's mass on each level (the simulator
    # rounds and clips), so no model can expect a better log predictive density
    true_prob = normal_level_probabilities(truth_mean, float(truth["noise_sd"]), test.scale)
    floor_lpd = float(np.mean(np.log(true_prob[np.arange(len(test)), test.level_codes])))
    rows.append({"model": "truth (noise floor)", "method": "-", "rmse": floor, "mae": "-",
                 "accuracy": "-", "lpd": floor_lpd, "coverage_90": "-", "fit s": "-"})
    print(f"bayesrec demo on {dataset}: {len(split.train)} train / {len(test)} test ratings")
    print(_format_rows(rows))
    _stderr(f"demo finished in {time.perf_counter() - start:.1f} s")
    problem = None
    if json_path is not None:
        problem = _write_record(json_path, {"dataset": dataset, "seed": args.seed,
                                            "noise_floor_rmse": floor,
                                            "noise_floor_lpd": floor_lpd, "models": records,
                                            "failed": failed, "versions": versions()})
    if problem:
        _stderr(f"bayesrec: error: {problem}")
    if failed:
        _stderr(f"bayesrec: error: model(s) failed: {', '.join(failed)}")
        return 1
    return 2 if problem else 0


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
def _add_read_flags(parser: argparse.ArgumentParser, *, scale: bool) -> None:
    group = parser.add_argument_group("reading a ratings file")
    group.add_argument("--user-col", metavar="NAME", help="column of user ids (default 'user')")
    group.add_argument("--item-col", metavar="NAME", help="column of item ids (default 'item')")
    group.add_argument("--rating-col", metavar="NAME",
                       help="column of ratings (default 'rating')")
    group.add_argument("--duplicates", choices=("error", "last", "mean"),
                       help="repeated (user, item) pairs: refuse them (default), keep the last "
                       "(by timestamp if there is one), or average them")
    group.add_argument("--encoding", metavar="CODEC",
                       help="the file's text encoding (default utf-8; e.g. latin-1)")
    if scale:
        group.add_argument("--id-type", choices=("str", "int"),
                           help="read ids as the strings in the file (default) or as integers")
        group.add_argument("--scale", type=_scale, metavar="SCALE",
                           help="the rating scale: 1-5 (integers), 0.5-5:0.5 (low-high:step) "
                           "or 1,2,3,4,5 (the levels); default: inferred from the data (and "
                           "said on stderr), which misses levels no one used")


def _add_run_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="progress bars of the fits (default: on when stderr is a "
                        "terminal, off when it is not, under CI, or with BAYESREC_PROGRESS=0)")
    parser.add_argument("--max-memory", type=_memory, default="auto", metavar="SIZE",
                        help="refuse a fit whose estimated memory is above SIZE (e.g. 8G); "
                        "default auto: half of this machine's memory; 'none' goes ahead "
                        "anyway")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace existing output files (never an input)")


def _evaluate_parser(commands) -> None:
    ev = commands.add_parser(
        "evaluate", help="fit and score a model over folds",
        description="Fit and score a model over folds.  Every destination is checked before "
                    "any fit: never an input, never an existing file without --overwrite.")
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
    ev.add_argument("--seed", type=_seed, default=0, help="random seed, >= 0 (default 0)")
    ev.add_argument("--json", metavar="FILE", help="write the results as JSON to FILE (with "
                    "the run id and the paths of the saved fits)")
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
                    "as DIR/<model>-<method>-<fold>-<run>.nc, for `bayesrec report`; <run> is "
                    "a hash of the resolved options, seed and data (the JSON's run_id), so "
                    "runs with other settings never replace these fits")
    ev.add_argument("--dask", nargs="?", const="local", metavar="ADDRESS",
                    help="fit the folds in parallel on dask.distributed: a local cluster, or "
                    "the scheduler at ADDRESS (tcp://host:port); same results as without "
                    "(needs pip install 'bayesrec[dask]').  Trust the scheduler like code: "
                    "tasks and results travel as cloudpickle, which runs code on both sides")
    ev.add_argument("--dask-workers", type=int, metavar="N",
                    help="worker processes of the local --dask cluster (default: one per "
                    "core, at most one per fold)")
    _add_run_flags(ev)
    _add_read_flags(ev, scale=True)
    ev.set_defaults(func=_cmd_evaluate)


def _report_parser(commands) -> None:
    rep = commands.add_parser(
        "report", help="diagnostics report of a saved fit (PNG figures and report.md)",
        description="Write the diagnostics report of a fit saved by `evaluate --save-fit` or "
                    "save_fit(): norms, RMSE traces, convergence, calibration, method "
                    "comparison and predictive plots.  --train/--test name ratings as a file "
                    "or DATASET:FOLD, where DATASET is as in `evaluate --dataset` and FOLD a "
                    "fold name (u1..u5, ua, ub for ml-100k; fold1..foldK of --kfold K with "
                    "--seed for other datasets).  Test ratings the fit was trained on (the "
                    "test split of another fold) are refused unless --allow-train-overlap.")
    rep.add_argument("fit_file", metavar="FIT_FILE", help="a saved fit (.nc or .zarr)")
    rep.add_argument("--test", metavar="SPEC", help="held-out ratings: a file or DATASET:FOLD "
                     "(e.g. ml-100k:u1); without them there is no test section")
    rep.add_argument("--train", metavar="SPEC", help="training ratings (default: the fit's own)")
    rep.add_argument("--data-home", help="folder holding ml-100k/ (as for evaluate)")
    rep.add_argument("--kfold", type=int, help="k of the k-fold split behind DATASET:foldN "
                     "(default 5; not for ml-100k)")
    rep.add_argument("--seed", type=_seed, default=0, help="seed of the k-fold split and of "
                     "every random choice in the report (default 0)")
    rep.add_argument("--out", metavar="DIR", help="output folder (default: FIT_FILE without "
                     "its suffix)")
    rep.add_argument("--overwrite", action="store_true",
                     help="replace the report already in the output folder")
    rep.add_argument("--allow-train-overlap", action="store_true",
                     help="score test ratings that the fit was trained on (the report counts "
                     "them) instead of refusing")
    rep.add_argument("--compare", action="append", metavar="FILE",
                     help="add to the method comparison: an `evaluate --json` record, or "
                     "another saved fit (scored on the same test set); repeatable")
    rep.add_argument("--users", help="comma-separated user ids for the predictive plot "
                     "(default: 3 random test users)")
    rep.add_argument("--max-draws", type=int, default=500,
                     help="posterior draws used to predict the test ratings (default 500)")
    rep.add_argument("--n-pairs", type=int, default=50,
                     help="test pairs whose predictions are checked for convergence (default 50)")
    _add_read_flags(rep, scale=False)
    rep.set_defaults(func=_cmd_report)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bayesrec", description="Bayesian recommender model zoo on PyMC.",
        epilog="Exit status: 0 ok, 1 a fit failed, 2 bad input (or an output that cannot be "
               "written), 130 interrupted.")
    parser.add_argument("--version", action="version", version=f"bayesrec {__version__}")
    parser.add_argument("--traceback", action="store_true",
                        help="on an error, show the full traceback (for bug reports)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _evaluate_parser(commands)
    _report_parser(commands)

    demo = commands.add_parser("demo", help="every registered model on the embedded dataset")
    demo.add_argument("--seed", type=_seed, default=0, help="random seed (default 0)")
    demo.add_argument("--json", metavar="FILE", help="write the results as JSON to FILE")
    _add_run_flags(demo)
    demo.set_defaults(func=_cmd_demo)

    models = commands.add_parser("models", help="list the registered models")
    models.add_argument("--markdown", action="store_true",
                        help="print the README's model table (markdown) instead")
    models.set_defaults(func=_cmd_models)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 a fit failed, 2 bad input,
    130 interrupted)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed its usage message
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return args.func(args)
    except KeyboardInterrupt:
        _stderr("bayesrec: interrupted")
        return 130
    except (InputError, FileNotFoundError) as exc:
        if args.traceback:
            raise
        _stderr(f"bayesrec: error: {_one_line(exc)}")
        return 2
    except FitError as exc:
        if args.traceback:
            raise
        _stderr(f"bayesrec: the fit failed: {_one_line(exc)}")
        return 1
    except MemoryError:
        if args.traceback:
            raise
        _stderr("bayesrec: the fit failed: out of memory; make the model smaller (fewer "
                "factors, draws or chains) or lower --max-memory so that such fits are "
                "refused before they start")
        return 1
    except OSError as exc:  # the file system refused something
        if args.traceback:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        _stderr(f"bayesrec: error: {where}{exc.strerror or _one_line(exc)}; check the path "
                "and its permissions")
        return 2
    except Exception as exc:  # a bug (ours or a dependency's): one line, not a traceback
        if args.traceback:
            raise
        _stderr(f"bayesrec: the fit failed: unexpected {type(exc).__name__}: {_one_line(exc)} "
                "(run `bayesrec --traceback ...` to see where, and report it)")
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
