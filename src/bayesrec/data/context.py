"""The context of a rating: the calendar day it was given on.

A model with ``context="day"`` (see :func:`bayesrec.models.pmf`) gives every day of the
training ratings its own bias and factor vector.  Days are labelled here, once: a
rating's day is the UTC calendar date of its timestamp, as an ISO string
(``"1997-09-20"``).  Timestamps are Unix seconds (numbers, as MovieLens gives them),
``datetime64`` values, ``datetime`` objects or ISO 8601 strings (timezone-aware times are
converted to UTC).

A model's day universe is the sorted days of its training ratings followed by
:data:`UNSEEN_DAY`, a slot that no training rating uses: its variables keep their prior
(the population of days), and a rating on a day the fit has not seen (or without a
timestamp) is predicted with it.
"""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd

from bayesrec.errors import InputError

__all__ = ["UNSEEN_DAY", "day_codes", "day_labels", "day_universe"]

#: The label of the day slot for days the fit has not seen.
UNSEEN_DAY = "unseen"


#: Unix seconds beyond this (the year 2286) are not seconds: most likely milliseconds.
_MAX_SECONDS = 1e10


def _utc_stamps(values: np.ndarray) -> pd.DatetimeIndex:
    """Timestamps as UTC datetimes (NaT where a time is missing: NaN, NaT or None)."""
    if values.dtype.kind == "O":
        present = values[~pd.isna(values)]
        numeric = [isinstance(v, numbers.Real) and not isinstance(v, bool) for v in present]
        if len(present) and all(numeric):
            values = np.where(pd.isna(values), np.nan, values).astype(np.float64)
        elif any(numeric):  # pandas would read the numbers as nanoseconds
            raise InputError("timestamps mix numbers (Unix seconds) with dates or strings; give "
                             "them all in one form")
    if values.dtype.kind == "M" and np.datetime_data(values.dtype)[0] == "generic":
        values = values.astype("datetime64[s]")  # only NaT has no unit
    if values.dtype.kind == "M":
        return pd.DatetimeIndex(pd.to_datetime(values, utc=True))
    if values.dtype.kind in "iuf":
        seconds = values.astype(np.float64)
        if np.isinf(seconds).any():
            raise InputError("timestamps must be finite numbers (Unix seconds); got inf")
        if np.nanmax(np.abs(seconds), initial=0.0) > _MAX_SECONDS:
            raise InputError(
                "timestamps given as numbers are Unix seconds, and these reach "
                f"{np.nanmax(np.abs(seconds)):.4g} (after the year 2286): they look like "
                "milliseconds or nanoseconds. Divide them by 1000 (or 10**9), or pass "
                "datetime64 values")
        return pd.DatetimeIndex(pd.to_datetime(seconds, unit="s", utc=True))
    if values.dtype.kind in "OUS":
        try:
            return pd.DatetimeIndex(pd.to_datetime(values, utc=True, format="ISO8601"))
        except (TypeError, ValueError) as err:
            bad = next((v for v in values if not _readable(v)), values[0])
            raise InputError(
                "a day context needs timestamps as Unix seconds (numbers, not strings), "
                "datetime64 values, datetime objects (timezone-aware ones are converted to "
                f"UTC) or ISO 8601 strings; could not read '{bad}'") from err
    raise InputError("a day context needs timestamps as Unix seconds (numbers) or "
                     f"datetime64 values, got dtype {values.dtype}")


def _readable(value) -> bool:
    try:
        pd.to_datetime([value], utc=True, format="ISO8601")
    except (TypeError, ValueError):
        return False
    return True


def day_labels(timestamps) -> np.ndarray:
    """The UTC calendar day of each timestamp, as ISO date strings (object array).

    Timestamps are Unix seconds (numbers), ``datetime64`` values, ``datetime`` objects or
    ISO 8601 strings; timezone-aware times are converted to UTC first.  A missing time
    (NaN, NaT or None) gets the label None, which :func:`day_codes` maps to
    :data:`UNSEEN_DAY`.  Numbers beyond the year 2286 are refused: they look like
    milliseconds, not seconds.
    """
    values = np.asarray(timestamps)
    if values.ndim != 1:
        raise InputError(f"timestamps must be one-dimensional, got shape {values.shape}")
    stamps = _utc_stamps(values)
    labels = np.asarray(stamps.strftime("%Y-%m-%d"), dtype=object)
    labels[np.asarray(stamps.isna())] = None
    return labels


def day_universe(timestamps) -> list[str]:
    """The days of a model: the sorted distinct days of ``timestamps``, then :data:`UNSEEN_DAY`.

    Every training rating needs a time: a missing one is refused."""
    labels = day_labels(timestamps)
    missing = np.flatnonzero(pd.isna(labels))
    if len(missing):
        raise InputError(f"{len(missing)} training rating(s) have no time (first at position "
                         f"{missing[0]}); a day context needs the time of every rating")
    return [*sorted(set(labels)), UNSEEN_DAY]


def day_codes(labels, days) -> np.ndarray:
    """Codes of day ``labels`` in the universe ``days`` (:func:`day_universe`); a day not
    in it gets the code of :data:`UNSEEN_DAY`."""
    index = pd.Index(list(days))
    if len(index) == 0 or index[-1] != UNSEEN_DAY:
        raise InputError(f"a day universe ends with {UNSEEN_DAY!r}; got {list(days)[-3:]}")
    codes = index.get_indexer(np.asarray(labels, dtype=object))
    codes[(codes < 0) | (codes == len(index) - 1)] = len(index) - 1
    return codes.astype(np.int64)
