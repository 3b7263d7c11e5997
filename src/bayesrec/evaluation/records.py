"""Records of evaluations: plain JSON, with provenance, written where asked."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from bayesrec.provenance import provenance, versions

__all__ = ["jsonable", "provenance", "versions", "write_json"]


def write_json(path, record: dict) -> Path:
    """Write ``record`` as indented JSON (numpy scalars as floats), creating folders.

    The text goes to a temporary file next to ``path`` that replaces it once complete,
    so an interrupted write never leaves half a record in place of a whole one.
    """
    target = Path(path)
    text = json.dumps(record, indent=2, default=float) + "\n"
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        partial.write_text(text)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def jsonable(x: Any) -> Any:
    """Plain-JSON version of a value: numpy scalars unwrapped, NaN -> None."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple, np.ndarray)):
        return [jsonable(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    return str(x)
