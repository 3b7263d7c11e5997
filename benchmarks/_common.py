"""Pieces the benchmark scripts share (run as ``python benchmarks/NAME.py``, which puts this
folder on the path)."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd

#: A sampler's figure is quoted only when the split R-hat of the quantity quoted is below this.
RHAT_TARGET = 1.01


def command_line(script: str, argv: list[str] | None) -> str:
    """The command that made a record: ``python benchmarks/SCRIPT`` and its arguments."""
    return " ".join(["python", f"benchmarks/{script}", *(sys.argv[1:] if argv is None else argv)])


def nuts_stats(dt) -> dict:
    """``mean_tree_depth`` and ``divergences`` of a NUTS fit (None where not recorded)."""
    stats = dt["sample_stats"].to_dataset()
    return {"mean_tree_depth": float(stats["tree_depth"].mean()) if "tree_depth" in stats
            else None,
            "divergences": int(stats["diverging"].sum()) if "diverging" in stats else None}


def import_myfm(hint: str = "pip install myfm"):
    """The ``myfm`` module, or None with a message that its row is skipped."""
    try:
        import myfm
    except ImportError:
        print(f"myfm is not installed ({hint}): skipping the myFM row", file=sys.stderr)
        return None
    return myfm


def one_hot_pairs(ratings, universe):
    """myFM's design matrix of the (user, item) pairs of ``ratings``: one-hot user columns,
    then item columns, over the id universe of ``universe`` (the training ratings)."""
    import scipy.sparse as sps

    n, n_users = ratings.n_ratings, universe.n_users
    rows = np.concatenate([np.arange(n), np.arange(n)])
    cols = np.concatenate([ratings.user, n_users + ratings.item])
    return sps.csr_matrix((np.ones(2 * n), (rows, cols)), shape=(n, n_users + universe.n_items))


def movielens_or_none(script: str, data_home, folds):
    """``(dataset, splits)`` of MovieLens 100K's ``folds``, or None after saying that the
    data is not available (the benchmark then has nothing to do)."""
    from bayesrec.errors import InputError
    from bayesrec.evaluation import load_dataset

    try:
        return load_dataset("ml-100k", data_home=data_home, folds=folds)
    except (InputError, FileNotFoundError) as exc:
        print(f"benchmarks/{script}: MovieLens 100K is not available, nothing to do.\n{exc}",
              file=sys.stderr)
        return None


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
