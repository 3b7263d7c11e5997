"""Records of evaluations: plain JSON, with provenance, written where asked."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from bayesrec.provenance import provenance, versions

__all__ = ["jsonable", "provenance", "versions", "write_json"]


def write_json(path, record: dict) -> Path:
    """Write ``record`` as indented JSON (numpy scalars as floats), creating folders."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(record, indent=2, default=float) + "\n")
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
