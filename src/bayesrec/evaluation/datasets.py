"""Data sets by name: the embedded one, MovieLens 100K and its folds, or a ratings file."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bayesrec.data.movielens import ML100K_FILES, get_data_home, load_movielens, movielens_folds
from bayesrec.data.ratings import Ratings
from bayesrec.data.scale import RatingScale
from bayesrec.data.simulate import load_synthetic
from bayesrec.data.splits import Split, holdout
from bayesrec.data.splits import kfold as kfold_splits
from bayesrec.errors import InputError

__all__ = [
    "MOVIELENS_FOLDS",
    "MOVIELENS_NAMES",
    "dataset_inputs",
    "example_split",
    "load_dataset",
    "parse_scale",
    "read_ratings_file",
]

#: The five-fold cross-validation that ships with MovieLens 100K.
MOVIELENS_FOLDS = ("u1", "u2", "u3", "u4", "u5")
#: Names that mean MovieLens 100K.
MOVIELENS_NAMES = ("ml-100k", "ml100k", "movielens", "movielens-100k")


def _check_kfold(kfold) -> int:
    if isinstance(kfold, bool) or not isinstance(kfold, (int, np.integer)) or kfold < 2:
        raise InputError(f"kfold must be an integer >= 2, got {kfold!r}")
    return int(kfold)


def _check_seed(seed) -> None:
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))
                             or seed < 0):
        raise InputError(f"seed must be a non-negative integer (or None), got {seed!r}")


_MAX_LEVELS = 10_000
_SCALE_RANGE = re.compile(r"\s*(-?[0-9.]+)\s*-\s*(-?[0-9.]+)\s*(?::\s*([0-9.]+))?\s*")


def parse_scale(text: str) -> RatingScale:
    """A rating scale from text: ``"1-5"`` (integers), ``"0.5-5:0.5"`` (low-high:step) or a
    list of levels ``"1,2,3,4,5"``."""
    spec = str(text)
    try:
        if "," in spec:
            return RatingScale.from_levels(float(v) for v in spec.split(",") if v.strip())
        match = _SCALE_RANGE.fullmatch(spec)
        if match is None:
            raise ValueError
        low, high, step = match.groups()
        low, high = float(low), float(high)
        if step is not None and not float(step) > 0:
            raise InputError("the step must be positive")
        if (high - low) / float(step or 1) > _MAX_LEVELS:
            raise InputError(f"more than {_MAX_LEVELS:,} levels")
        if step is not None:
            return RatingScale.stars(low, high, float(step))
        if not (low.is_integer() and high.is_integer()):
            raise ValueError
        return RatingScale.integers(int(low), int(high))
    except (ValueError, OverflowError) as exc:
        detail = f" ({exc})" if isinstance(exc, InputError) else ""
        raise InputError(f"a rating scale looks like 1-5 (integers), 0.5-5:0.5 (low-high:step) "
                         f"or 1,2,3,4,5 (the levels); got {text!r}{detail}") from None


def dataset_inputs(name: str, *, data_home=None) -> list[Path]:
    """The files and folders a dataset named as for :func:`load_dataset` is read from
    (nothing may be written over them): a ratings file, or MovieLens's folder, archive
    and files in the data home; none for the embedded dataset."""
    if not isinstance(name, str) or name.lower() == "synthetic":
        return []
    if name.lower() in MOVIELENS_NAMES:
        home = get_data_home(data_home)
        return [home / "ml-100k", home / "ml-100k.zip", *(home / f for f in ML100K_FILES)]
    return [Path(name).expanduser()]


def read_ratings_file(path: str | Path, *, id_type="str", user: str = "user", item: str = "item",
                      rating: str = "rating", scale=None, duplicates: str = "error",
                      encoding: str = "utf-8") -> Ratings:
    """Ratings from a CSV/TSV file with a ``user,item,rating[,timestamp]`` header.

    A file without a header whose rows are three or four numbers (the MovieLens
    ``u.data`` layout) is read as user, item, rating[, timestamp].  Ids are read as
    the strings in the file unless ``id_type`` asks for conversion; ``user``,
    ``item``, ``rating`` name the columns, and ``scale``, ``duplicates`` and
    ``encoding`` are as for :meth:`~bayesrec.data.Ratings.from_csv`.
    """
    path = Path(path)
    read = {"id_type": id_type, "scale": scale, "duplicates": duplicates, "encoding": encoding}
    try:
        return Ratings.from_csv(path, user=user, item=item, rating=rating, **read)
    except InputError:
        try:
            with path.open(encoding="utf-8", errors="replace") as fh:
                fields = [f for f in re.split(r"[\t,;| ]+", fh.readline().strip()) if f]
        except OSError:
            raise
        if not 3 <= len(fields) <= 4 or not all(_is_number(f) for f in fields):
            raise
    return Ratings.from_csv(path, names=["user", "item", "rating", "timestamp"][:len(fields)],
                            **read)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def load_dataset(name: str, *, data_home=None, folds: Sequence[str] | None = None,
                 kfold: int | None = None, seed: int | None = 0,
                 read_options: dict | None = None) -> tuple[str, list]:
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
    read_options : dict, optional
        For a ratings file: keywords of :func:`read_ratings_file` (``id_type``,
        ``user``, ``item``, ``rating``, ``scale``, ``duplicates``, ``encoding``).
    """
    _check_seed(seed)
    if not isinstance(name, str) or not name:
        raise InputError(f"dataset must be 'synthetic', 'ml-100k' or a file path, got {name!r}")
    is_movielens = name.lower() in MOVIELENS_NAMES
    if folds is not None and not is_movielens:
        raise InputError(
            f"folds (--folds) apply only to ml-100k, not to {name!r}; use kfold (--kfold K)"
        )
    if folds is not None and kfold is not None:
        raise InputError("give either folds (--folds) or kfold (--kfold), not both")
    if kfold is not None:
        kfold = _check_kfold(kfold)
    if read_options and (is_movielens or name.lower() == "synthetic"):
        raise InputError(f"reading options ({', '.join(sorted(read_options))}) apply to a "
                         f"ratings file, not to {name!r}")
    if is_movielens:
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
        ratings, _truth = load_synthetic()
        return f"synthetic ({kfold}-fold, seed {seed})", kfold_splits(ratings, k=kfold, seed=seed)
    path = Path(name).expanduser()
    try:
        found = path.is_file()
    except OSError as exc:  # a folder on the way that cannot be read
        raise InputError(f"cannot look for {path}: {exc.strerror or exc}; make its folder "
                         "readable by this user") from None
    if not found:
        raise InputError(
            f"unknown dataset {name!r}: not 'synthetic' or 'ml-100k', and no file at {path}"
        )
    ratings = read_ratings_file(path, **(read_options or {}))
    return f"{path.name} ({kfold}-fold, seed {seed})", kfold_splits(ratings, k=kfold, seed=seed)


def example_split(fast: bool = False, *, data_home=None):
    """The split the gallery notebooks use: MovieLens 100K fold u1, or a small simulated one.

    ``fast=False`` reads fold u1 from the data home (``data_home``, else
    ``$BAYESREC_DATA``, else the user cache folder) and fails with the loader's message
    when it is missing: no silent substitution.  ``fast=True`` (the notebooks' CI mode)
    is 4,000 ratings of 150 users and 120 items from :func:`load_synthetic`, 80/20
    holdout with seed 0, and its name says that it is not MovieLens.
    """
    if fast:
        ratings, _ = load_synthetic(n_users=150, n_items=120, n_ratings=4000)
        split = holdout(ratings, 0.2, seed=0)
        return Split(split.train, split.test,
                     name="fast mode: small synthetic data, not MovieLens")
    u1 = movielens_folds(["u1"], data_home=data_home)[0]
    return Split(u1.train, u1.test, name="MovieLens 100K, fold u1")
