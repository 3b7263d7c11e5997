"""The context of a rating: the calendar day it was given on.

A model with ``context="day"`` (see :func:`bayesrec.models.pmf`) gives every day of the
training ratings its own bias and factor vector.  Days are labelled here, once: a
rating's day is the UTC calendar date of its timestamp, as an ISO string
(``"1997-09-20"``).  Timestamps are Unix seconds (numbers, as MovieLens gives them) or
``datetime64`` values.

A model's day universe is the sorted days of its training ratings followed by
:data:`UNSEEN_DAY`, a slot that no training rating uses: its variables keep their prior
(the population of days), and a rating on a day the fit has not seen (or without a
timestamp) is predicted with it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayesrec.errors import InputError

__all__ = ["UNSEEN_DAY", "day_codes", "day_labels", "day_universe"]

#: The label of the day slot for days the fit has not seen.
UNSEEN_DAY = "unseen"


def day_labels(timestamps) -> np.ndarray:
    """The UTC calendar day of each timestamp, as ISO date strings (object array)."""
    values = np.asarray(timestamps)
    if values.ndim != 1:
        raise InputError(f"timestamps must be one-dimensional, got shape {values.shape}")
    if values.dtype.kind == "M":
        stamps = pd.to_datetime(values, utc=True)
    elif values.dtype.kind in "iuf":
        if not np.isfinite(values.astype(float)).all():
            raise InputError("timestamps must be finite numbers (Unix seconds)")
        stamps = pd.to_datetime(values.astype(np.float64), unit="s", utc=True)
    else:
        raise InputError("a day context needs timestamps as Unix seconds (numbers) or "
                         f"datetime64 values, got dtype {values.dtype}")
    return np.asarray(stamps.strftime("%Y-%m-%d"), dtype=object)


def day_universe(timestamps) -> list[str]:
    """The days of a model: the sorted distinct days of ``timestamps``, then :data:`UNSEEN_DAY`."""
    return [*sorted(set(day_labels(timestamps))), UNSEEN_DAY]


def day_codes(labels, days) -> np.ndarray:
    """Codes of day ``labels`` in the universe ``days`` (:func:`day_universe`); a day not
    in it gets the code of :data:`UNSEEN_DAY`."""
    index = pd.Index(list(days))
    if len(index) == 0 or index[-1] != UNSEEN_DAY:
        raise InputError(f"a day universe ends with {UNSEEN_DAY!r}; got {list(days)[-3:]}")
    codes = index.get_indexer(np.asarray(labels, dtype=object))
    codes[(codes < 0) | (codes == len(index) - 1)] = len(index) - 1
    return codes.astype(np.int64)
