"""Ids: keeping each id's own type, and explaining an id of the wrong type.

Ids are compared by value and type (``1`` is not ``"1"``).  These helpers keep a
list of ids as Python objects (numpy would turn ``[14, "NEW"]`` into strings) and
find the likely mistake behind an unknown id: a known id of another type with the
same text.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from bayesrec.errors import InputError, UnknownIdError

__all__ = ["id_array", "py_value", "type_mismatch"]


def py_value(x):
    """A numpy scalar as the plain Python value (for readable messages)."""
    return x.item() if isinstance(x, np.generic) else x


def id_array(ids) -> np.ndarray:
    """Ids as a 1-d array that keeps each id's own type (a single id gives one element).

    Lists become object arrays, so ``[14, "NEW"]`` keeps 14 an int (``np.asarray``
    would make it the string ``"14"``); arrays, Series and Indexes are used as they are.
    """
    if isinstance(ids, (pd.Index, pd.Series)):
        return ids.to_numpy()
    if isinstance(ids, np.ndarray):
        if ids.ndim > 1:
            raise InputError(f"ids must be one-dimensional, got shape {ids.shape}")
        return ids.reshape(-1)
    if isinstance(ids, (str, bytes)) or not isinstance(ids, Iterable):
        ids = [ids]
    return pd.Index(list(ids), dtype=object, tupleize_cols=False).to_numpy()


_NOT_FOUND = object()


def type_mismatch(index: pd.Index, unknown: Iterable, what: str) -> UnknownIdError | None:
    """The error for an unknown id spelled like a known id of another type, if there is one.

    ``"1"`` is not the id ``1``: ids keep their type.  When an unknown id has the
    same text as a known id of another type, the caller almost surely converted
    ids somewhere (read a file as strings, or passed numpy's stringified array),
    and saying so beats a plain "unknown id" (or a silent -1).
    """
    by_text = {}
    for value in unknown:
        by_text.setdefault(str(py_value(value)), py_value(value))
    if not by_text:
        return None
    for known in index.tolist():
        known = py_value(known)
        value = by_text.get(str(known), _NOT_FOUND)
        if value is not _NOT_FOUND and type(value) is not type(known):
            kind, known_kind = type(value).__name__, type(known).__name__
            return UnknownIdError(
                f"{what} id {value!r} ({kind}) is unknown, but the {what}s include {known!r} "
                f"({known_kind}): ids keep their type, so these are different {what}s. Pass "
                f"{what} ids as {known_kind} (for example {known_kind}({value!r})); "
                "Ratings.from_csv reads ids as str unless given id_type='int'"
            )
    return None
