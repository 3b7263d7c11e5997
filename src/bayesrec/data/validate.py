"""Checks of numeric arguments shared by the data layer and the model factories."""

from __future__ import annotations

import numpy as np

from bayesrec.errors import InputError

__all__ = ["check_positive", "check_positive_int"]


def check_positive_int(value, name: str, *, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputError(f"{name} must be a positive integer, got {value!r}")
    if maximum is not None and value > maximum:
        raise InputError(f"{name} must be at most {maximum}, got {value}")
    return int(value)


def check_positive(value, name: str, *, allow_none: bool = False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not (
        np.isfinite(value) and value > 0
    ):
        raise InputError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)
