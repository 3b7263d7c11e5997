"""A diagnostics report of one fit: PNG figures and a markdown page with the tables.

:func:`write_report` (behind ``bayesrec report``) computes the norms, the RMSE
trace, the convergence summary, test accuracy and calibration, compares the
fit with cheap baselines (and any results passed in), and writes into a folder:

``report.md``, ``norms.png``, ``rmse_trace.png``, ``calibration.png``,
``method_comparison.png``, ``user_predictive.png``, plus ``advi_loss.png`` for
ADVI fits and ``rating_patterns_<var>.png`` for models with group-by-group
rating patterns (MMSBM); ``diagnostics.nc`` holds the computed datasets.

Test ratings must be held out: a test (user, item) pair that the fit was trained
on (its record's training ratings, :attr:`~bayesrec.inference.FitRecord.ratings`)
would score the fit on its own training data, so :func:`write_report` refuses such
a test set (a test split of another fold than the fit's, say) before computing
anything.  ``allow_train_overlap=True`` scores it anyway: a warning and the report's
summary then say how many test ratings were training pairs.  Fits passed in
``comparison`` are checked the same way.
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pymc as pm
import xarray as xr

from bayesrec.data.ratings import Ratings
from bayesrec.errors import InputError
from bayesrec.inference.io import storable
from bayesrec.inference.predict import predict
from bayesrec.inference.record import FitRecord
from bayesrec.metrics import rmse, score
from bayesrec.models.registry import get_spec

from .calibration import calibration_table
from .convergence import convergence_summary
from .norms import factor_matrices, frobenius_norms
from .plots import (
    plot_advi_loss,
    plot_calibration,
    plot_method_comparison,
    plot_norm_traces,
    plot_rating_patterns,
    plot_rmse_trace,
    plot_user_predictive,
)
from .traces import rmse_trace

__all__ = ["write_report", "baseline_comparison", "fit_rmse_row", "pick_users",
           "training_pairs"]

REPORT_BASELINES = ("global_mean", "mean_of_means", "biases")


def baseline_comparison(train: Ratings, test: Ratings,
                        baselines=REPORT_BASELINES) -> pd.DataFrame:
    """Train and test RMSE of cheap registered baselines fitted on ``train``."""
    rows = []
    for name in baselines:
        rec = get_spec(name).build().fit(train)
        rows.append({"label": f"{name} (baseline)",
                     "test_rmse": rmse(test.rating, rec.predict_ratings(test)["mean"]),
                     "train_rmse": rmse(train.rating, rec.predict_ratings(train)["mean"])})
    return pd.DataFrame(rows)


def training_pairs(fit: xr.DataTree, test: Ratings) -> np.ndarray:
    """Boolean mask over ``test``'s ratings: True where the (user, item) pair is one of the
    fit's training ratings (its record's ``ratings``), matched by raw ids."""
    train = FitRecord(fit).ratings
    users = train.user_codes_of(test.user_ids, unknown="mask")
    items = train.item_codes_of(test.item_ids, unknown="mask")
    n_items = max(train.n_items, 1)
    trained = np.unique(train.user.astype(np.int64) * n_items + train.item)
    known = (users >= 0) & (items >= 0)
    keys = users.astype(np.int64) * n_items + items
    return known & np.isin(keys, trained)


def _check_held_out(fit: xr.DataTree, test: Ratings, label: str, allow: bool) -> int:
    """The number of test ratings the fit was trained on; refused unless ``allow``."""
    overlap = training_pairs(fit, test)
    n = int(overlap.sum())
    if n == 0:
        return 0
    first = np.flatnonzero(overlap)[:3]
    examples = list(zip(np.asarray(test.user_ids)[first].tolist(),
                        np.asarray(test.item_ids)[first].tolist(), strict=True))
    share = f"{n} of the {len(test)} test ratings ({n / len(test):.0%})"
    if not allow:
        raise InputError(
            f"{share} are (user, item) pairs that {label} was trained on, for example "
            f"{examples}: scoring them would measure the fit on its own training data; give "
            "the test split of the fold the fit was trained on, or pass "
            "allow_train_overlap=True to score them anyway (the report then says how many)"
        )
    warnings.warn(f"{share} are training pairs of {label}: its test scores are optimistic",
                  UserWarning, stacklevel=3)
    return n


def pick_users(test: Ratings, n: int = 3, *, seed: int = 0, min_ratings: int = 5) -> list:
    """``n`` test users (seeded) among those with at least ``min_ratings`` test ratings."""
    codes, counts = np.unique(test.user, return_counts=True)
    eligible = codes[counts >= min_ratings]
    if len(eligible) == 0:
        eligible = codes[np.argsort(-counts, kind="stable")[:n]]
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(eligible, size=min(n, len(eligible)), replace=False))
    return [test.users[c] for c in chosen]


def _resolve_users(users, index: pd.Index) -> list:
    """Requested user ids as the fit spells them (``"7"`` finds user 7 and vice versa)."""
    out = []
    for user in users:
        candidates = [user, str(user)]
        if str(user).strip().lstrip("-").isdigit():
            candidates.append(int(str(user).strip()))
        found = [c for c in candidates if c in index]
        if not found:
            raise InputError(f"unknown user {user!r}: not among the fit's {len(index)} users")
        out.append(found[0])
    return out


def _pattern_vars(fit) -> list[str]:
    post = fit["posterior"].to_dataset()
    return [v for v in post.data_vars
            if "user_group" in post[v].dims and "item_group" in post[v].dims]


def _md_table(frame: pd.DataFrame, digits: int = 4) -> str:
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, row in frame.iterrows():
        cells = []
        for v in row:
            if isinstance(v, (float, np.floating)):
                cells.append("n/a" if not np.isfinite(v) else f"{v:.{digits}g}"
                             if abs(v) >= 1000 else f"{v:.{digits}f}")
            else:
                cells.append(str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _save(fig, path: Path, files: list) -> None:
    fig.savefig(path, dpi=110)
    files.append(path.name)


def _fit_lines(fit, train: Ratings, test: Ratings | None) -> list[str]:
    attrs = fit.attrs
    versions = json.loads(attrs.get("versions", "{}"))
    post = fit["posterior"].to_dataset()
    lines = [
        f"- model: `{attrs.get('bayesrec_model')}` with config `{attrs.get('bayesrec_config')}`",
        f"- method: `{attrs.get('method')}` with options `{attrs.get('method_options')}`",
        f"- draws: {post.sizes['chain']} chain(s) x {post.sizes['draw']} draw(s); "
        f"seed {attrs.get('random_seed')}; fit took {float(attrs.get('fit_seconds', 0)):.0f} s",
        f"- training ratings: {len(train)}" + (f"; test ratings: {len(test)}" if test else ""),
        f"- created {attrs.get('created_at')}; "
        + ", ".join(f"{k} {v}" for k, v in versions.items()),
    ]
    return lines


def write_report(fit: xr.DataTree, out_dir, *, train: Ratings | None = None,
                 test: Ratings | None = None, comparison=None, users=None, n_users: int = 3,
                 max_draws: int | None = 500, n_pairs: int = 50, seed: int = 0,
                 title: str | None = None, model: pm.Model | None = None,
                 baselines=REPORT_BASELINES, progress=None,
                 allow_train_overlap: bool = False) -> Path:
    """Write the diagnostics report of ``fit`` into ``out_dir``; returns the ``report.md`` path.

    Parameters
    ----------
    fit : DataTree
        A fit from :func:`bayesrec.inference.fit` (or :func:`load_fit`).
    out_dir : path
        Created if missing.
    train : Ratings, optional
        Training ratings (default: the fit's own).
    test : Ratings, optional
        Held-out ratings; without them there is no test RMSE, calibration,
        predictive plot or baseline comparison.
    comparison : DataFrame, or list of dicts and fits, optional
        More rows for the method comparison: a table or ``EvaluationResult.to_json()``
        records (see :func:`comparison_table`), and other fits (DataTrees), whose
        posterior-mean train and test RMSE are computed here.
    users : sequence of raw ids, optional
        Users for the predictive plot (default: :func:`pick_users`).
    max_draws : int or None
        Posterior draws used for the test prediction (calibration).
    n_pairs, seed : int
        Pairs sampled for the convergence of predictions, and the seed of every choice.
    baselines : sequence of str
        Registered baselines fitted on ``train`` for the comparison.
    progress : callable, optional
        Called with a line of text as each step finishes.
    allow_train_overlap : bool
        Score test ratings that are training pairs of the fit (or of a fit in
        ``comparison``) instead of refusing them; the report says how many.

    Raises
    ------
    InputError
        ``test`` holds pairs the fit was trained on (unless ``allow_train_overlap``),
        or ``out_dir`` is a file or cannot be created.
    """
    say = progress or (lambda _m: None)
    overlap = 0
    if test is not None:
        overlap = _check_held_out(fit, test, "the fit", allow_train_overlap)
        others = comparison if isinstance(comparison, (list, tuple)) else [comparison]
        for k, other in enumerate(others):
            if isinstance(other, xr.DataTree):
                _check_held_out(other, test, f"compared fit {k + 1}", allow_train_overlap)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"cannot write the report into {out}: it is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the report folder {out}: {exc.strerror}") from None
    record = FitRecord(fit)
    model = record.model(model)
    train = train if train is not None else record.ratings
    name = f"{record.model_name} / {record.method}"
    files: list[str] = []
    diagnostics: dict[str, xr.Dataset] = {}
    md = [f"# {title or 'Diagnostics report: ' + name}", "", *_fit_lines(fit, train, test), ""]
    head = len(md)  # the summary goes here, once everything is known
    clock = time.perf_counter()

    norms = frobenius_norms(fit) if factor_matrices(fit) else None
    trace = rmse_trace(fit, train, test, model=model)
    diagnostics["rmse_trace"] = trace
    say(f"rmse trace done ({time.perf_counter() - clock:.0f} s)")
    conv = convergence_summary(fit, pairs=test, n_pairs=n_pairs, seed=seed, model=model,
                               norms=norms)
    diagnostics["convergence"] = conv.to_dataset()
    say(f"convergence summary done ({time.perf_counter() - clock:.0f} s)")
    md += ["## Convergence", "", conv.to_markdown(), ""]
    if norms is not None:
        diagnostics["norms"] = norms
        _save(plot_norm_traces(norms, title=f"Frobenius norms of the factor matrices ({name})"),
              out / "norms.png", files)
        md += ["![Frobenius norms](norms.png)", ""]
    if "advi" in fit.children:
        _save(plot_advi_loss(fit["advi"].to_dataset()), out / "advi_loss.png", files)
        md += ["![ADVI loss](advi_loss.png)", ""]

    md += ["## RMSE trace", "", _trace_table(trace), "",
           "Per-draw RMSE scores each draw's expected ratings; running RMSE scores the "
           "posterior mean of draws 1..t (per chain, and pooled over chains).  Predictions are "
           "clipped to the rating scale.", "", "![RMSE trace](rmse_trace.png)", ""]
    _save(plot_rmse_trace(trace), out / "rmse_trace.png", files)

    rows, scores = [], None
    if test is not None:
        section, scores = _test_sections(fit, model, train, test, trace, users, n_users,
                                         max_draws, seed, out, files, diagnostics, predict, say)
        md += section
        rows = baseline_comparison(train, test, baselines).to_dict("records")
    pooled = trace["pooled_running_rmse"].isel(draw=-1)
    if "test" in trace["split"].values:
        rows.append({"label": f"{name} (this fit)",
                     "test_rmse": float(pooled.sel(split="test")),
                     "train_rmse": float(pooled.sel(split="train"))})
    if comparison is not None:
        rows += _comparison_rows(comparison, test)
    if rows:
        table = pd.DataFrame(rows).sort_values("test_rmse")
        _save(plot_method_comparison(table), out / "method_comparison.png", files)
        md += ["## Method comparison", "", _md_table(table), "",
               "![Method comparison](method_comparison.png)", ""]

    for var in _pattern_vars(fit):
        da = fit["posterior"].to_dataset()[var]
        _save(plot_rating_patterns(da, per_level="rating_level" in da.dims,
                                   title=f"{var} (posterior mean, chain 0)"),
              out / f"rating_patterns_{var}.png", files)
        md += [f"## Rating patterns: {var}", "", f"![{var}](rating_patterns_{var}.png)", ""]

    tree = xr.DataTree.from_dict({k: v for k, v in diagnostics.items()})
    storable(tree).to_netcdf(out / "diagnostics.nc", engine="h5netcdf")
    files.append("diagnostics.nc")
    md += ["## Files", "", ", ".join(f"`{f}`" for f in files), ""]
    md[head:head] = _summary(conv, trace, scores, rows)
    if overlap:
        md[head + 2:head + 2] = [f"- **{overlap} of the {len(test)} test ratings are training "
                                 "pairs of the fit**: its test scores are optimistic"]
    path = out / "report.md"
    path.write_text("\n".join(md))
    say(f"report written to {path} ({time.perf_counter() - clock:.0f} s)")
    return path


def fit_rmse_row(fit: xr.DataTree, test: Ratings | None) -> dict:
    """``label, test_rmse, train_rmse`` of a fit: the RMSE of its posterior-mean prediction."""
    trace = rmse_trace(fit, None, test)
    final = trace["pooled_running_rmse"].isel(draw=-1)
    label = f"{fit.attrs.get('bayesrec_model')} / {fit.attrs.get('method')}"
    return {"label": label,
            "test_rmse": float(final.sel(split="test")) if test is not None else np.nan,
            "train_rmse": float(final.sel(split="train"))}


def _comparison_rows(comparison, test: Ratings | None) -> list[dict]:
    """Rows from a table, evaluation records, or other fits (scored on ``test`` here)."""
    from .plots import comparison_table

    if isinstance(comparison, (xr.DataTree, pd.DataFrame)):
        comparison = [comparison] if isinstance(comparison, xr.DataTree) else comparison
    if isinstance(comparison, pd.DataFrame):
        return comparison_table(comparison).to_dict("records")
    rows = [fit_rmse_row(item, test) for item in comparison if isinstance(item, xr.DataTree)]
    others = [item for item in comparison if not isinstance(item, xr.DataTree)]
    if others:
        rows += comparison_table(others).to_dict("records")
    return rows


def _summary(conv, trace: xr.Dataset, scores: dict | None, rows: list[dict]) -> list[str]:
    """A few lines with the headline numbers, for the top of the report."""
    table = conv.table
    lines = ["## Summary", ""]
    if conv.flags:
        lines.append(f"- convergence: **{len(conv.flags)} problem(s) flagged** (see Convergence)")
    else:
        lines.append("- convergence: no problem flagged")
    if table["r_hat"].notna().any():
        lines.append(f"- largest R-hat {table['r_hat'].max():.3f} ({table['r_hat'].idxmax()}); "
                     f"smallest bulk ESS {table['ess_bulk'].min():.0f} "
                     f"({table['ess_bulk'].idxmin()})")
    if "divergences" in conv.sampler:
        lines.append(f"- divergences: {conv.sampler['divergences']}")
    final = trace["pooled_running_rmse"].isel(draw=-1)
    rmses = ", ".join(f"{s} {float(final.sel(split=s)):.4f}" for s in final["split"].values)
    lines.append(f"- RMSE of the posterior-mean prediction: {rmses}")
    if scores is not None:
        cov = ", ".join(f"{k.split('_')[1]}% -> {v:.3f}" for k, v in scores.items()
                        if k.startswith("coverage_"))
        lines.append(f"- coverage of central predictive intervals on test: {cov}")
    baseline = [r for r in rows if str(r["label"]).endswith("(baseline)")]
    if baseline:
        best = min(baseline, key=lambda r: r["test_rmse"])
        lines.append(f"- best baseline: {best['label']} with test RMSE {best['test_rmse']:.4f}")
    return lines + [""]


def _trace_table(trace: xr.Dataset) -> str:
    rows = []
    for split in trace["split"].values:
        sub = trace.sel(split=split)
        rows.append({"split": str(split),
                     "per-draw RMSE, mean": float(sub["rmse"].mean()),
                     "per-draw RMSE, first draw": float(sub["rmse"].isel(draw=0).mean()),
                     "running RMSE, final (per chain)": ", ".join(
                         f"{v:.4f}" for v in sub["running_rmse"].isel(draw=-1).values),
                     "pooled RMSE, final": float(sub["pooled_running_rmse"].isel(draw=-1))})
    return _md_table(pd.DataFrame(rows))


def _test_sections(fit, model, train, test, trace, users, n_users, max_draws, seed, out, files,
                   diagnostics, predict, say) -> list[str]:
    md = []
    prediction = predict(fit, pairs=test, model=model, max_draws=max_draws, random_seed=seed,
                         keep_draws=True)  # draws: fine calibration levels, violins
    say("test prediction done")
    scores = score(prediction, test)
    md += ["## Accuracy on the test ratings", "",
           f"From {prediction.attrs.get('n_draws')} posterior draws.", "",
           _md_table(pd.DataFrame([scores])), ""]
    calib = calibration_table(prediction, test)
    diagnostics["calibration"] = calib
    _save(plot_calibration(calib), out / "calibration.png", files)
    shown = calib.to_dataframe()[["coverage", "below", "above", "width"]].reset_index()
    md += ["## Calibration", "",
           "Share of test ratings inside central predictive intervals, by nominal level "
           f"(from {calib.attrs['source']}).", "", _md_table(shown, 3), "",
           "![Calibration](calibration.png)", ""]
    users = (pick_users(test, n_users, seed=seed) if users is None
             else _resolve_users(users, pd.Index(prediction["user"].values)))
    _save(plot_user_predictive(prediction, users, observed=test.rating),
          out / "user_predictive.png", files)
    md += ["## Posterior predictive for chosen users", "",
           f"Users {', '.join(map(str, users))}: predictive distributions of up to 8 of their "
           "test items (violins), the predicted mean (bar) and the observed rating (dot).", "",
           "![Posterior predictive](user_predictive.png)", ""]
    return md, scores
