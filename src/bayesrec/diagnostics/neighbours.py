"""The neighbourhood of an item as an ego graph (networkx, an optional extra).

:func:`plot_item_neighbourhood` draws an item and its most similar items
(:func:`bayesrec.inference.similarity.similar_items`): one edge per neighbour, its
width the posterior mean similarity and its opacity the certainty (one minus the
width of the similarity's interval, so a neighbour whose similarity is uncertain
fades out), neighbours placed closer the more similar they are.  It
returns a matplotlib figure (no pyplot state is touched).  networkx is needed only
here: ``pip install 'bayesrec[graph]'``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from bayesrec.data.ratings import Ratings
from bayesrec.errors import InputError
from bayesrec.inference.similarity import similar_items

__all__ = ["plot_item_neighbourhood", "neighbourhood_certainty"]

GRAPH_EXTRA_HINT = "pip install 'bayesrec[graph]'"
_MAX_LABEL = 28


def _networkx():
    try:
        import networkx
    except ImportError:
        raise ImportError("plot_item_neighbourhood draws the graph with networkx, which is "
                          f"not installed: {GRAPH_EXTRA_HINT} (or pip install networkx)") from None
    return networkx


def neighbourhood_certainty(neighbours: xr.Dataset) -> xr.DataArray:
    """Certainty of each neighbour's similarity: one minus the width of its interval,
    ``1 - (upper - lower)``, clipped to [0, 1] (an interval half as wide as the scale
    [-1, 1] of a correlation, or wider, gives 0); NaN for a point fit, which has no
    interval."""
    return (1 - (neighbours["upper"] - neighbours["lower"])).clip(0, 1).rename("certainty")


def _titles_of(titles) -> Mapping | None:
    """A mapping id -> title from ``titles``: a mapping, a Series, a DataFrame or a
    :class:`Ratings` with a ``title`` column in ``item_info``."""
    if titles is None:
        return None
    if isinstance(titles, Ratings):
        titles = titles.item_info
        if titles is None:
            return None
    if isinstance(titles, pd.DataFrame):
        if "title" not in titles.columns:
            raise InputError(f"titles as a DataFrame needs a 'title' column; it has "
                             f"{list(titles.columns)}")
        titles = titles["title"]
    if isinstance(titles, (Mapping, pd.Series)):
        return titles
    raise InputError(f"titles must be a mapping id -> title, a Series, a DataFrame with a "
                     f"'title' column or a Ratings with item_info, got {type(titles).__name__}")


def _label(item, titles: Mapping | None) -> str:
    title = None
    if titles is not None:
        try:
            title = titles.get(item)
        except TypeError:
            title = None
    text = str(item) if title is None or (isinstance(title, float) and np.isnan(title)) \
        else str(title)
    return text if len(text) <= _MAX_LABEL else text[:_MAX_LABEL - 1] + "…"


def plot_item_neighbourhood(fit, item=None, n: int = 10, ax: Axes | None = None,
                            titles=None, **options) -> Figure:
    """Ego graph of an item and its ``n`` most similar items, with their uncertainty.

    Parameters
    ----------
    fit : DataTree or Dataset
        A fit (the neighbours are computed with :func:`similar_items`), or the
        Dataset :func:`similar_items` returned (then ``item`` and ``n`` are read from it).
    item : id
        The item (needed with a fit).
    n : int
        Neighbours drawn.
    ax : matplotlib Axes, optional
        Draw here; by default on a new figure.
    titles : mapping, Series, DataFrame or Ratings, optional
        Labels: id -> title, or the data set (a :class:`~bayesrec.data.Ratings` whose
        ``item_info`` has a ``title`` column, as MovieLens has).  Ids label the nodes
        otherwise.
    **options
        Passed to :func:`similar_items` (``max_draws``, ``interval``, ``model``).

    Returns
    -------
    matplotlib.figure.Figure
        Edge width: the posterior mean similarity; edge opacity: the certainty
        (:func:`neighbourhood_certainty`; constant for a point fit, whose title says it
        is a point); each edge is labelled ``mean [lower, upper]``.
    """
    nx = _networkx()
    if isinstance(fit, xr.Dataset):
        neighbours = fit
        if "neighbour" not in neighbours.dims or "mean" not in neighbours:
            raise InputError("plot_item_neighbourhood needs a fit or the Dataset of "
                             "similar_items(fit, item)")
        item = neighbours.attrs.get("item", item)
        neighbours = neighbours.isel(neighbour=slice(0, n))
    else:
        if item is None:
            raise InputError("plot_item_neighbourhood(fit, item): give the item")
        neighbours = similar_items(fit, item, n, **options)
    names = _titles_of(titles)
    ids = neighbours["neighbour"].values.tolist()
    mean = neighbours["mean"].values
    point = bool(neighbours.attrs.get("point_fit", 0))
    certainty = neighbourhood_certainty(neighbours).values
    alpha = np.full(len(ids), 0.6) if point else np.nan_to_num(0.1 + 0.9 * certainty,
                                                               nan=0.1)

    graph = nx.Graph()
    graph.add_node(item)
    for nb, m in zip(ids, mean, strict=True):
        graph.add_edge(item, nb, weight=float(m))
    angles = 2 * np.pi * np.arange(len(ids)) / max(1, len(ids))
    radius = 1.0 + 3.0 * (1 - np.clip(np.nan_to_num(mean, nan=0.0), 0, 1))
    pos = {item: (0.0, 0.0)}
    pos.update({nb: (r * np.cos(a), r * np.sin(a))
                for nb, r, a in zip(ids, radius, angles, strict=True)})

    if ax is None:
        fig = Figure(figsize=(8, 7), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    edges = [(item, nb) for nb in ids]
    nx.draw_networkx_edges(graph, pos, edgelist=edges, ax=ax,
                           width=list(0.5 + 6 * np.clip(np.nan_to_num(mean), 0, 1)),
                           alpha=list(alpha), edge_color="tab:blue")
    nx.draw_networkx_nodes(graph, pos, nodelist=[item], node_color="tab:orange",
                           node_size=900, ax=ax)
    nx.draw_networkx_nodes(graph, pos, nodelist=ids, node_color="lightgrey", node_size=300,
                           ax=ax)
    ax.text(0.0, -0.3, _label(item, names), ha="center", va="top", fontsize=8,
            fontweight="bold", clip_on=False,
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1})
    for nb, r, a in zip(ids, radius, angles, strict=True):  # labels outside their node
        ax.text((r + 0.12) * np.cos(a), (r + 0.12) * np.sin(a), _label(nb, names),
                ha="left" if np.cos(a) > 0.1 else "right" if np.cos(a) < -0.1 else "center",
                va="bottom" if np.sin(a) > 0.1 else "top" if np.sin(a) < -0.1 else "center",
                fontsize=8, clip_on=False)
    interval = "" if point else " [{:.2f}, {:.2f}]"
    edge_labels = {}
    for k, nb in enumerate(ids):
        text = f"{mean[k]:.2f}"
        if not point:
            text += interval.format(neighbours["lower"].values[k], neighbours["upper"].values[k])
        edge_labels[(item, nb)] = text
    nx.draw_networkx_edge_labels(graph, pos, edge_labels=edge_labels, font_size=6, ax=ax,
                                 label_pos=0.55)
    what = (neighbours.attrs.get("note") or "MAP: a point, no uncertainty") if point else \
        "opacity = certainty (1 - width of the " \
        f"{neighbours.attrs.get('interval', 'interval').split(':')[0]} interval)"
    ax.set_title(f"Items most like {_label(item, names)}\nwidth = posterior mean similarity "
                 f"(closer = more similar); {what}", fontsize=9)
    reach = float(np.max(radius, initial=1.0)) + 0.4
    ax.set_xlim(-reach - 1.6, reach + 1.6)  # room for the labels
    ax.set_ylim(-reach, reach)
    ax.set_axis_off()
    ax.set_aspect("equal")
    return fig
