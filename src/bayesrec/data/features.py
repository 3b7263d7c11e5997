"""Side information (user or item metadata) as a numeric feature matrix.

The one place where an info table (a DataFrame indexed by id, such as
:attr:`Ratings.user_info <bayesrec.data.Ratings>`) becomes model features.  The rules,
column by column, learned on the ids a model is fitted with and applied unchanged
to ids seen later (new users and items):

* **booleans**, and numeric columns whose values are all 0 or 1: kept as 0/1
  indicators (a missing value counts as 0);
* **numbers**: standardised to mean 0, sd 1 over the given ids (a missing value
  becomes the mean, 0); integer columns whose values are all distinct (more than
  ten rows) look like identifiers and are dropped;
* **dates** (datetime columns): the year (with its fraction), standardised;
* **categories** (strings, categoricals) with at most :data:`MAX_LEVELS` distinct
  values and at most one distinct value per two rows: one 0/1 column per value,
  named ``"column=value"`` (a value not seen when fitting, or missing, gives zeros);
* anything else (free text, near-unique strings such as titles, zip codes, urls)
  and constant columns: dropped.

:func:`encode_features` applies the rules once; :class:`FeatureEncoder` keeps them
(as plain JSON-ready values, :meth:`FeatureEncoder.to_dict`) for later rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bayesrec.errors import InputError

__all__ = ["MAX_LEVELS", "FeatureEncoder", "encode_features", "info_rows"]

#: Most distinct values a text or categorical column may have to be one-hot encoded.
MAX_LEVELS = 30


def info_rows(info, ids, what: str = "user") -> pd.DataFrame:
    """The rows of ``info`` (a DataFrame indexed by id) for ``ids``, in that order.

    Raises :class:`InputError` when ``info`` is not a DataFrame or lacks some ids,
    naming how many and some of them.
    """
    if not isinstance(info, pd.DataFrame):
        raise InputError(f"{what} features must be a pandas DataFrame indexed by {what} id, "
                         f"got {type(info).__name__}")
    if not info.index.is_unique:
        dup = info.index[info.index.duplicated()].unique()[:5].tolist()
        raise InputError(f"the {what} feature table has duplicate ids, for example {dup}")
    ids = pd.Index(list(ids))
    where = info.index.get_indexer(ids)
    if (where < 0).any():
        missing = ids[where < 0]
        raise InputError(
            f"the {what} feature table has no row for {len(missing)} of the {len(ids)} "
            f"{what}s, for example {missing[:5].tolist()}; give a row for every {what} "
            f"(indexed by {what} id)")
    return info.iloc[where]


def _year(col: pd.Series) -> np.ndarray:
    t = pd.to_datetime(col)
    start = t.dt.day_of_year.to_numpy(dtype=float) - 1
    return t.dt.year.to_numpy(dtype=float) + start / 365.25


def _rule(name, col: pd.Series) -> dict | None:
    """The encoding rule of one column (fitted on its values), or None to drop it."""
    n = len(col)
    if pd.api.types.is_bool_dtype(col):
        return {"column": name, "kind": "indicator"}
    if pd.api.types.is_datetime64_any_dtype(col):
        values, kind = _year(col), "date"
    elif pd.api.types.is_numeric_dtype(col):
        values, kind = col.to_numpy(dtype=float), "number"
        present = values[~np.isnan(values)]
        if len(present) and np.isin(present, (0.0, 1.0)).all():
            return {"column": name, "kind": "indicator"}
        if (pd.api.types.is_integer_dtype(col) and n > 10
                and pd.Series(present).is_unique):
            return None  # an identifier
    else:
        levels = pd.unique(col.dropna().astype(str))
        if len(levels) < 2 or len(levels) > MAX_LEVELS or len(levels) > n / 2:
            return None
        return {"column": name, "kind": "category", "levels": sorted(levels.tolist())}
    mean, sd = np.nanmean(values), np.nanstd(values)
    if not np.isfinite(sd) or sd == 0:
        return None
    return {"column": name, "kind": kind, "mean": float(mean), "sd": float(sd)}


def _apply(rule: dict, col: pd.Series) -> tuple[np.ndarray, list[str]]:
    kind, name = rule["kind"], str(rule["column"])
    if kind == "indicator":
        values = pd.to_numeric(col.astype("float64"), errors="coerce").to_numpy()
        return np.nan_to_num(values, nan=0.0)[:, None], [name]
    if kind == "category":
        text = col.astype(str).where(col.notna(), None).to_numpy()
        cols = np.stack([(text == level) for level in rule["levels"]], axis=1)
        return cols.astype(float), [f"{name}={level}" for level in rule["levels"]]
    values = _year(col) if kind == "date" else col.to_numpy(dtype=float)
    z = (values - rule["mean"]) / rule["sd"]
    return np.nan_to_num(z, nan=0.0)[:, None], [name]


@dataclass(frozen=True)
class FeatureEncoder:
    """The fitted encoding rules of an info table (see the module docstring)."""

    rules: tuple[dict, ...]

    @classmethod
    def fit(cls, info, ids, what: str = "user") -> FeatureEncoder:
        """The rules learned from the rows of ``info`` for ``ids``."""
        rows = info_rows(info, ids, what)
        rules = tuple(r for c in rows.columns if (r := _rule(c, rows[c])) is not None)
        if not rules:
            raise InputError(f"no usable {what} feature: every column of {list(rows.columns)} "
                             "is constant, free text or an identifier (see "
                             "bayesrec.data.features for the rules)")
        return cls(rules)

    @property
    def names(self) -> list[str]:
        """The encoded features' names, in column order."""
        return [n for r in self.rules for n in
                ([f"{r['column']}={level}" for level in r["levels"]]
                 if r["kind"] == "category" else [str(r["column"])])]

    def transform(self, info, ids, what: str = "user") -> np.ndarray:
        """The feature matrix (len(ids) x features, float64) of ``ids`` under these rules."""
        rows = info_rows(info, ids, what)
        absent = [r["column"] for r in self.rules if r["column"] not in rows.columns]
        if absent:
            raise InputError(f"the {what} feature table lacks the column(s) {absent} the "
                             f"model was fitted with (its columns are {list(rows.columns)})")
        parts = [_apply(r, rows[r["column"]])[0] for r in self.rules]
        return np.concatenate(parts, axis=1).astype(np.float64)

    def to_dict(self) -> dict:
        """The rules as plain JSON-ready values."""
        return {"rules": [dict(r) for r in self.rules]}

    @classmethod
    def from_dict(cls, d: dict) -> FeatureEncoder:
        return cls(tuple(dict(r) for r in d["rules"]))


def encode_features(info, ids, what: str = "user") -> tuple[np.ndarray, list[str]]:
    """Encode the rows of ``info`` for ``ids`` by the module's rules.

    Returns ``(matrix, names)``: a float64 array (len(ids), n_features) and the
    features' names.  Ids without a row raise :class:`InputError`.
    """
    encoder = FeatureEncoder.fit(info, ids, what)
    return encoder.transform(info, ids, what), encoder.names
