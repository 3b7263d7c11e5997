"""Plots of diagnostics (matplotlib).

Every function takes xarray objects (or a table) and returns a
:class:`matplotlib.figure.Figure` built without pyplot: no global figure
registry, no ``plt.show()``, no change to ``rcParams``.  Save with
``fig.savefig(path)``; in Jupyter the figure displays as the cell's value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.figure import Figure

from bayesrec.errors import InputError

__all__ = [
    "plot_norm_traces",
    "plot_rmse_trace",
    "plot_method_comparison",
    "plot_calibration",
    "plot_level_reliability",
    "plot_rating_patterns",
    "plot_user_predictive",
    "plot_advi_loss",
    "comparison_table",
]

_SPLIT_COLOURS = {"train": "C0", "test": "C1"}
_CHAIN_STYLES = ("-", "--", ":", "-.")


def _figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def _marker(n_draws: int) -> str | None:
    return "o" if n_draws < 3 else None


# ---------------------------------------------------------------------------------------------
# traces
# ---------------------------------------------------------------------------------------------
def plot_norm_traces(norms: xr.Dataset, *, title: str | None = None) -> Figure:
    """Trace (left) and histogram (right) of each factor matrix's Frobenius norm, per chain."""
    if not isinstance(norms, xr.Dataset) or not norms.data_vars:
        raise InputError("plot_norm_traces needs the Dataset of frobenius_norms(fit)")
    names = list(norms.data_vars)
    if norms.sizes["draw"] == 1:
        return _plot_point_norms(norms, title)
    fig = _figure(10, 2.2 * len(names) + 0.6)
    axes = fig.subplots(len(names), 2, squeeze=False, width_ratios=(3, 1))
    for row, name in enumerate(names):
        var = norms[name].transpose("chain", "draw")
        for c, chain in enumerate(var["chain"].values):
            values = var.sel(chain=chain).values
            axes[row, 0].plot(var["draw"].values, values, lw=0.7, alpha=0.85,
                              color=f"C{c % 10}", marker=_marker(len(values)),
                              label=f"chain {chain}")
            axes[row, 1].hist(values, bins=30, orientation="horizontal", alpha=0.5,
                              color=f"C{c % 10}")
        axes[row, 0].set_ylabel("Frobenius norm")
        axes[row, 0].set_title(name, loc="left", fontsize="medium")
        axes[row, 1].set_xlabel("count")
        axes[row, 1].sharey(axes[row, 0])
    axes[-1, 0].set_xlabel("draw")
    axes[0, 0].legend(loc="best", fontsize="small", ncols=min(4, norms.sizes["chain"]))
    fig.suptitle(title or "Frobenius norms of the factor matrices")
    return fig


def _plot_point_norms(norms: xr.Dataset, title: str | None) -> Figure:
    """Point fits (one draw per chain, e.g. MAP restarts): the norm of each restart."""
    names = list(norms.data_vars)
    fig = _figure(6, 2.0 * len(names) + 0.6)
    axes = fig.subplots(len(names), 1, squeeze=False)[:, 0]
    chains = norms["chain"].values
    for ax, name in zip(axes, names, strict=True):
        ax.plot(np.arange(len(chains)), norms[name].isel(draw=0).values, "o", color="C0")
        ax.set_xticks(np.arange(len(chains)), [str(c) for c in chains])
        ax.set_ylabel("Frobenius norm")
        ax.set_title(name, loc="left", fontsize="medium")
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("restart (chain)")
    fig.suptitle(title or "Frobenius norms of the factor matrices, per restart")
    return fig


def _plot_point_rmse(trace: xr.Dataset, title: str | None) -> Figure:
    """Point fits: RMSE of each restart, and of their average (the pooled prediction)."""
    fig = _figure(7, 4)
    ax = fig.subplots()
    chains = trace["chain"].values
    x = np.arange(len(chains))
    for split in trace["split"].values:
        colour = _SPLIT_COLOURS.get(str(split), "C2")
        sub = trace.sel(split=split)
        ax.plot(x, sub["rmse"].isel(draw=0).values, "o", color=colour, label=f"{split}")
        pooled = float(sub["pooled_running_rmse"].isel(draw=0))
        ax.axhline(pooled, color=colour, ls="--", lw=1,
                   label=f"{split}, mean of restarts ({pooled:.4f})")
    ax.set_xticks(x, [str(c) for c in chains])
    ax.set_xlabel("restart (chain)")
    ax.set_ylabel("RMSE")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.suptitle(title or _trace_title(trace))
    return fig


def plot_rmse_trace(trace: xr.Dataset, *, title: str | None = None) -> Figure:
    """Per-draw RMSE (left) and running RMSE (right), train and test, per chain and pooled.

    For point fits (one draw per chain: MAP restarts) it shows each restart's
    RMSE and that of their average instead.
    """
    for var in ("rmse", "running_rmse", "pooled_running_rmse"):
        if var not in trace:
            raise InputError(f"plot_rmse_trace needs the Dataset of rmse_trace(...); no {var!r}")
    if trace.sizes["draw"] == 1:
        return _plot_point_rmse(trace, title)
    fig = _figure(11, 4)
    left, right = fig.subplots(1, 2, sharey=False)
    draws = trace["draw"].values
    mk = _marker(len(draws))
    for split in trace["split"].values:
        colour = _SPLIT_COLOURS.get(str(split), "C2")
        sub = trace.sel(split=split)
        for c, chain in enumerate(trace["chain"].values):
            style = _CHAIN_STYLES[c % len(_CHAIN_STYLES)]
            left.plot(draws, sub["rmse"].sel(chain=chain).values, ls=style, lw=0.7,
                      color=colour, alpha=0.8, marker=mk, label=f"{split}, chain {chain}")
            right.plot(draws, sub["running_rmse"].sel(chain=chain).values, ls=style, lw=0.8,
                       color=colour, alpha=0.6, marker=mk)
        pooled = sub["pooled_running_rmse"].values
        right.plot(draws, pooled, lw=2.2, color=colour, marker=mk,
                   label=f"{split}, pooled (final {pooled[-1]:.4f})")
    left.set_title("per-draw RMSE (each draw's expected ratings)")
    right.set_title("running RMSE (posterior mean of draws 1..t)")
    for ax in (left, right):
        ax.set_xlabel("draw")
        ax.set_ylabel("RMSE")
        ax.grid(alpha=0.3)
    left.legend(fontsize="small", ncols=2)
    right.legend(fontsize="small")
    fig.suptitle(title or _trace_title(trace))
    return fig


def _trace_title(trace: xr.Dataset) -> str:
    who = " / ".join(str(trace.attrs[k]) for k in ("model", "method") if trace.attrs.get(k))
    return f"RMSE trace{' of ' + who if who else ''}"


def _advi_group(advi) -> xr.Dataset:
    """The ``advi`` group of an ADVI fit, given the fit, the group or its Dataset."""
    if isinstance(advi, xr.DataTree):
        if "advi" in advi.children:
            advi = advi["advi"]
        elif "posterior" in advi.children:
            raise InputError("plot_advi_loss needs an ADVI fit: this fit has no 'advi' group "
                             f"(method {advi.attrs.get('method')!r})")
        advi = advi.to_dataset()
    if not isinstance(advi, xr.Dataset) or "loss" not in advi:
        raise InputError("plot_advi_loss needs an ADVI fit, its 'advi' group, or that group's "
                         "Dataset (with a 'loss' variable)")
    return advi


def plot_advi_loss(advi, *, window: int | None = None) -> Figure:
    """ADVI loss (negative ELBO) per iteration, with a rolling mean; last 10 % shaded.

    ``advi`` is an ADVI fit (the DataTree :func:`bayesrec.inference.fit` returns), its
    ``advi`` group (``fit["advi"]``) or that group's Dataset.
    """
    advi = _advi_group(advi)
    loss = advi["loss"].values.astype(float)
    it = advi["iteration"].values if "iteration" in advi.coords else np.arange(1, len(loss) + 1)
    window = window or max(1, len(loss) // 100)
    smooth = pd.Series(loss).rolling(window, min_periods=1).mean().to_numpy()
    fig = _figure(9, 3.8)
    ax = fig.subplots()
    ax.plot(it, loss, lw=0.5, alpha=0.4, color="C0", label="loss")
    ax.plot(it, smooth, lw=1.6, color="C0", label=f"rolling mean ({window})")
    ax.axvspan(it[-max(1, len(loss) // 10)], it[-1], color="0.85", zorder=0,
               label="last 10 %")
    positive = loss[np.isfinite(loss)]
    if len(positive) and positive.min() > 0 and positive.max() / positive.min() > 50:
        ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss (negative ELBO)")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    ax.set_title("ADVI loss history")
    return fig


# ---------------------------------------------------------------------------------------------
# method comparison
# ---------------------------------------------------------------------------------------------
def _scored_rows(results: Mapping, test, train) -> list[dict]:
    """``label, test_rmse, train_rmse`` of fits, predictions or fitted recommenders."""
    from bayesrec.data.ratings import Ratings
    from bayesrec.inference.predict import predict
    from bayesrec.metrics import check_aligned, rmse
    from bayesrec.models.base import Recommender

    if not isinstance(test, Ratings):
        raise InputError("a dict of fits or predictions needs test= (the held-out Ratings "
                         "they are scored on), e.g. plot_method_comparison(fits, test=test)")

    def point(item, ratings: Ratings, label) -> float:
        if isinstance(item, xr.DataTree):
            return rmse(ratings.rating, predict(item, pairs=ratings)["mean"])
        if isinstance(item, Recommender):
            return rmse(ratings.rating, item.predict_ratings(ratings)["mean"])
        if isinstance(item, xr.Dataset):
            if ratings is not test:  # a prediction is of the test pairs only
                return np.nan
            check_aligned(item, ratings)
            return rmse(ratings.rating, item["mean"])
        raise InputError(f"comparison entry {label!r} is a {type(item).__name__}; give fits "
                         "(DataTrees), predictions (Datasets of the test pairs) or fitted "
                         "recommenders")

    return [{"label": str(label), "test_rmse": point(item, test, label),
             "train_rmse": point(item, train, label) if train is not None else np.nan}
            for label, item in results.items()]


def comparison_table(results, *, test=None, train=None) -> pd.DataFrame:
    """A table ``label, test_rmse, train_rmse`` of the methods to compare.

    ``results`` is one of

    * a dict ``{label: fit, prediction or fitted recommender}`` with ``test=`` (the
      held-out :class:`~bayesrec.data.Ratings`): each is scored here, RMSE of its
      ``mean`` prediction of the test pairs (and of ``train=``'s pairs when given;
      a prediction holds only the test pairs, so it has no train RMSE);
    * a DataFrame with ``test_rmse`` (or ``rmse``), optional ``train_rmse`` and
      ``label`` (or ``model`` and ``method``);
    * a list of :meth:`bayesrec.evaluation.EvaluationResult.to_json` dicts (their mean
      test RMSE) or of row dicts.
    """
    if isinstance(results, Mapping):
        results = pd.DataFrame(_scored_rows(results, test, train))
    if isinstance(results, pd.DataFrame):
        table = results.copy()
    elif isinstance(results, Sequence) and all(isinstance(r, Mapping) for r in results):
        rows = []
        for r in results:
            if "mean" in r and "folds" in r:  # an EvaluationResult record
                rows.append({"model": r.get("model"), "method": r.get("method"),
                             "test_rmse": r["mean"].get("rmse"),
                             "train_rmse": r["mean"].get("train_rmse", np.nan)})
            else:
                rows.append(dict(r))
        table = pd.DataFrame(rows)
    else:
        raise InputError("comparison results must be a dict of fits or predictions (with "
                         "test=), a DataFrame or a list of dicts (e.g. "
                         "EvaluationResult.to_json() records)")
    if "test_rmse" not in table and "rmse" in table:
        table = table.rename(columns={"rmse": "test_rmse"})
    if "test_rmse" not in table:
        raise InputError(f"the comparison table needs a test_rmse column; it has {list(table)}")
    if "label" not in table:
        if "model" not in table:
            raise InputError("the comparison table needs a label or a model column")
        method = table["method"] if "method" in table else pd.Series([""] * len(table))
        table["label"] = [f"{m} / {k}" if isinstance(k, str) and k and k != "fit" else str(m)
                          for m, k in zip(table["model"], method, strict=True)]
    if "train_rmse" not in table:
        table["train_rmse"] = np.nan
    return table[["label", "test_rmse", "train_rmse"]].astype(
        {"test_rmse": float, "train_rmse": float})


def plot_method_comparison(results, *, test=None, train=None,
                           title: str | None = None) -> Figure:
    """Test RMSE (with train RMSE beside it) of baselines and fitted methods, best at the top.

    ``results`` is a dict ``{label: fit, prediction or fitted recommender}`` scored on
    ``test`` (and ``train``, optional), or a table or records with the RMSEs
    already computed (see :func:`comparison_table`).
    """
    table = comparison_table(results, test=test, train=train).sort_values(
        "test_rmse", ascending=False)
    n = len(table)
    fig = _figure(8.5, 0.55 * n + 1.6)
    ax = fig.subplots()
    y = np.arange(n)
    h = 0.38
    ax.barh(y + h / 2, table["test_rmse"], height=h, color="C1", label="test RMSE")
    has_train = table["train_rmse"].notna()
    ax.barh(y[has_train.to_numpy()] - h / 2, table["train_rmse"][has_train], height=h,
            color="C0", alpha=0.7, label="train RMSE")
    for yi, (test, train) in enumerate(zip(table["test_rmse"], table["train_rmse"],
                                           strict=True)):
        ax.text(test, yi + h / 2, f" {test:.4f}", va="center", fontsize="small")
        if np.isfinite(train):
            ax.text(train, yi - h / 2, f" {train:.4f}", va="center", fontsize="small",
                    color="0.3")
    ax.set_yticks(y, table["label"])
    finite = table[["test_rmse", "train_rmse"]].to_numpy()
    finite = finite[np.isfinite(finite)]
    lo = max(0.0, 0.9 * finite.min()) if finite.size else 0
    ax.set_xlim(lo, finite.max() * 1.08 if finite.size else 1)
    ax.set_xlabel("RMSE (lower is better)")
    fig.legend(*ax.get_legend_handles_labels(), loc="outside upper right", fontsize="small",
               ncols=2)
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(title or "Method comparison")
    return fig


# ---------------------------------------------------------------------------------------------
# calibration and predictive distributions
# ---------------------------------------------------------------------------------------------
def _unit_square(ax, xlabel: str, ylabel: str) -> None:
    """Axes of a probability against a probability (the diagonal is drawn by the caller)."""
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize="small", loc="upper left")


def plot_calibration(calibration, *, title: str | None = None) -> Figure:
    """Empirical coverage against nominal level (left) and mean interval width (right).

    ``calibration`` is a Dataset from :func:`calibration_table` /
    :func:`interval_coverage`, or a dict ``{label: Dataset}`` to compare several.
    """
    curves = {"": calibration} if isinstance(calibration, xr.Dataset) else calibration
    if not isinstance(curves, Mapping):
        raise InputError("plot_calibration needs a Dataset from calibration_table() or a dict")
    fig = _figure(10, 4.2)
    left, right = fig.subplots(1, 2)
    left.plot([0, 1], [0, 1], color="0.5", lw=1, ls="--", label="perfect calibration")
    for k, (label, ds) in enumerate(curves.items()):
        if "coverage" not in ds:
            raise InputError("plot_calibration needs Datasets from calibration_table()")
        level = ds["level"].values
        left.plot(level, ds["coverage"].values, marker="o", ms=3.5, color=f"C{k}",
                  label=label or "empirical coverage")
        right.plot(level, ds["width"].values, marker="o", ms=3.5, color=f"C{k}",
                   label=label or None)
    _unit_square(left, "nominal level of the central interval", "share of test ratings inside")
    right.set_xlabel("nominal level")
    right.set_ylabel("mean interval width (rating units)")
    if any(curves):
        right.legend(fontsize="small")
    for ax in (left, right):
        ax.grid(alpha=0.3)
    fig.suptitle(title or "Calibration of central predictive intervals")
    return fig


def plot_level_reliability(reliability, *, title: str | None = None) -> Figure:
    """Reliability diagram of level probabilities: observed frequency against predicted
    probability, with +-2 binomial standard errors, for one or several predictions.

    ``reliability`` is a Dataset from :func:`level_reliability` or a dict
    ``{label: Dataset}``; the legend gives each one's expected calibration error.
    """
    curves = {"": reliability} if isinstance(reliability, xr.Dataset) else reliability
    if not isinstance(curves, Mapping) or not all("observed" in ds for ds in curves.values()):
        raise InputError("plot_level_reliability needs Datasets from level_reliability()")
    fig = _figure(5.5, 5)
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="0.5", lw=1, ls="--", label="calibrated")
    for k, (label, ds) in enumerate(curves.items()):
        keep = ds["count"].values > 0
        x, y = ds["predicted"].values[keep], ds["observed"].values[keep]
        ax.errorbar(x, y, yerr=2 * ds["se"].values[keep], marker="o", ms=3.5, capsize=2,
                    color=f"C{k}", label=f"{label} (ECE {ds.attrs['ece']:.3f})".strip())
    _unit_square(ax, "predicted probability of a level",
                 "share of those levels that were the rating")
    ax.grid(alpha=0.3)
    ax.set_title(title or "Reliability of the level probabilities")
    return fig


def _user_positions(prediction: xr.Dataset, user) -> np.ndarray:
    return np.flatnonzero(np.asarray(prediction["user"].values, dtype=object) == user)


def plot_user_predictive(prediction: xr.Dataset, users, *, observed=None,
                         max_items: int = 8, title: str | None = None) -> Figure:
    """Posterior predictive distributions of a few items for chosen users.

    Parameters
    ----------
    prediction : Dataset
        A prediction (:mod:`bayesrec.predictions`), e.g. of the test pairs.  Its
        predictive draws ``rating`` are drawn as violins; without them the stored
        quantiles as boxes (50 % box, 95 % whiskers).
    users : sequence of raw ids
        One row of panels per user; each shows up to ``max_items`` of the user's pairs.
    observed : array-like (pair,), optional
        The true ratings of the prediction's pairs (e.g. ``test.rating``), marked.
    """
    users = list(np.atleast_1d(np.asarray(users, dtype=object)))
    if not users:
        raise InputError("give at least one user")
    observed = None if observed is None else np.asarray(observed, dtype=float)
    if observed is not None and len(observed) != prediction.sizes["pair"]:
        raise InputError("observed must hold one rating per pair of the prediction")
    fig = _figure(10, 2.6 * len(users) + 0.5)
    axes = fig.subplots(len(users), 1, squeeze=False)[:, 0]
    low, high = prediction.attrs.get("scale_low"), prediction.attrs.get("scale_high")
    for ax, user in zip(axes, users, strict=True):
        pos = _user_positions(prediction, user)[:max_items]
        if len(pos) == 0:
            raise InputError(f"user {user!r} has no pair in the prediction")
        x = np.arange(len(pos))
        if "rating" in prediction:
            draws = prediction["rating"].transpose("chain", "draw", "pair").values
            flat = draws.reshape(-1, draws.shape[-1])[:, pos]
            parts = ax.violinplot(flat, positions=x, showextrema=False, widths=0.8)
            for body in parts["bodies"]:
                body.set_alpha(0.45)
        else:
            q = prediction["quantiles"].isel(pair=pos)
            lo95, lo50, hi50, hi95 = (q.sel(quantile=p, method="nearest").values
                                      for p in (0.025, 0.25, 0.75, 0.975))
            ax.vlines(x, lo95, hi95, color="C0", lw=1)
            ax.bar(x, hi50 - lo50, bottom=lo50, width=0.4, color="C0", alpha=0.45)
        ax.scatter(x, prediction["mean"].values[pos], marker="_", s=300, color="k",
                   zorder=3, label="predicted mean")
        if observed is not None:
            ax.scatter(x, observed[pos], marker="o", color="C3", zorder=4, label="observed")
        ax.set_xticks(x, [str(i) for i in prediction["item"].values[pos]])
        ax.set_xlabel("item")
        ax.set_ylabel("rating")
        if low is not None and high is not None:
            ax.set_ylim(low - 0.5, high + 0.5)
        ax.set_title(f"user {user}", loc="left", fontsize="medium")
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize="small", loc="lower right")
    fig.suptitle(title or "Posterior predictive distributions for chosen users")
    return fig


# ---------------------------------------------------------------------------------------------
# MMSBM rating patterns
# ---------------------------------------------------------------------------------------------
def plot_rating_patterns(patterns: xr.DataArray, *, user_dim: str = "user_group",
                         item_dim: str = "item_group", level_dim: str = "rating_level",
                         chain: int | None = 0, per_level: bool = False,
                         title: str | None = None) -> Figure:
    """Heatmap of a (user group x item group) rating pattern, e.g. an MMSBM's rating law.

    Parameters
    ----------
    patterns : DataArray
        Dims ``user_dim``, ``item_dim``, optionally ``level_dim`` (probabilities
        over rating levels, whose coordinate holds the level values) and
        ``chain``/``draw`` (averaged).
    chain : int or None
        With several chains, average over this chain's draws only (group labels
        may be permuted between chains); ``None`` averages over all chains.
    per_level : bool
        With a level dim, draw one heatmap per level's probability as well as the
        expected rating.
    """
    if not isinstance(patterns, xr.DataArray):
        raise InputError(f"plot_rating_patterns needs a DataArray, got {type(patterns).__name__}")
    missing = [d for d in (user_dim, item_dim) if d not in patterns.dims]
    if missing:
        raise InputError(f"the pattern has no dim(s) {missing}; its dims are {patterns.dims}")
    da = patterns
    if "chain" in da.dims and chain is not None:
        da = da.isel(chain=chain)
    da = da.mean([d for d in ("chain", "draw") if d in da.dims])
    extra = [d for d in da.dims if d not in (user_dim, item_dim, level_dim)]
    if extra:
        raise InputError(f"unexpected dims {extra}; select them first (e.g. .sel(...))")
    panels = []
    if level_dim in da.dims:
        levels = np.asarray(da[level_dim].values, dtype=float) if level_dim in da.coords \
            else np.arange(1, da.sizes[level_dim] + 1, dtype=float)
        prob = da / da.sum(level_dim)
        expected = (prob * xr.DataArray(levels, dims=level_dim)).sum(level_dim)
        panels.append(("expected rating", expected, "viridis", (levels.min(), levels.max())))
        if per_level:
            panels += [(f"P(rating = {lv:g})", prob.isel({level_dim: k}), "magma", (0, 1))
                       for k, lv in enumerate(levels)]
    else:
        panels.append((patterns.name or "value", da, "viridis", (None, None)))
    ncols = min(3, len(panels))
    nrows = int(np.ceil(len(panels) / ncols))
    fig = _figure(4.2 * ncols, 3.6 * nrows + 0.5)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax, (label, values, cmap, (vmin, vmax)) in zip(axes, panels, strict=False):
        mat = values.transpose(user_dim, item_dim).values
        image = ax.imshow(mat, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
        if mat.size <= 144:
            for (i, j), v in np.ndenumerate(mat):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize="x-small",
                        color="w" if (vmax is None or v < 0.6 * (vmax or 1)) else "k")
        for axis_ticks, dim in ((ax.set_xticks, item_dim), (ax.set_yticks, user_dim)):
            labels = values[dim].values if dim in values.coords else np.arange(values.sizes[dim])
            axis_ticks(np.arange(len(labels)), [str(v) for v in labels])
        ax.set_xlabel(item_dim)
        ax.set_ylabel(user_dim)
        ax.set_title(label, fontsize="medium")
        fig.colorbar(image, ax=ax, shrink=0.8)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    fig.suptitle(title or "Rating patterns between user and item groups")
    return fig
