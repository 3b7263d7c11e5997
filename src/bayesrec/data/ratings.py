"""The ratings container: ids, codes, scale and validation, in one place.

Everything downstream (models, baselines, splits, metrics, the CLI) takes a
:class:`Ratings`; nothing else maps ids to codes or checks rating values.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from bayesrec.data import _csv
from bayesrec.data._files import is_file
from bayesrec.data.ids import id_array, py_value, type_mismatch
from bayesrec.data.scale import RatingScale
from bayesrec.errors import InputError, UnknownIdError

__all__ = ["Ratings"]

DuplicatePolicy = Literal["error", "last", "mean"]
_DUPLICATE_POLICIES = ("error", "last", "mean")


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.flags.writeable = False
    return a


def _as_index(ids: Iterable[Hashable], what: str) -> pd.Index:
    index = pd.Index(list(ids) if not isinstance(ids, (pd.Index, np.ndarray)) else ids)
    if index.hasnans:
        raise InputError(f"the declared {what} ids contain a missing value (NaN/None)")
    if not index.is_unique:
        dup = index[index.duplicated()].unique()[:5].tolist()
        raise InputError(f"the declared {what} ids are not unique, for example {dup}")
    return index


def _factorize(ids: np.ndarray, what: str, universe: pd.Index | None) -> tuple[np.ndarray, pd.Index]:
    """Map raw ids to contiguous codes, sorted by id when the ids can be sorted."""
    ids = np.asarray(ids)
    if pd.isna(ids).any():
        bad = np.flatnonzero(pd.isna(ids))[:5].tolist()
        raise InputError(f"missing {what} id (NaN/None) at position(s) {bad}")
    if universe is not None:
        codes = universe.get_indexer(ids)
        if (codes < 0).any():
            unknown = pd.unique(np.asarray(ids, dtype=object)[codes < 0])
            mismatch = type_mismatch(universe, unknown, what)
            if mismatch is not None:
                raise mismatch
            raise UnknownIdError(
                f"{int((codes < 0).sum())} rating(s) have a {what} id missing from the declared "
                f"{what}s, for example {unknown[:5].tolist()}"
            )
        return codes.astype(np.int64), universe
    try:
        codes, uniques = pd.factorize(ids, sort=True)
    except TypeError:  # ids of mixed, unorderable types: keep order of first appearance
        codes, uniques = pd.factorize(ids, sort=False)
    return codes.astype(np.int64), pd.Index(uniques)


def _require_columns(df: pd.DataFrame, user, item, rating, timestamp, where: str,
                     hint: str) -> None:
    """Raise naming the rating columns that ``df`` lacks."""
    wanted = {"user": user, "item": item, "rating": rating}
    if timestamp is not None:
        wanted["timestamp"] = timestamp
    missing = [f"{k}={v!r}" for k, v in wanted.items() if v not in df.columns]
    if missing:
        raise InputError(f"column(s) {', '.join(missing)} not in {where}, whose columns are "
                         f"{list(df.columns)}; {hint}")


@dataclass(frozen=True, eq=False)
class Ratings:
    """Explicit ratings: who rated what, how, and on which scale.

    Raw user and item ids (any hashable values) are mapped once to contiguous
    integer *codes*: ``users[code]`` gives the id back, :meth:`user_codes_of` the
    codes of ids.  The id universe (``users``, ``items``) may be larger than the
    ids that occur in the ratings: subsets and splits keep their parent's
    universe, so codes agree between a training and a test set, and users with
    no training ratings are still known to the models.

    Build one with :meth:`from_dataframe`, :meth:`from_arrays` or
    :meth:`from_csv`; they validate the data and raise
    :class:`~bayesrec.errors.InputError` naming any problem.

    Ids keep their value *and type*, whatever their source:

    * the integer ``1`` and the string ``"1"`` are two different ids, and a
      universe may mix types (``from_arrays([1, "a"], ...)`` keeps ``1`` an int
      and ``"a"`` a str);
    * :meth:`from_csv` reads ids as the strings in the file (``"007"``,
      ``"1.0"``, ``"NA"`` stay as written; only an empty field is a missing id),
      unless ``id_type="int"`` asks for integers;
      :func:`~bayesrec.data.movielens.load_movielens` gives the MovieLens
      integer ids;
    * :meth:`user_codes_of` and :meth:`item_codes_of` are the one place ids
      become codes.  An unknown id spelled like a known id of another type
      (``"1"`` where the users are integers, or ``1`` where they are strings)
      raises :class:`~bayesrec.errors.UnknownIdError` saying so, even with
      ``unknown="mask"``: a type mismatch is never taken for a new id.  Pass
      ids as lists or object arrays: ``np.asarray([14, "a"])`` has already
      turned 14 into ``"14"``.

    Attributes
    ----------
    user : ndarray of int64
        User code of each rating.
    item : ndarray of int64
        Item code of each rating.
    rating : ndarray of float64
        Rating values, all on ``scale``.
    users, items : pandas.Index
        The id universe, in code order.
    scale : RatingScale
        The values a rating may take.
    timestamp : ndarray or None
        Optional time of each rating (any orderable numeric or datetime64 values).
    item_info, user_info : DataFrame or None
        Optional metadata indexed by id (titles, genres, ...), for display only.
    """

    user: np.ndarray
    item: np.ndarray
    rating: np.ndarray
    users: pd.Index
    items: pd.Index
    scale: RatingScale
    timestamp: np.ndarray | None = None
    item_info: pd.DataFrame | None = field(default=None, repr=False)
    user_info: pd.DataFrame | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        for name in ("user", "item", "rating"):
            object.__setattr__(self, name, _readonly(getattr(self, name)))
        if self.timestamp is not None:
            object.__setattr__(self, "timestamp", _readonly(self.timestamp))

    # ------------------------------------------------------------------------------------------
    # constructors
    # ------------------------------------------------------------------------------------------
    @classmethod
    def from_arrays(
        cls,
        users: Sequence[Hashable] | np.ndarray,
        items: Sequence[Hashable] | np.ndarray,
        ratings: Sequence[float] | np.ndarray,
        *,
        timestamps: Sequence | np.ndarray | None = None,
        scale: RatingScale | Sequence[float] | str | None = None,
        duplicates: DuplicatePolicy = "error",
        user_ids: Iterable[Hashable] | None = None,
        item_ids: Iterable[Hashable] | None = None,
        item_info: pd.DataFrame | None = None,
        user_info: pd.DataFrame | None = None,
    ) -> Ratings:
        """Validate raw arrays and build a :class:`Ratings`.

        Parameters
        ----------
        users, items, ratings : array-like
            One entry per rating.  Ids may be any hashable values.
        timestamps : array-like, optional
            Time of each rating (numbers or datetimes); needed for temporal splits.
        scale : RatingScale, sequence of levels, ``"low-high"`` string, or None
            The rating scale.  ``None`` infers it (see :meth:`RatingScale.infer`).
        duplicates : {"error", "last", "mean"}
            What to do with repeated (user, item) pairs: raise (default), keep the
            last one (by timestamp when given, else by position), or average them
            (the mean is snapped to the nearest level of a discrete scale).
        user_ids, item_ids : iterable, optional
            Declare the id universe (for instance a training set's); every id in
            the data must belong to it.  By default it is the sorted distinct ids
            (in order of first appearance when they cannot be sorted).

        Ids keep their type: a list mixing types (``[1, "a", 2.5]``) is kept as
        Python objects rather than letting numpy convert them all to one type.
        """
        if duplicates not in _DUPLICATE_POLICIES:
            raise InputError(
                f"duplicates must be one of {_DUPLICATE_POLICIES}, got {duplicates!r}"
            )
        users = cls._as_ids(users, "users")
        items = cls._as_ids(items, "items")
        ratings = cls._as_1d(ratings, "ratings")
        lengths = {"users": len(users), "items": len(items), "ratings": len(ratings)}
        if timestamps is not None:
            timestamps = cls._as_1d(timestamps, "timestamps")
            lengths["timestamps"] = len(timestamps)
        if len(set(lengths.values())) > 1:
            raise InputError(f"mismatched lengths: {lengths}; give one entry per rating")
        if len(ratings) == 0:
            raise InputError("empty data: there are no ratings")

        values = cls._check_values(ratings)
        scale, values = cls._check_scale(scale, values)
        if timestamps is not None and pd.isna(timestamps).any():
            bad = np.flatnonzero(pd.isna(timestamps))[:5].tolist()
            raise InputError(f"missing timestamp (NaN/NaT) at position(s) {bad}")

        universe_u = _as_index(user_ids, "user") if user_ids is not None else None
        universe_i = _as_index(item_ids, "item") if item_ids is not None else None
        ucodes, uindex = _factorize(users, "user", universe_u)
        icodes, iindex = _factorize(items, "item", universe_i)

        ucodes, icodes, values, timestamps = cls._resolve_duplicates(
            ucodes, icodes, values, timestamps, duplicates, scale, uindex, iindex
        )
        return cls(
            user=ucodes,
            item=icodes,
            rating=values,
            users=uindex,
            items=iindex,
            scale=scale,
            timestamp=timestamps,
            item_info=item_info,
            user_info=user_info,
        )

    @classmethod
    def from_dataframe(
        cls,
        df: pd.DataFrame,
        user: str = "user",
        item: str = "item",
        rating: str = "rating",
        scale: RatingScale | Sequence[float] | str | None = None,
        *,
        timestamp: str | None = None,
        duplicates: DuplicatePolicy = "error",
        user_ids: Iterable[Hashable] | None = None,
        item_ids: Iterable[Hashable] | None = None,
    ) -> Ratings:
        """Build from a DataFrame with one row per rating.

        ``timestamp`` names an optional column of times; when not given, a column
        called ``"timestamp"`` is used if present.
        """
        if not isinstance(df, pd.DataFrame):
            raise InputError(f"from_dataframe needs a pandas DataFrame, got {type(df).__name__}")
        if timestamp is None and "timestamp" in df.columns:
            timestamp = "timestamp"
        _require_columns(df, user, item, rating, timestamp, "the DataFrame",
                         "name them with user=, item=, rating=")
        return cls.from_arrays(
            df[user].to_numpy(),
            df[item].to_numpy(),
            df[rating].to_numpy(),
            timestamps=df[timestamp].to_numpy() if timestamp is not None else None,
            scale=scale,
            duplicates=duplicates,
            user_ids=user_ids,
            item_ids=item_ids,
        )

    @classmethod
    def from_csv(
        cls,
        path: str | Path,
        *,
        sep: str | None = None,
        user: str = "user",
        item: str = "item",
        rating: str = "rating",
        timestamp: str | None = None,
        names: Sequence[str] | None = None,
        scale: RatingScale | Sequence[float] | str | None = None,
        duplicates: DuplicatePolicy = "error",
        id_type: _csv.IdType | Mapping[str, _csv.IdType] = "str",
        encoding: str = "utf-8",
    ) -> Ratings:
        """Read a CSV or TSV file with one rating per row.

        Parameters
        ----------
        path : path
            The file.
        sep : str, optional
            The separator.  By default tab for the extensions ``.tsv``,
            ``.data``, ``.tab``, ``.base`` and ``.test``, else the commonest of
            tab, ``,``, ``;`` and ``|`` in the first line (whitespace if none).
        user, item, rating : str
            Column names.
        timestamp : str, optional
            Column of times (numbers, or ISO 8601 dates read as UTC datetimes);
            a column called ``"timestamp"`` is used if present.
        names : sequence of str, optional
            Column names for a file without a header row.
        scale, duplicates
            As for :meth:`from_arrays`; ``duplicates="last"`` or ``"mean"``
            resolves repeated (user, item) pairs.
        id_type : {"str", "int"} or dict
            Ids are read as the exact strings in the file (the default): no
            number conversion, no missing-value markers (``"007"``, ``"1.0"``,
            ``"NA"`` and ``"None"`` are ids as written); an empty field is a
            missing id and an error.  ``"int"`` converts them to integers and
            raises :class:`InputError` if one is not an integer; ids that differ
            only in leading zeros or sign then become the same id.  A dict such
            as ``{"user": "int", "item": "str"}`` sets each column.
        encoding : str
            The file's text encoding (default UTF-8).

        Raises
        ------
        InputError
            Naming the file and the problem: missing, unreadable, empty, not in
            ``encoding``, malformed rows, missing columns, empty or non-integer
            ids, or any check of :meth:`from_arrays`.
        """
        path = Path(path)
        types = _csv.id_types(id_type)
        if not is_file(path):
            raise InputError(f"no ratings file at {path}")
        times = timestamp if timestamp is not None else "timestamp"
        df = _csv.read_table(path, sep=sep, names=names, id_columns=(user, item),
                             number_columns=(rating, times), encoding=encoding)
        _require_columns(df, user, item, rating, timestamp, str(path),
                         "name them with user=, item=, rating= (or give names= for a file "
                         "without a header row)")
        if df.empty:
            raise InputError(f"empty data: {path} has no rating rows")
        return cls.from_arrays(
            _csv.parse_ids(df[user], "user", types["user"], path),
            _csv.parse_ids(df[item], "item", types["item"], path),
            df[rating].to_numpy(),
            timestamps=_csv.parse_times(df[times], path) if times in df.columns else None,
            scale=scale,
            duplicates=duplicates,
        )

    # ------------------------------------------------------------------------------------------
    # validation helpers
    # ------------------------------------------------------------------------------------------
    @staticmethod
    def _as_1d(x, what: str) -> np.ndarray:
        if isinstance(x, (str, bytes)) or np.ndim(x) == 0:
            raise InputError(f"{what} must be a one-dimensional array-like, got {type(x).__name__}")
        arr = np.asarray(x) if not isinstance(x, (pd.Series, pd.Index)) else x.to_numpy()
        if arr.dtype.kind == "U" and arr.ndim == 1 and not isinstance(x, np.ndarray):
            # numpy turns a list mixing numbers and strings into strings ([1, "a"] ->
            # ["1", "a"]) and drops trailing NULs; keep each value as given so ids
            # round-trip unchanged
            values = list(x)
            arr = np.empty(len(values), dtype=object)
            arr[:] = values
        if arr.ndim != 1:
            raise InputError(f"{what} must be one-dimensional, got shape {arr.shape}")
        return arr

    @classmethod
    def _as_ids(cls, x, what: str) -> np.ndarray:
        """Like :meth:`_as_1d`, but a list of ids of mixed types stays Python objects."""
        arr = cls._as_1d(x, what)
        if arr.dtype != object and not isinstance(x, (np.ndarray, pd.Series, pd.Index)):
            values = list(x)
            if len({type(py_value(v)) for v in values}) > 1:  # numpy made them one type
                arr = pd.Index(values, dtype=object, tupleize_cols=False).to_numpy()
        return arr

    @staticmethod
    def _check_values(ratings: np.ndarray) -> np.ndarray:
        if ratings.dtype == bool or ratings.dtype.kind not in "iuf":
            try:
                values = pd.to_numeric(pd.Series(ratings), errors="raise").to_numpy(dtype=float)
            except (TypeError, ValueError):
                bad = [r for r in ratings[:1000] if not isinstance(r, (int, float, np.number))][:3]
                raise InputError(
                    f"ratings must be numbers, got dtype {ratings.dtype} with values like {bad}"
                ) from None
            if ratings.dtype == bool:
                raise InputError("ratings must be numbers, got booleans")
        else:
            values = ratings.astype(np.float64)
        if np.isnan(values).any():
            bad = np.flatnonzero(np.isnan(values))
            raise InputError(
                f"{len(bad)} rating(s) are NaN (missing), at position(s) {bad[:5].tolist()}; "
                "drop the rows without a rating first"
            )
        if np.isinf(values).any():
            bad = np.flatnonzero(np.isinf(values))
            raise InputError(
                f"{len(bad)} rating(s) are infinite, at position(s) {bad[:5].tolist()}"
            )
        return values

    @staticmethod
    def _check_scale(scale, values: np.ndarray) -> tuple[RatingScale, np.ndarray]:
        try:
            scale = RatingScale.coerce(scale, values)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        off = ~scale.contains(values)
        if off.any():
            pos = np.flatnonzero(off)
            raise InputError(
                f"{len(pos)} rating(s) are off the rating scale {scale}: values "
                f"{np.unique(values[pos])[:5].tolist()} at position(s) {pos[:5].tolist()}; "
                "fix the data or declare the right scale="
            )
        if scale.levels is not None:  # store exact level values (no float fuzz)
            values = scale.snap(values)
        return scale, values

    @staticmethod
    def _resolve_duplicates(ucodes, icodes, values, timestamps, policy, scale, uindex, iindex):
        n_items = max(len(iindex), 1)
        key = ucodes * n_items + icodes
        order = np.argsort(key, kind="stable")
        sorted_key = key[order]
        dup = np.zeros(len(key), dtype=bool)
        dup[1:] = sorted_key[1:] == sorted_key[:-1]
        if not dup.any():
            return ucodes, icodes, values, timestamps
        if policy == "error":
            first = order[dup][:3]
            pairs = [(py_value(uindex[ucodes[k]]), py_value(iindex[icodes[k]])) for k in first]
            raise InputError(
                f"{int(dup.sum())} duplicate (user, item) pair(s), for example {pairs}; pass "
                "duplicates='last' to keep the last rating or duplicates='mean' to average them"
            )
        if policy == "last":
            # the last by time when timestamps are given, else by position
            within = np.lexsort(((timestamps if timestamps is not None else np.arange(len(key))), key))
            last = np.ones(len(key), dtype=bool)
            last[:-1] = key[within][1:] != key[within][:-1]
            keep = np.sort(within[last])
            return (ucodes[keep], icodes[keep], values[keep],
                    timestamps[keep] if timestamps is not None else None)
        # mean
        uniq, inverse = np.unique(key, return_inverse=True)
        sums = np.bincount(inverse, weights=values)
        counts = np.bincount(inverse)
        means = scale.snap(sums / counts)
        first_pos = np.full(len(uniq), len(key))
        np.minimum.at(first_pos, inverse, np.arange(len(key)))
        keep = np.sort(first_pos)
        out_values = means[inverse[keep]]
        if timestamps is not None:
            ts = pd.Series(timestamps).groupby(inverse).max().to_numpy()
            timestamps = ts[inverse[keep]]
        return ucodes[keep], icodes[keep], out_values, timestamps

    # ------------------------------------------------------------------------------------------
    # sizes and simple statistics
    # ------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.rating)

    @property
    def n_ratings(self) -> int:
        return len(self.rating)

    @property
    def n_users(self) -> int:
        """Size of the user id universe (including users without ratings here)."""
        return len(self.users)

    @property
    def n_items(self) -> int:
        """Size of the item id universe (including items without ratings here)."""
        return len(self.items)

    @property
    def density(self) -> float:
        return self.n_ratings / (self.n_users * self.n_items)

    @property
    def user_ids(self) -> np.ndarray:
        """The raw user id of each rating."""
        return self.users.to_numpy()[self.user]

    @property
    def item_ids(self) -> np.ndarray:
        """The raw item id of each rating."""
        return self.items.to_numpy()[self.item]

    @property
    def level_codes(self) -> np.ndarray:
        """Level index of each rating (discrete scales only)."""
        return self.scale.codes(self.rating)

    def global_mean(self) -> float:
        return float(self.rating.mean())

    def user_counts(self) -> np.ndarray:
        """Number of ratings per user code (length ``n_users``)."""
        return np.bincount(self.user, minlength=self.n_users)

    def item_counts(self) -> np.ndarray:
        """Number of ratings per item code (length ``n_items``)."""
        return np.bincount(self.item, minlength=self.n_items)

    def user_means(self) -> np.ndarray:
        """Mean rating per user code; NaN for users without ratings."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.bincount(self.user, self.rating, self.n_users) / self.user_counts()

    def item_means(self) -> np.ndarray:
        """Mean rating per item code; NaN for items without ratings."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.bincount(self.item, self.rating, self.n_items) / self.item_counts()

    def to_sparse(self) -> sp.csr_matrix:
        """Users x items CSR matrix of the ratings (zero means *not rated*)."""
        return sp.csr_matrix(
            (self.rating, (self.user, self.item)), shape=(self.n_users, self.n_items)
        )

    def rated_mask(self) -> sp.csr_matrix:
        """Users x items boolean CSR matrix: True where a rating exists."""
        return sp.csr_matrix(
            (np.ones(len(self), dtype=bool), (self.user, self.item)),
            shape=(self.n_users, self.n_items),
        )

    # ------------------------------------------------------------------------------------------
    # ids <-> codes
    # ------------------------------------------------------------------------------------------
    def user_codes_of(self, ids, *, unknown: Literal["error", "mask"] = "error") -> np.ndarray:
        """Codes of user ids (one id or a sequence of them).

        Unknown ids raise :class:`UnknownIdError`, or map to -1 with
        ``unknown="mask"``.  An unknown id spelled like a known id of another
        type (``"1"`` where user 1 is an int) raises in both modes.
        """
        return self._codes_of(self.users, ids, "user", unknown)

    def item_codes_of(self, ids, *, unknown: Literal["error", "mask"] = "error") -> np.ndarray:
        """Codes of item ids; as :meth:`user_codes_of`."""
        return self._codes_of(self.items, ids, "item", unknown)

    @staticmethod
    def _codes_of(index: pd.Index, ids, what: str, unknown: str) -> np.ndarray:
        if unknown not in ("error", "mask"):
            raise InputError(f"unknown must be 'error' or 'mask', got {unknown!r}")
        values = id_array(ids)
        try:
            codes = index.get_indexer(values)
        except TypeError as exc:  # an unhashable id (a list, a dict)
            raise InputError(f"{what} ids must be hashable values, got {exc}") from None
        if (codes < 0).any():
            bad = pd.unique(np.asarray(values, dtype=object)[codes < 0])
            mismatch = type_mismatch(index, bad, what)
            if mismatch is not None:
                raise mismatch
            if unknown == "error":
                raise UnknownIdError(
                    f"unknown {what} id(s) {bad[:5].tolist()}"
                    + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
                    + f": not among the {len(index)} {what}s of these ratings"
                )
        return codes.astype(np.int64)

    # ------------------------------------------------------------------------------------------
    # derived collections
    # ------------------------------------------------------------------------------------------
    def subset(self, index: np.ndarray) -> Ratings:
        """The ratings at the given positions (or boolean mask), keeping the id universe."""
        index = np.asarray(index)
        if index.dtype == bool and len(index) != len(self):
            raise InputError(f"boolean mask has length {len(index)}, expected {len(self)}")
        return replace(
            self,
            user=self.user[index],
            item=self.item[index],
            rating=self.rating[index],
            timestamp=self.timestamp[index] if self.timestamp is not None else None,
        )

    def to_dataframe(self, *, codes: bool = False) -> pd.DataFrame:
        """One row per rating with columns user, item, rating (and timestamp)."""
        data = {
            "user": self.user if codes else self.user_ids,
            "item": self.item if codes else self.item_ids,
            "rating": self.rating,
        }
        if self.timestamp is not None:
            data["timestamp"] = self.timestamp
        return pd.DataFrame(data)

    def same_universe(self, other: Ratings) -> bool:
        """True when both share user and item ids (so their codes agree)."""
        return (
            self.users.equals(other.users)
            and self.items.equals(other.items)
            and self.scale == other.scale
        )

    def fingerprint(self) -> str:
        """SHA-256 of the id universe and scale (not the ratings).

        Two collections with the same fingerprint map ids to the same codes.
        """
        h = hashlib.sha256()
        h.update(json.dumps(self.scale.to_dict(), sort_keys=True).encode())
        for index in (self.users, self.items):
            h.update(b"|")
            h.update("\x1f".join(map(repr, index.tolist())).encode())
        return h.hexdigest()

    def summary(self) -> dict:
        """Sizes and simple statistics, as a dict (handy for reports and JSON)."""
        uc, ic = self.user_counts(), self.item_counts()
        return {
            "n_ratings": self.n_ratings,
            "n_users": self.n_users,
            "n_items": self.n_items,
            "n_users_with_ratings": int((uc > 0).sum()),
            "n_items_with_ratings": int((ic > 0).sum()),
            "density": self.density,
            "scale": str(self.scale),
            "mean_rating": self.global_mean(),
        }

    def __repr__(self) -> str:
        return (
            f"Ratings({self.n_ratings} ratings, {self.n_users} users, {self.n_items} items, "
            f"scale {self.scale}, density {self.density:.2%}"
            + (", with timestamps" if self.timestamp is not None else "")
            + ")"
        )
