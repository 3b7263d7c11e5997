"""Several candidates (models, or one model under several options) over the same folds."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from bayesrec.errors import InputError
from bayesrec.evaluation.folds import (
    FOLD_COLUMNS,
    TABLE_COLUMNS,
    EvaluationResult,
    as_split_list,
    evaluation_result,
    fold_tasks,
    run_fold_tasks,
)
from bayesrec.evaluation.parallel import check_scheduler
from bayesrec.evaluation.records import jsonable
from bayesrec.models.registry import get_spec
from bayesrec.recommenders import make_recommender

__all__ = ["Candidate", "GridResult", "grid", "param_grid"]


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
    return json.dumps(jsonable(value), sort_keys=True, separators=(",", ":"))


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
            for col in TABLE_COLUMNS:
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
    splits = as_split_list(splits)
    check_scheduler(scheduler, n_workers=n_workers)
    resolved, tasks, labels = [], [], []
    for k, c in enumerate(candidates):  # validate every candidate before any work
        spec = get_spec(c.model)
        method = spec.resolve_method(c.method, fast=fast)
        make_recommender(c.model, method, options=c.options, fit_options=c.fit_options,
                         fast=fast, random_seed=seed)
        resolved.append((spec, method))
        candidates[k] = c = Candidate(c.model, method, dict(c.options), dict(c.fit_options))
        these = fold_tasks(c.model, method, dict(c.options), dict(c.fit_options), fast, seed,
                            splits, keep_recommender=False)
        tasks += these
        labels += [f"{c.label} | {t.fold}" for t in these]
    rows = run_fold_tasks(tasks, labels, scheduler=scheduler, n_workers=n_workers,
                say=progress or (lambda _msg: None))
    n = len(splits)
    results = [
        evaluation_result(spec, method, c.options, c.fit_options, rows[k * n:(k + 1) * n], seed=seed,
                fast=fast, dataset=dataset, scheduler=scheduler)
        for k, (c, (spec, method)) in enumerate(zip(candidates, resolved, strict=True))
    ]
    return GridResult(candidates, results)
