"""Fit and score a registered model over folds: the engine of ``bayesrec evaluate``.

:func:`evaluate` makes a fresh recommender per fold with
:func:`~bayesrec.models.make_recommender`, times ``fit`` and ``predict``
separately, scores the held-out pairs with :func:`bayesrec.metrics.score` and
returns an :class:`EvaluationResult` (one row per fold, summaries, a printable
table and a JSON record with the settings and package versions).
:func:`load_dataset` turns a dataset name (``synthetic``, ``ml-100k`` or a file
path) into a description and a list of splits.
"""

from __future__ import annotations

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

__all__ = [
    "EvaluationResult",
    "evaluate",
    "load_dataset",
    "read_ratings_file",
    "versions",
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


def evaluate(model: str, splits, *, method: str | None = None, options: dict | None = None,
             fit_options: dict | None = None, seed: int | None = 0, fast: bool = False,
             dataset: str = "", progress: Callable[[str], None] | None = None,
             on_fit: Callable[[str, Any], None] | None = None) -> EvaluationResult:
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
        Random seed of every fold's recommender (the same for each fold).
    fast : bool
        Start from the model's fast settings.
    dataset : str
        Description recorded in the result.
    progress : callable, optional
        Called with a line of text before each fit and after each fold's scoring.
    on_fit : callable, optional
        Called as ``on_fit(fold_name, recommender)`` after each fold's fit (for
        example to save a Bayesian recommender's ``fit_``).

    Returns
    -------
    EvaluationResult
    """
    spec = get_spec(model)
    method = spec.resolve_method(method, fast=fast)
    options, fit_options = dict(options or {}), dict(fit_options or {})
    make_recommender(model, method, options=options, fit_options=fit_options, fast=fast,
                     random_seed=seed)  # validates names and options before any work
    if hasattr(splits, "train") and hasattr(splits, "test"):
        splits = [splits]
    splits = list(splits)
    if not splits:
        raise InputError("no splits to evaluate on; give at least one (train, test) split")
    say = progress or (lambda _msg: None)
    rows = []
    for position, split in enumerate(splits):
        name, train, test = _unpack(split, position)
        say(f"[{name}] fitting {model}/{method} on {len(train)} ratings ...")
        recommender = make_recommender(model, method, options=options, fit_options=fit_options,
                                       fast=fast, random_seed=seed)
        start = time.perf_counter()
        recommender.fit(train)
        fit_seconds = time.perf_counter() - start
        if on_fit is not None:
            on_fit(name, recommender)
        start = time.perf_counter()
        prediction = recommender.predict_ratings(test)
        predict_seconds = time.perf_counter() - start
        scores = score(prediction, test)
        n_cold_users, n_cold_items = _cold_counts(train, test)
        rows.append({"fold": name, **scores, "fit_seconds": fit_seconds,
                     "predict_seconds": predict_seconds, "n_train": len(train),
                     "n_test": len(test), "n_cold_users": n_cold_users,
                     "n_cold_items": n_cold_items})
        say(f"[{name}] rmse {scores['rmse']:.4f}  mae {scores['mae']:.4f}  accuracy "
            f"{scores['accuracy']:.4f}  coverage_90 {scores['coverage_90']:.3f}  "
            f"(fit {fit_seconds:.2f} s, predict {predict_seconds:.2f} s)")
    _, resolved, used_fit = spec.resolve(method, options=options, fit_options=fit_options,
                                         fast=fast)
    used_options = {**spec.options(), **resolved}
    used_options.pop("random_seed", None)  # recorded as `seed`
    return EvaluationResult(
        folds=pd.DataFrame(rows, columns=list(FOLD_COLUMNS)), model=model, method=method,
        dataset=dataset, options=used_options, fit_options=used_fit if spec.kind != "baseline"
        else {}, seed=seed, fast=fast,
    )


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
