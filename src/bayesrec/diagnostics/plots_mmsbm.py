"""Plots of an MMSBM fit's rating patterns (matplotlib, without pyplot).

Takes the Dataset of :func:`bayesrec.diagnostics.mmsbm.rating_patterns` and
returns a :class:`matplotlib.figure.Figure`; no global state is touched.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from bayesrec.errors import InputError

__all__ = ["plot_mmsbm_rating_patterns"]


def plot_mmsbm_rating_patterns(patterns: xr.Dataset, *, order: bool = True,
                               annotate: bool = True, distributions: bool = False,
                               title: str | None = None) -> Figure:
    """Heatmap of the expected rating of each (user group, item group) pair.

    Parameters
    ----------
    patterns : Dataset
        From :func:`~bayesrec.diagnostics.mmsbm.rating_patterns`: ``expected_rating``
        (user_group, item_group), ``p`` (with ``rating_level``), ``user_group_size``,
        ``item_group_size``.
    order : bool
        Sort user groups and item groups by their mean expected rating (group
        labels are arbitrary, so any order is as valid as another).
    annotate : bool
        Write each cell's expected rating (and, when the table has a posterior sd,
        ``± sd``) in the cell.
    distributions : bool
        Add a second panel: each group pair's rating distribution as a small bar
        chart in its cell.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
        Axis tick labels read ``group (expected size)``.
    """
    needed = ("expected_rating", "p", "user_group_size", "item_group_size")
    if not isinstance(patterns, xr.Dataset) or any(v not in patterns for v in needed):
        raise InputError("plot_mmsbm_rating_patterns needs the Dataset of rating_patterns(fit), "
                         f"with {list(needed)}")
    table = patterns
    if order:
        by_user = table["expected_rating"].mean("item_group").values
        by_item = table["expected_rating"].mean("user_group").values
        table = table.isel(user_group=np.argsort(-by_user), item_group=np.argsort(-by_item))
    expected = table["expected_rating"].transpose("user_group", "item_group").values
    levels = np.asarray(table["rating_level"].values, dtype=float)
    fig = Figure(figsize=(5.5 + (4.5 if distributions else 0), 4.8), layout="constrained")
    axes = fig.subplots(1, 2 if distributions else 1, squeeze=False)[0]
    ax = axes[0]
    image = ax.imshow(expected, cmap="RdYlBu", vmin=levels.min(), vmax=levels.max(),
                      aspect="auto")
    fig.colorbar(image, ax=ax, shrink=0.85, label="expected rating")
    _ticks(ax, table)
    if annotate and expected.size <= 400:
        sd = table["expected_rating_sd"].transpose("user_group", "item_group").values \
            if "expected_rating_sd" in table else np.zeros_like(expected)
        for (i, j), value in np.ndenumerate(expected):
            text = f"{value:.2f}" + (f"\n±{sd[i, j]:.2f}" if sd[i, j] > 0 else "")
            ax.text(j, i, text, ha="center", va="center", fontsize="x-small")
    ax.set_title("expected rating", fontsize="medium")
    if distributions:
        _bars(axes[1], table, levels)
    fig.suptitle(title or "MMSBM rating patterns (user group x item group)")
    return fig


def _ticks(ax, table: xr.Dataset) -> None:
    users, items = table["user_group"].values, table["item_group"].values
    ax.set_yticks(np.arange(len(users)),
                  [f"{g} ({s:.0f})" for g, s in zip(users, table["user_group_size"].values,
                                                    strict=True)], fontsize="x-small")
    ax.set_xticks(np.arange(len(items)),
                  [f"{g} ({s:.0f})" for g, s in zip(items, table["item_group_size"].values,
                                                    strict=True)], fontsize="x-small",
                  rotation=90)
    ax.set_ylabel("user group (expected users)")
    ax.set_xlabel("item group (expected items)")


def _bars(ax, table: xr.Dataset, levels: np.ndarray) -> None:
    """Each cell (k, l) holds the bar chart of p_kl over the rating levels."""
    p = table["p"].transpose("user_group", "item_group", "rating_level").values
    n_users, n_items, n_levels = p.shape
    width = 0.9 / n_levels
    for i in range(n_users):
        for j in range(n_items):
            x = j - 0.45 + width * (np.arange(n_levels) + 0.5)
            ax.bar(x, 0.9 * p[i, j], width=width, bottom=i + 0.45 - 0.9 * p[i, j],
                   color=[f"C{k % 10}" for k in range(n_levels)], linewidth=0)
    ax.set_xlim(-0.5, n_items - 0.5)
    ax.set_ylim(n_users - 0.5, -0.5)
    _ticks(ax, table)
    handles = [ax.bar([np.nan], [np.nan], color=f"C{k % 10}")[0] for k in range(n_levels)]
    ax.legend(handles, [f"{v:g}" for v in levels], title="rating", fontsize="x-small",
              loc="center left", bbox_to_anchor=(1.0, 0.5))
    ax.set_title("rating distribution p_kl", fontsize="medium")
