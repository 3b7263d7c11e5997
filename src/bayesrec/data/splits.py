"""Train/test splits of a :class:`~bayesrec.data.ratings.Ratings`.

Every split here is a *partition*: each rating lands in exactly one of train and
test.  Both halves keep the parent's id universe (they are built with
:meth:`Ratings.subset`), so user and item codes agree between them.  Users or
items that occur in a test set but have no training rating ("cold" ones) are
kept and reported by :attr:`Split.cold_users`, :attr:`Split.cold_items` and
:meth:`Split.report`, never dropped: how a model treats them is the model's
documented policy, not the splitter's.

Random splits take ``seed`` and draw from ``np.random.default_rng(seed)``, so the
same seed gives the same split.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
import pandas as pd

from bayesrec.data.ratings import Ratings
from bayesrec.errors import InputError

__all__ = ["Split", "holdout", "kfold", "leave_k_out", "temporal"]


@dataclass(frozen=True)
class Split:
    """A training set and a test set over the same id universe.

    ``train, test = split`` unpacks it.

    Parameters
    ----------
    train, test : Ratings
        The two halves; they must share users, items and scale.
    name : str
        A label for reports (``"fold1"``, ``"u1"``, ...).
    """

    train: Ratings
    test: Ratings
    name: str = "split"

    def __post_init__(self) -> None:
        for what in ("train", "test"):
            value = getattr(self, what)
            if not isinstance(value, Ratings):
                raise InputError(f"Split.{what} must be a Ratings, got {type(value).__name__}")
        if not self.train.same_universe(self.test):
            raise InputError(
                "train and test of a Split must share the id universe and scale (so codes "
                "agree); build both with parent.subset(...) or pass user_ids=/item_ids= "
                "of the parent to Ratings.from_arrays"
            )

    def __iter__(self) -> Iterator[Ratings]:
        yield self.train
        yield self.test

    @property
    def cold_users(self) -> pd.Index:
        """Ids of users that have test ratings but no training rating."""
        return self.test.users[_cold_codes(self.train.user, self.test.user)]

    @property
    def cold_items(self) -> pd.Index:
        """Ids of items that have test ratings but no training rating."""
        return self.test.items[_cold_codes(self.train.item, self.test.item)]

    def report(self) -> str:
        """One line: sizes of train and test, and the cold users and items in test."""
        cold_u = _cold_codes(self.train.user, self.test.user)
        cold_i = _cold_codes(self.train.item, self.test.item)
        n_cold_u = int(np.isin(self.test.user, cold_u).sum())
        n_cold_i = int(np.isin(self.test.item, cold_i).sum())
        n_train, n_test = len(self.train), len(self.test)
        share = n_test / max(n_train + n_test, 1)
        return (
            f"{self.name}: {n_train} train / {n_test} test ratings ({share:.1%} test); "
            f"test has {len(cold_u)} cold user(s) ({n_cold_u} ratings) and "
            f"{len(cold_i)} cold item(s) ({n_cold_i} ratings)"
        )


def _cold_codes(train_codes: np.ndarray, test_codes: np.ndarray) -> np.ndarray:
    """Codes present in test but absent from train, sorted."""
    return np.setdiff1d(np.unique(test_codes), train_codes)


def _split_by_mask(ratings: Ratings, in_test: np.ndarray, name: str) -> Split:
    return Split(ratings.subset(~in_test), ratings.subset(in_test), name=name)


def _check_ratings(ratings, func: str) -> None:
    if not isinstance(ratings, Ratings):
        raise InputError(
            f"{func}() needs a bayesrec.Ratings, got {type(ratings).__name__}; build one with "
            "Ratings.from_dataframe(...) or Ratings.from_arrays(...)"
        )


def _check_fraction(test_size, n: int) -> int:
    """Validate ``test_size`` in (0, 1) and return the number of test ratings."""
    if isinstance(test_size, bool) or not isinstance(test_size, Real):
        raise InputError(f"test_size must be a number in (0, 1), got {test_size!r}")
    if not 0 < test_size < 1:
        raise InputError(f"test_size must be strictly between 0 and 1, got {test_size!r}")
    n_test = int(round(float(test_size) * n))
    if n_test < 1 or n_test > n - 1:
        raise InputError(
            f"test_size={test_size!r} of {n} rating(s) leaves an empty "
            f"{'test' if n_test < 1 else 'training'} set; use a larger data set or another "
            "test_size"
        )
    return n_test


def _check_int(value, what: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise InputError(f"{what} must be an integer, got {value!r}")
    if value < minimum:
        raise InputError(f"{what} must be at least {minimum}, got {value}")
    return int(value)


def holdout(ratings: Ratings, test_size: float = 0.2, *, seed=None) -> Split:
    """A random share of the ratings as the test set.

    Parameters
    ----------
    ratings : Ratings
    test_size : float
        Share of ratings in the test set, strictly between 0 and 1 (rounded to a
        count; both sets must end up non-empty).
    seed : int or numpy Generator seed, optional

    Returns
    -------
    Split
        Named ``"holdout"``.
    """
    _check_ratings(ratings, "holdout")
    n = len(ratings)
    n_test = _check_fraction(test_size, n)
    rng = np.random.default_rng(seed)
    in_test = np.zeros(n, dtype=bool)
    in_test[rng.permutation(n)[:n_test]] = True
    return _split_by_mask(ratings, in_test, "holdout")


def kfold(ratings: Ratings, k: int = 5, *, seed=None) -> list[Split]:
    """K-fold cross-validation: the ratings shuffled and cut into ``k`` test sets.

    The test sets are disjoint and together hold every rating once; their sizes
    differ by at most one.  The splits are named ``"fold1"`` .. ``"fold{k}"``.
    """
    _check_ratings(ratings, "kfold")
    k = _check_int(k, "k", 2)
    n = len(ratings)
    if k > n:
        raise InputError(f"k={k} folds need at least {k} ratings, but there are {n}")
    rng = np.random.default_rng(seed)
    fold_of = np.empty(n, dtype=np.int64)
    for fold, positions in enumerate(np.array_split(rng.permutation(n), k)):
        fold_of[positions] = fold
    return [_split_by_mask(ratings, fold_of == f, f"fold{f + 1}") for f in range(k)]


def leave_k_out(ratings: Ratings, k: int = 1, *, seed=None, min_train: int = 1) -> Split:
    """For each user, ``k`` random ratings go to the test set.

    Users with fewer than ``k + min_train`` ratings keep all of them in the
    training set (and so have no test ratings).

    Parameters
    ----------
    ratings : Ratings
    k : int
        Test ratings per eligible user (at least 1).
    seed : optional
        Seed for the choice of held-out ratings.
    min_train : int
        Ratings an eligible user must keep in training (at least 0).

    Returns
    -------
    Split
        Named ``"leave_{k}_out"``.
    """
    _check_ratings(ratings, "leave_k_out")
    k = _check_int(k, "k", 1)
    min_train = _check_int(min_train, "min_train", 0)
    counts = ratings.user_counts()
    eligible = counts >= k + min_train
    if not eligible[ratings.user].any():
        raise InputError(
            f"no user has at least k + min_train = {k + min_train} ratings, so the test set "
            f"would be empty (the most active user has {int(counts.max())}); lower k or min_train"
        )
    rng = np.random.default_rng(seed)
    rank = _rank_within_user(ratings.user, rng.random(len(ratings)))
    in_test = (rank < k) & eligible[ratings.user]
    return _split_by_mask(ratings, in_test, f"leave_{k}_out")


def _rank_within_user(user: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Rank (0, 1, ...) of each rating among its user's ratings, ordered by ``key``."""
    order = np.lexsort((key, user))
    sorted_user = user[order]
    starts = np.flatnonzero(np.r_[True, sorted_user[1:] != sorted_user[:-1]])
    group_start = np.repeat(starts, np.diff(np.r_[starts, len(user)]))
    rank = np.empty(len(user), dtype=np.int64)
    rank[order] = np.arange(len(user)) - group_start
    return rank


def temporal(ratings: Ratings, test_size: float = 0.2, *, per_user: bool = False) -> Split:
    """The most recent ratings as the test set.

    Parameters
    ----------
    ratings : Ratings
        Must carry timestamps.
    test_size : float
        Share of ratings in the test set, strictly between 0 and 1.
    per_user : bool
        False (default): one global cut-off; the latest ``test_size`` share of all
        ratings is the test set, so every test rating is at least as recent as every
        training rating.  True: for each user, the latest ``round(test_size * n_u)``
        of their ``n_u`` ratings go to test, keeping at least one in training.

    Ties in time are broken by position (later rows count as later).  No randomness.

    Returns
    -------
    Split
        Named ``"temporal"`` or ``"temporal_per_user"``.
    """
    _check_ratings(ratings, "temporal")
    if ratings.timestamp is None:
        raise InputError(
            "temporal() needs timestamps, but these ratings have none; build them with "
            "timestamps= (Ratings.from_arrays) or a timestamp column (from_dataframe)"
        )
    n = len(ratings)
    n_test = _check_fraction(test_size, n)
    position = np.arange(n)
    if not per_user:
        order = np.lexsort((position, ratings.timestamp))
        in_test = np.zeros(n, dtype=bool)
        in_test[order[n - n_test:]] = True
        return _split_by_mask(ratings, in_test, "temporal")
    # rank from the latest: order by (-time, -position) within user
    reverse_time = np.empty(n, dtype=np.int64)
    reverse_time[np.lexsort((position, ratings.timestamp))] = np.arange(n)[::-1]
    rank_from_latest = _rank_within_user(ratings.user, reverse_time)
    counts = ratings.user_counts()[ratings.user]
    n_test_user = np.minimum(np.floor(test_size * counts + 0.5), counts - 1)
    in_test = rank_from_latest < n_test_user
    if not in_test.any():
        raise InputError(
            f"temporal(per_user=True, test_size={test_size!r}) puts no rating in the test set: "
            "every user has too few ratings; use a larger test_size or per_user=False"
        )
    return _split_by_mask(ratings, in_test, "temporal_per_user")
