"""Pieces the benchmark scripts share (run as ``python benchmarks/NAME.py``, which puts this
folder on the path)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def one_hot_pairs(ratings, n_users: int, n_items: int):
    """myFM's design matrix of (user, item) pairs: one-hot user columns, then item columns."""
    import scipy.sparse as sps

    n = ratings.n_ratings
    rows = np.concatenate([np.arange(n), np.arange(n)])
    cols = np.concatenate([ratings.user, n_users + ratings.item])
    return sps.csr_matrix((np.ones(2 * n), (rows, cols)), shape=(n, n_users + n_items))


def fold_summary(rows: list[dict], metrics, *, ratio: str | None = None) -> pd.DataFrame:
    """One line per ``row``: ``mean ± sd`` over its folds of each metric (fit seconds to
    0.1 s, the rest to 4 decimals), and the median of the column ``ratio`` when given."""
    frame = pd.DataFrame(rows)
    out = []
    for name, group in frame.groupby("row", sort=False):
        line = {"row": name, "folds": len(group)}
        for col in metrics:
            values = group[col].to_numpy(dtype=float)
            digits = 1 if col == "fit_seconds" else 4
            sd = f" ± {values.std(ddof=1):.{digits}f}" if len(values) > 1 else ""
            line[col] = f"{values.mean():.{digits}f}{sd}"
        if ratio and ratio in group and group[ratio].notna().any():
            line["time ratio (median)"] = f"{group[ratio].median():.2f}"
        out.append(line)
    return pd.DataFrame(out).fillna("")
