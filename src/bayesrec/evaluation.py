"""Fit and score a registered model over folds: the engine of ``bayesrec evaluate``.

:func:`evaluate` makes a fresh recommender per fold with
:func:`~bayesrec.models.make_recommender`, times ``fit`` and ``predict``
separately, scores the held-out pairs with :func:`bayesrec.metrics.score` and
returns an :class:`EvaluationResult` (one row per fold, summaries, a printable
table and a JSON record with the settings and package versions).
:func:`grid` does the same for several candidates (models, or one model under
several options, see :func:`param_grid`) over the same folds.  Both run the
folds here one after the other, or fan them out over a ``dask.distributed``
cluster (``scheduler="local"`` or a scheduler address) with the same results.
:func:`load_dataset` turns a dataset name (``synthetic``, ``ml-100k`` or a file
path) into a description and a list of splits.
"""

from __future__ import annotations

import itertools
import json
import math
import platform
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayesrec.data.ratings import Ratings
from bayesrec.errors import InputError
from bayesrec.metrics import score
from bayesrec.models.registry import get_spec, make_recommender
from bayesrec.parallel import check_scheduler, describe_scheduler, run_tasks

__all__ = [
    "Candidate",
    "EvaluationResult",
    "GridResult",
    "evaluate",
    "grid",
    "param_grid",
    "load_dataset",
    "read_ratings_file",
    "versions",
    "provenance",
    "write_json",
    "FOLD_COLUMNS",
    "MOVIELENS_FOLDS",
]

#: The five-fold cross-validation that ships with MovieLens 100K.
MOVIELENS_FOLDS = ("u1", "u2", "u3", "u4", "u5")
_MOVIELENS_NAMES = ("ml-100k", "ml100k", "movielens", "movielens-100k")

#: Per-fold columns of :attr:`EvaluationResult.folds` (the coverages follow ``score``).
FOLD_COLUMNS = (
    "fold", "rmse", "mae", "accuracy", "coverage_50", "coverage_80", "coverage_90",
    "coverage_95", "fit_seconds", "predict_seconds", "n_train", "n_test", "n_cold_users",
    "n_cold_items",
)
_TABLE_COLUMNS = ("rmse", "mae", "accuracy", "coverage_90", "fit_seconds", "predict_seconds")


def versions() -> dict[str, str]:
    """Python and package versions, for provenance records."""
    out = {"python": platform.python_version()}
    for package in ("numpy", "pymc", "pytensor", "arviz", "bayesrec"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = "not installed"
    return out


def provenance(**extra_versions: str) -> dict[str, Any]:
    """``created_at`` (UTC, ISO 8601, seconds) and ``versions`` for a results record;
    ``extra_versions`` adds packages a benchmark compares against."""
    return {"created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "versions": {**versions(), **extra_versions}}


def write_json(path, record: dict) -> Path:
    """Write ``record`` as indented JSON (numpy scalars as floats), creating folders."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(record, indent=2, default=float) + "\n")
    return target


def _jsonable(x: Any) -> Any:
    """Plain-JSON version of a value: numpy scalars unwrapped, NaN -> None."""
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    return str(x)


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
    created_at: str = field(
        default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds")
    )
    scheduler: str | None = None

    def summary(self) -> pd.DataFrame:
        """Mean and sd (ddof=1; NaN for a single fold) of every numeric column over folds."""
        numeric = self.folds.drop(columns="fold").astype(float)
        return pd.DataFrame({"mean": numeric.mean(), "sd": numeric.std(ddof=1)})

    def table(self) -> str:
        """Per-fold rows and a ``mean ± sd`` row, as aligned text."""
        shown = self.folds[["fold", *_TABLE_COLUMNS, "n_test"]].copy()
        rows = shown.astype(object)
        for col in _TABLE_COLUMNS:
            digits = 2 if col.endswith("seconds") else 4
            rows[col] = [f"{v:.{digits}f}" for v in shown[col]]
        summary = self.summary()
        mean_row = {"fold": "mean ± sd", "n_test": f"{summary.loc['n_test', 'mean']:.0f}"}
        for col in _TABLE_COLUMNS:
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
        return _jsonable({
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


def _run_fold(task: _FoldTask) -> dict:
    """Fit and score one fold: ``{"row": <FOLD_COLUMNS>, "recommender": fitted or None}``."""
    recommender = make_recommender(task.model, task.method, options=task.options,
                                   fit_options=task.fit_options, fast=task.fast,
                                   random_seed=task.seed)
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
            f"{row['accuracy']:.4f}  coverage_90 {row['coverage_90']:.3f}  "
            f"(fit {row['fit_seconds']:.2f} s, predict {row['predict_seconds']:.2f} s)")


def _fold_tasks(model: str, method: str, options: dict, fit_options: dict, fast: bool,
                seed: int | None, splits: list, keep_recommender: bool) -> list[_FoldTask]:
    tasks = []
    for position, split in enumerate(splits):
        name, train, test = _unpack(split, position)
        tasks.append(_FoldTask(model, method, options, fit_options, fast, seed, name, train,
                               test, keep_recommender))
    return tasks


def _as_split_list(splits) -> list:
    if hasattr(splits, "train") and hasattr(splits, "test"):
        splits = [splits]
    splits = list(splits)
    if not splits:
        raise InputError("no splits to evaluate on; give at least one (train, test) split")
    return splits


def _run(tasks: list[_FoldTask], labels: list[str], *, scheduler, n_workers, say,
         on_fit=None) -> list[dict]:
    """Run fold tasks (here or on dask) with progress lines; the rows, in task order."""
    where = describe_scheduler(scheduler)

    def before(i: int) -> None:
        task = tasks[i]
        verb = "fitting" if scheduler is None else "queued"
        say(f"[{labels[i]}] {verb} {task.model}/{task.method} on {len(task.train)} ratings"
            + (" ..." if scheduler is None else f" for dask ({where}) ..."))

    def after(i: int, result: dict) -> None:
        recommender = result.pop("recommender", None)
        if on_fit is not None:
            on_fit(tasks[i].fold, recommender)
        say(_score_line(labels[i], result["row"]))

    results = run_tasks(_run_fold, tasks, scheduler=scheduler, n_workers=n_workers,
                        before=before, after=after)
    return [r["row"] for r in results]


def _result(spec, method: str, options: dict, fit_options: dict, rows: list[dict], *,
            seed, fast: bool, dataset: str, scheduler) -> EvaluationResult:
    _, resolved, used_fit = spec.resolve(method, options=options, fit_options=fit_options,
                                         fast=fast)
    used_options = {**spec.options(), **resolved}
    used_options.pop("random_seed", None)  # recorded as `seed`
    return EvaluationResult(
        folds=pd.DataFrame(rows, columns=list(FOLD_COLUMNS)), model=spec.name, method=method,
        dataset=dataset, options=used_options,
        fit_options=used_fit if spec.kind != "baseline" else {}, seed=seed, fast=fast,
        scheduler=describe_scheduler(scheduler),
    )


def evaluate(model: str, splits, *, method: str | None = None, options: dict | None = None,
             fit_options: dict | None = None, seed: int | None = 0, fast: bool = False,
             dataset: str = "", progress: Callable[[str], None] | None = None,
             on_fit: Callable[[str, Any], None] | None = None, scheduler: Any = None,
             n_workers: int | None = None) -> EvaluationResult:
    """Fit ``model`` on each split's training set and score its test set.

    Parameters
    ----------
    model : str
        Registry name (see :func:`bayesrec.models.list_models`).
    splits : Split, or sequence of Split or (train, test) pairs
    method : str, optional
        Inference method (default: the model's default; ``"fit"`` for baselines).
    options, fit_options : dict, optional
        Model options and fit options, as for :func:`~bayesrec.models.make_recommender`.
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
    tasks = _fold_tasks(model, method, options, fit_options, fast, seed,
                        _as_split_list(splits), keep_recommender=on_fit is not None)
    rows = _run(tasks, [t.fold for t in tasks], scheduler=scheduler, n_workers=n_workers,
                say=progress or (lambda _msg: None), on_fit=on_fit)
    return _result(spec, method, options, fit_options, rows, seed=seed, fast=fast,
                   dataset=dataset, scheduler=scheduler)


# ----------------------------------------------------------------------------------------------
# grids of models and options
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Candidate:
    """One point of a grid: a model with its method, model options and fit options."""

    model: str
    method: str | None = None
    options: dict = field(default_factory=dict)
    fit_options: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        """``model/method`` followed by the options, e.g. ``pmf/map n_factors=5``."""
        parts = [f"{self.model}/{self.method or 'default'}"]
        parts += [f"{k}={_short(v)}" for k, v in sorted(self.options.items())]
        parts += [f"{k}={_short(v)}" for k, v in sorted(self.fit_options.items())]
        return " ".join(parts)


def _short(value: Any) -> str:
    return json.dumps(_jsonable(value), sort_keys=True, separators=(",", ":"))


def param_grid(model: str, method: str | list | None = None, *, options: dict | None = None,
               fit_options: dict | None = None) -> list[Candidate]:
    """Every combination of listed values, as :class:`Candidate` s for :func:`grid`.

    A value given as a ``list`` is an axis of the grid; any other value (a number,
    a string, a dict of priors, a tuple) is fixed.  ``method`` may be a list too.

    Examples
    --------
    >>> [c.label for c in param_grid("pmf", "map", options={"n_factors": [2, 5]})]
    ['pmf/map n_factors=2', 'pmf/map n_factors=5']
    """
    methods = method if isinstance(method, list) else [method]
    axes = [("options", k, v) for k, v in (options or {}).items()]
    axes += [("fit_options", k, v) for k, v in (fit_options or {}).items()]
    values = [v if isinstance(v, list) else [v] for _, _, v in axes]
    for (_, key, _), choices in zip(axes, values, strict=True):
        if not choices:
            raise InputError(f"param_grid: option {key!r} has an empty list of values")
    out = []
    for m in methods:
        for combo in itertools.product(*values):
            kw: dict[str, dict] = {"options": {}, "fit_options": {}}
            for (where, key, _), value in zip(axes, combo, strict=True):
                kw[where][key] = value
            out.append(Candidate(model, m, kw["options"], kw["fit_options"]))
    return out


def _as_candidate(c) -> Candidate:
    if isinstance(c, Candidate):
        return c
    if isinstance(c, str):
        return Candidate(c)
    if isinstance(c, dict):
        unknown = sorted(set(c) - {"model", "method", "options", "fit_options"})
        if unknown or "model" not in c:
            raise InputError(
                f"a grid candidate dict needs 'model' and may have 'method', 'options', "
                f"'fit_options'; got keys {sorted(c)}"
            )
        return Candidate(c["model"], c.get("method"), dict(c.get("options") or {}),
                         dict(c.get("fit_options") or {}))
    raise InputError(f"a grid candidate is a Candidate, a model name or a dict, got "
                     f"{type(c).__name__}")


@dataclass
class GridResult:
    """Scores of several candidates over the same folds: one :class:`EvaluationResult` each."""

    candidates: list[Candidate]
    results: list[EvaluationResult]

    @property
    def folds(self) -> pd.DataFrame:
        """Every (candidate, fold) row: ``candidate`` (index), ``label``, then FOLD_COLUMNS."""
        frames = [r.folds.assign(candidate=i, label=c.label)
                  for i, (c, r) in enumerate(zip(self.candidates, self.results, strict=True))]
        table = pd.concat(frames, ignore_index=True)
        return table[["candidate", "label", *FOLD_COLUMNS]]

    def summary(self) -> pd.DataFrame:
        """One row per candidate: model, method, label, folds, and the mean and sd of metrics."""
        rows = []
        for c, r in zip(self.candidates, self.results, strict=True):
            s = r.summary()
            row = {"model": r.model, "method": r.method, "label": c.label, "n_folds": len(r.folds)}
            for col in _TABLE_COLUMNS:
                row[f"{col}_mean"], row[f"{col}_sd"] = s.loc[col, "mean"], s.loc[col, "sd"]
            rows.append(row)
        return pd.DataFrame(rows)

    def best(self, metric: str = "rmse", *, lower_is_better: bool = True) -> EvaluationResult:
        """The result with the best mean ``metric`` over folds."""
        if metric not in FOLD_COLUMNS[1:]:
            raise InputError(f"unknown metric {metric!r}; choose from {', '.join(FOLD_COLUMNS[1:])}")
        means = [r.folds[metric].astype(float).mean() for r in self.results]
        pick = np.nanargmin(means) if lower_is_better else np.nanargmax(means)
        return self.results[int(pick)]

    def table(self) -> str:
        shown = self.summary()[["label", "n_folds", "rmse_mean", "rmse_sd", "mae_mean",
                                "coverage_90_mean", "fit_seconds_mean"]]
        return shown.to_string(index=False, float_format=lambda v: f"{v:.4f}")

    def to_json(self) -> dict:
        """Plain JSON: one :meth:`EvaluationResult.to_json` record per candidate, with its label."""
        return {"candidates": [{"label": c.label, **r.to_json()}
                               for c, r in zip(self.candidates, self.results, strict=True)]}


def grid(candidates, splits, *, seed: int | None = 0, fast: bool = False, dataset: str = "",
         progress: Callable[[str], None] | None = None, scheduler: Any = None,
         n_workers: int | None = None) -> GridResult:
    """Evaluate several models or option settings over the same folds, optionally on dask.

    Every (candidate, fold) pair is one task, so a cluster runs them all at once;
    each task carries ``seed``, so the scores equal those of calling
    :func:`evaluate` on each candidate one after the other.

    Parameters
    ----------
    candidates : sequence of Candidate, model name or dict
        For example ``param_grid("pmf", "map", options={"n_factors": [2, 5, 10]})
        + ["biases"]``; a dict has the keys ``model`` and optionally ``method``,
        ``options``, ``fit_options``.
    splits, seed, fast, dataset, progress, scheduler, n_workers
        As for :func:`evaluate`.

    Returns
    -------
    GridResult
    """
    candidates = [_as_candidate(c) for c in candidates]
    if not candidates:
        raise InputError("grid needs at least one candidate (a model name or a Candidate)")
    splits = _as_split_list(splits)
    check_scheduler(scheduler, n_workers=n_workers)
    resolved, tasks, labels = [], [], []
    for k, c in enumerate(candidates):  # validate every candidate before any work
        spec = get_spec(c.model)
        method = spec.resolve_method(c.method, fast=fast)
        make_recommender(c.model, method, options=c.options, fit_options=c.fit_options,
                         fast=fast, random_seed=seed)
        resolved.append((spec, method))
        candidates[k] = c = Candidate(c.model, method, dict(c.options), dict(c.fit_options))
        these = _fold_tasks(c.model, method, dict(c.options), dict(c.fit_options), fast, seed,
                            splits, keep_recommender=False)
        tasks += these
        labels += [f"{c.label} | {t.fold}" for t in these]
    rows = _run(tasks, labels, scheduler=scheduler, n_workers=n_workers,
                say=progress or (lambda _msg: None))
    n = len(splits)
    results = [
        _result(spec, method, c.options, c.fit_options, rows[k * n:(k + 1) * n], seed=seed,
                fast=fast, dataset=dataset, scheduler=scheduler)
        for k, (c, (spec, method)) in enumerate(zip(candidates, resolved, strict=True))
    ]
    return GridResult(candidates, results)


# ----------------------------------------------------------------------------------------------
# datasets
# ----------------------------------------------------------------------------------------------
def _check_kfold(kfold) -> int:
    if isinstance(kfold, bool) or not isinstance(kfold, (int, np.integer)) or kfold < 2:
        raise InputError(f"kfold must be an integer >= 2, got {kfold!r}")
    return int(kfold)


def read_ratings_file(path: str | Path) -> Ratings:
    """Ratings from a CSV/TSV file with a ``user,item,rating[,timestamp]`` header.

    A file without a header whose rows are three or four numbers (the MovieLens
    ``u.data`` layout) is read as user, item, rating[, timestamp].
    """
    path = Path(path)
    try:
        return Ratings.from_csv(path)
    except InputError:
        with path.open() as fh:
            fields = [f for f in re.split(r"[\t,;| ]+", fh.readline().strip()) if f]
        if not 3 <= len(fields) <= 4 or not all(_is_number(f) for f in fields):
            raise
    return Ratings.from_csv(path, names=["user", "item", "rating", "timestamp"][:len(fields)])


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def load_dataset(name: str, *, data_home=None, folds: Sequence[str] | None = None,
                 kfold: int | None = None, seed: int | None = 0) -> tuple[str, list]:
    """A dataset's description and its list of splits.

    Parameters
    ----------
    name : str
        ``"synthetic"`` (the embedded dataset), ``"ml-100k"`` (MovieLens 100K
        from ``data_home``) or the path of a CSV/TSV ratings file.
    data_home : path, optional
        Where MovieLens lives (see :func:`bayesrec.data.movielens.get_data_home`).
    folds : sequence of str, optional
        MovieLens's own folds (``u1``..``u5``, ``ua``, ``ub``); only for ``ml-100k``,
        where they are the default (u1..u5).
    kfold : int, optional
        Random k-fold cross-validation with ``seed`` (default 5 folds for datasets
        other than MovieLens).
    seed : int, optional
        Seed of the k-fold assignment.
    """
    from bayesrec.data.splits import kfold as kfold_splits

    if not isinstance(name, str) or not name:
        raise InputError(f"dataset must be 'synthetic', 'ml-100k' or a file path, got {name!r}")
    is_movielens = name.lower() in _MOVIELENS_NAMES
    if folds is not None and not is_movielens:
        raise InputError(
            f"folds (--folds) apply only to ml-100k, not to {name!r}; use kfold (--kfold K)"
        )
    if folds is not None and kfold is not None:
        raise InputError("give either folds (--folds) or kfold (--kfold), not both")
    if kfold is not None:
        kfold = _check_kfold(kfold)
    if is_movielens:
        from bayesrec.data.movielens import load_movielens, movielens_folds

        if kfold is not None:
            ratings = load_movielens("100k", data_home=data_home)
            return (f"ml-100k ({kfold}-fold, seed {seed})",
                    kfold_splits(ratings, k=kfold, seed=seed))
        names = tuple(folds) if folds is not None else MOVIELENS_FOLDS
        if not names:
            raise InputError("folds is empty; give MovieLens fold names such as u1,u2")
        return f"ml-100k ({','.join(names)})", movielens_folds(names, data_home=data_home)
    kfold = 5 if kfold is None else kfold
    if name.lower() == "synthetic":
        from bayesrec.data.synthetic import load_synthetic

        ratings, _truth = load_synthetic()
        return f"synthetic ({kfold}-fold, seed {seed})", kfold_splits(ratings, k=kfold, seed=seed)
    path = Path(name).expanduser()
    if not path.is_file():
        raise InputError(
            f"unknown dataset {name!r}: not 'synthetic' or 'ml-100k', and no file at {path}"
        )
    ratings = read_ratings_file(path)
    return f"{path.name} ({kfold}-fold, seed {seed})", kfold_splits(ratings, k=kfold, seed=seed)
