"""Fit and score a registered model over folds: the engine of ``bayesrec evaluate``.

:func:`evaluate` makes a fresh recommender per fold with
:func:`~bayesrec.recommenders.make_recommender`, times ``fit`` and ``predict``
separately, scores the held-out pairs with :func:`bayesrec.metrics.score` and
returns an :class:`EvaluationResult` (one row per fold, summaries, a printable
table and a JSON record with the settings and package versions).  The folds run
here one after the other, or on a ``dask.distributed`` cluster
(``scheduler="local"`` or a scheduler address) with the same results.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from bayesrec.data.ratings import Ratings
from bayesrec.errors import InputError
from bayesrec.evaluation.parallel import check_scheduler, describe_scheduler, run_tasks
from bayesrec.evaluation.records import jsonable
from bayesrec.inference.fit import method_options
from bayesrec.inference.resources import check_memory
from bayesrec.metrics import score
from bayesrec.models.registry import build_model, get_spec
from bayesrec.provenance import now, versions
from bayesrec.recommenders import make_recommender

__all__ = [
    "FOLD_COLUMNS",
    "EvaluationResult",
    "evaluate",
    "named_splits",
    "preflight",
    "resolved_settings",
]

#: Per-fold columns of :attr:`EvaluationResult.folds` (the coverages follow ``score``).
FOLD_COLUMNS = (
    "fold", "rmse", "mae", "accuracy", "lpd", "coverage_50", "coverage_80", "coverage_90",
    "coverage_95", "fit_seconds", "predict_seconds", "n_train", "n_test", "n_cold_users",
    "n_cold_items",
)
TABLE_COLUMNS = ("rmse", "mae", "accuracy", "lpd", "coverage_90", "fit_seconds",
                 "predict_seconds")


@dataclass
class EvaluationResult:
    """Scores of one model over a list of folds.

    Attributes
    ----------
    folds : DataFrame
        One row per fold with the columns of :data:`FOLD_COLUMNS`: ``fold``,
        ``rmse``, ``mae``, ``accuracy``, ``coverage_50/80/90/95``, ``fit_seconds``,
        ``predict_seconds``, ``n_train``, ``n_test``, ``n_cold_users``,
        ``n_cold_items`` (distinct test users/items without training ratings).
    model, method, dataset : str
    options, fit_options : dict
        The model options and fit options used, defaults filled in.
    seed : int or None
        The random seed given to every fold's recommender.
    fast : bool
    versions : dict
        Python and package versions.
    created_at : str
        UTC time of the evaluation, ISO 8601.
    scheduler : str or None
        Where the folds ran: None (here, one after the other), ``"local"`` (a
        local dask cluster) or the dask scheduler's address.
    """

    folds: pd.DataFrame
    model: str
    method: str
    dataset: str = ""
    options: dict = field(default_factory=dict)
    fit_options: dict = field(default_factory=dict)
    seed: int | None = 0
    fast: bool = False
    versions: dict = field(default_factory=versions)
    created_at: str = field(default_factory=now)
    scheduler: str | None = None

    def summary(self) -> pd.DataFrame:
        """Mean and sd (ddof=1; NaN for a single fold) of every numeric column over folds."""
        numeric = self.folds.drop(columns="fold").astype(float)
        return pd.DataFrame({"mean": numeric.mean(), "sd": numeric.std(ddof=1)})

    def table(self) -> str:
        """Per-fold rows and a ``mean ± sd`` row, as aligned text."""
        shown = self.folds[["fold", *TABLE_COLUMNS, "n_test"]].copy()
        rows = shown.astype(object)
        for col in TABLE_COLUMNS:
            digits = 2 if col.endswith("seconds") else 4
            rows[col] = [f"{v:.{digits}f}" for v in shown[col]]
        summary = self.summary()
        mean_row = {"fold": "mean ± sd", "n_test": f"{summary.loc['n_test', 'mean']:.0f}"}
        for col in TABLE_COLUMNS:
            digits = 2 if col.endswith("seconds") else 4
            m, s = summary.loc[col, "mean"], summary.loc[col, "sd"]
            mean_row[col] = f"{m:.{digits}f}" + ("" if np.isnan(s) else f" ± {s:.{digits}f}")
        rows = pd.concat([rows, pd.DataFrame([mean_row])], ignore_index=True)
        rows = rows.rename(columns={"fit_seconds": "fit s", "predict_seconds": "predict s"})
        header = f"{self.model}/{self.method} on {self.dataset or 'data'}"
        return header + "\n" + rows.to_string(index=False)

    def to_json(self) -> dict:
        """A plain-JSON dict: settings, one record per fold, mean and sd, versions."""
        summary = self.summary()
        return jsonable({
            "model": self.model,
            "method": self.method,
            "dataset": self.dataset,
            "seed": self.seed,
            "fast": self.fast,
            "options": self.options,
            "fit_options": self.fit_options,
            "folds": self.folds.to_dict(orient="records"),
            "mean": summary["mean"].to_dict(),
            "sd": summary["sd"].to_dict(),
            "versions": self.versions,
            "created_at": self.created_at,
            "scheduler": self.scheduler,
        })


def _unpack(split, position: int) -> tuple[str, Ratings, Ratings]:
    """(name, train, test) of a Split or a (train, test) pair."""
    if hasattr(split, "train") and hasattr(split, "test"):
        train, test = split.train, split.test
        name = getattr(split, "name", None) or f"fold{position + 1}"
    elif isinstance(split, (tuple, list)) and len(split) == 2:
        (train, test), name = split, f"fold{position + 1}"
    else:
        raise InputError(
            f"split {position} is a {type(split).__name__}; give Split objects or "
            "(train, test) pairs of Ratings"
        )
    for what, r in (("train", train), ("test", test)):
        if not isinstance(r, Ratings):
            raise InputError(f"the {what} set of split {name!r} is not a bayesrec.Ratings")
    return str(name), train, test


def _cold_counts(train: Ratings, test: Ratings) -> tuple[int, int]:
    """Distinct test users and items that have no training ratings (or unknown ids)."""
    out = []
    for codes_of, counts, ids in (
        (train.user_codes_of, train.user_counts(), test.user_ids),
        (train.item_codes_of, train.item_counts(), test.item_ids),
    ):
        codes = codes_of(ids, unknown="mask")
        cold = (codes < 0) | (counts[np.maximum(codes, 0)] == 0)
        out.append(len(pd.unique(np.asarray(ids, dtype=object)[cold])))
    return out[0], out[1]


@dataclass(frozen=True)
class _FoldTask:
    """One fit-and-score job, self-contained (seed included) so that any worker can run it."""

    model: str
    method: str
    options: dict
    fit_options: dict
    fast: bool
    seed: int | None
    fold: str
    train: Ratings
    test: Ratings
    keep_recommender: bool = False
    progressbar: bool | None = None
    max_memory: Any = "auto"


def _run_fold(task: _FoldTask) -> dict:
    """Fit and score one fold: ``{"row": <FOLD_COLUMNS>, "recommender": fitted or None}``."""
    recommender = make_recommender(task.model, task.method, options=task.options,
                                   fit_options=task.fit_options, fast=task.fast,
                                   random_seed=task.seed, progressbar=task.progressbar,
                                   max_memory=task.max_memory)
    start = time.perf_counter()
    recommender.fit(task.train)
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    prediction = recommender.predict_ratings(task.test)
    predict_seconds = time.perf_counter() - start
    scores = score(prediction, task.test)
    n_cold_users, n_cold_items = _cold_counts(task.train, task.test)
    row = {"fold": task.fold, **scores, "fit_seconds": fit_seconds,
           "predict_seconds": predict_seconds, "n_train": len(task.train),
           "n_test": len(task.test), "n_cold_users": n_cold_users, "n_cold_items": n_cold_items}
    return {"row": row, "recommender": recommender if task.keep_recommender else None}


def _score_line(prefix: str, row: dict) -> str:
    return (f"[{prefix}] rmse {row['rmse']:.4f}  mae {row['mae']:.4f}  accuracy "
            f"{row['accuracy']:.4f}  lpd {row['lpd']:.4f}  coverage_90 {row['coverage_90']:.3f}  "
            f"(fit {row['fit_seconds']:.2f} s, predict {row['predict_seconds']:.2f} s)")


def _remaining(done: int, total: int, start: float) -> str:
    """``  [2/5 done, about 3 min left]`` (from the mean time per task so far)."""
    if total < 2:
        return ""
    left = (time.perf_counter() - start) / done * (total - done)
    when = f"{left:.0f} s" if left < 120 else f"{left / 60:.0f} min"
    return f"  [{done}/{total} done" + (f", about {when} left]" if done < total else "]")


def fold_tasks(model: str, method: str, options: dict, fit_options: dict, fast: bool,
                seed: int | None, splits: list, keep_recommender: bool, *,
                progressbar: bool | None = None, max_memory: Any = "auto") -> list[_FoldTask]:
    tasks = []
    for position, split in enumerate(splits):
        name, train, test = _unpack(split, position)
        tasks.append(_FoldTask(model, method, options, fit_options, fast, seed, name, train,
                               test, keep_recommender, progressbar, max_memory))
    return tasks


def preflight(tasks: list[_FoldTask]) -> None:
    """Before any fit: build a Bayesian model on the largest training set with its options
    and check the memory its fit would need (:func:`~bayesrec.inference.resources.check_memory`).

    So that an option value the factory refuses, or a fit too large for the machine,
    is reported before hours of fits on the other folds, not after.  Baselines are
    cheap and were checked when made.
    """
    if not tasks:
        return
    task = max(tasks, key=lambda t: len(t.train))
    spec = get_spec(task.model)
    if spec.kind == "baseline":
        return
    options = spec.model_options(task.options, fast=task.fast)
    try:
        model = build_model(task.model, task.train, **options)
    except InputError:
        raise
    except Exception as exc:  # a factory that does not check a value itself
        raise InputError(f"model {task.model!r} cannot be built with options {options}: "
                         f"{type(exc).__name__}: {exc}") from None
    fit_options = spec.fit_options(task.method, task.fit_options, fast=task.fast)
    check_memory(model, task.method, method_options(task.method, model, **fit_options),
                 task.max_memory)


def named_splits(splits) -> list[tuple[str, Ratings, Ratings]]:
    """``(name, train, test)`` of each split, named as :func:`evaluate` names them."""
    return [_unpack(split, position) for position, split in enumerate(as_split_list(splits))]


def as_split_list(splits) -> list:
    if hasattr(splits, "train") and hasattr(splits, "test"):
        splits = [splits]
    splits = list(splits)
    if not splits:
        raise InputError("no splits to evaluate on; give at least one (train, test) split")
    return splits


def run_fold_tasks(tasks: list[_FoldTask], labels: list[str], *, scheduler, n_workers, say,
         on_fit=None) -> list[dict]:
    """Run fold tasks (here or on dask) with progress lines; the rows, in task order."""
    where = describe_scheduler(scheduler)

    def before(i: int) -> None:
        task = tasks[i]
        verb = "fitting" if scheduler is None else "queued"
        say(f"[{labels[i]}] {verb} {task.model}/{task.method} on {len(task.train)} ratings"
            + (" ..." if scheduler is None else f" for dask ({where}) ..."))

    start, done = time.perf_counter(), []

    def after(i: int, result: dict) -> None:
        recommender = result.pop("recommender", None)
        if on_fit is not None:
            on_fit(tasks[i].fold, recommender)
        done.append(i)
        say(_score_line(labels[i], result["row"]) + _remaining(len(done), len(tasks), start))

    results = run_tasks(_run_fold, tasks, scheduler=scheduler, n_workers=n_workers,
                        before=before, after=after)
    return [r["row"] for r in results]


def resolved_settings(spec, method: str, options: dict, fit_options: dict,
                      fast: bool) -> tuple[dict, dict]:
    """(model options, fit options) a run uses: defaults, presets, the model's own fit
    settings and the fast ones filled in."""
    given = spec.model_options(options, fast=fast)
    used_options = {**spec.options(), **(spec.expand_preset(given) if spec.presets else given)}
    if given.get("preset") is not None:
        used_options["preset"] = given["preset"]
    used_options.pop("random_seed", None)  # recorded as `seed`
    used_fit = {}
    if spec.kind != "baseline":
        used_fit = method_options(method, spec=spec,
                                  **spec.fit_options(method, fit_options, fast=fast))
    return used_options, used_fit


def evaluation_result(spec, method: str, options: dict, fit_options: dict, rows: list[dict], *,
                      seed, fast: bool, dataset: str, scheduler) -> EvaluationResult:
    """The result record: every setting the fits used (:func:`resolved_settings`), the
    rows, provenance."""
    used_options, used_fit = resolved_settings(spec, method, options, fit_options, fast)
    return EvaluationResult(
        folds=pd.DataFrame(rows, columns=list(FOLD_COLUMNS)), model=spec.name, method=method,
        dataset=dataset, options=used_options, fit_options=used_fit, seed=seed, fast=fast,
        scheduler=describe_scheduler(scheduler),
    )


def evaluate(model: str, splits, *, method: str | None = None, options: dict | None = None,
             fit_options: dict | None = None, seed: int | None = 0, fast: bool = False,
             dataset: str = "", progress: Callable[[str], None] | None = None,
             on_fit: Callable[[str, Any], None] | None = None, scheduler: Any = None,
             n_workers: int | None = None, progressbar: bool | None = None,
             max_memory: Any = "auto") -> EvaluationResult:
    """Fit ``model`` on each split's training set and score its test set.

    Parameters
    ----------
    model : str
        Registry name (see :func:`bayesrec.models.list_models`).
    splits : Split, or sequence of Split or (train, test) pairs
    method : str, optional
        Inference method (default: the model's default; ``"fit"`` for baselines).
    options, fit_options : dict, optional
        Model options and fit options, as for :func:`~bayesrec.recommenders.make_recommender`.
    seed : int, optional
        Random seed of every fold's recommender (the same for each fold).  Each
        fold's task carries it, so a run on a dask cluster gives the same numbers
        as a sequential one, whichever worker fits which fold.  ``None`` draws a
        fresh seed in every fit: the run cannot be repeated.
    fast : bool
        Start from the model's fast settings.
    dataset : str
        Description recorded in the result.
    progress : callable, optional
        Called with a line of text before each fit (on dask: when a fold is
        queued) and after each fold's scoring (on dask: as folds finish).
    on_fit : callable, optional
        Called as ``on_fit(fold_name, recommender)`` after each fold's fit (for
        example to save a Bayesian recommender's ``fit_``).  On dask the fitted
        recommender travels back from its worker (cloudpickle) first.
    scheduler : None, "local", str or distributed.Client
        ``None`` (default) fits the folds here, one after the other.  ``"local"``
        fans them out over a local ``dask.distributed`` cluster started for this
        call; ``"tcp://host:port"`` over an existing cluster (its workers need
        ``bayesrec``); a ``distributed.Client`` is used as it is.  Needs
        ``pip install 'bayesrec[dask]'``; see :mod:`bayesrec.parallel`.
    n_workers : int, optional
        Worker processes of a ``"local"`` cluster (default: one per core, at most
        one per fold).
    progressbar : bool, optional
        Progress bars of the fits (default: automatic, see
        :func:`bayesrec.inference.progress.show_progress`; never on dask workers).
    max_memory : "auto", int, str or None
        The memory a fit may take (see :func:`bayesrec.inference.fit`); checked on the
        largest training set before any fit, and by every fit.

    Before any fit, a Bayesian model is built once on the largest training set (its
    options checked by its factory) and its memory checked, so that a bad option value
    or a fit too large for the machine is refused before the first fold runs.

    Returns
    -------
    EvaluationResult
        The rows come in the order of ``splits`` whatever the scheduler; only
        ``fit_seconds`` and ``predict_seconds`` differ between schedulers.
    """
    spec = get_spec(model)
    method = spec.resolve_method(method, fast=fast)
    options, fit_options = dict(options or {}), dict(fit_options or {})
    make_recommender(model, method, options=options, fit_options=fit_options, fast=fast,
                     random_seed=seed)  # validates names and options before any work
    check_scheduler(scheduler, n_workers=n_workers)
    if scheduler is not None:
        progressbar = False  # a worker's progress bar goes nowhere
    tasks = fold_tasks(model, method, options, fit_options, fast, seed,
                       as_split_list(splits), keep_recommender=on_fit is not None,
                       progressbar=progressbar, max_memory=max_memory)
    preflight(tasks)
    rows = run_fold_tasks(tasks, [t.fold for t in tasks], scheduler=scheduler, n_workers=n_workers,
                say=progress or (lambda _msg: None), on_fit=on_fit)
    return evaluation_result(spec, method, options, fit_options, rows, seed=seed, fast=fast,
                   dataset=dataset, scheduler=scheduler)
