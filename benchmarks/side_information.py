"""Benchmark: BPMF with side information and implicit feedback beside myFM with the same information.

On MovieLens 100K folds u1..u5 (by default), in one process, for each *information set*
(``--rows``):

========================== ========================================================
row                        information (myFM and bayesrec alike)
========================== ========================================================
none                       user and item ids
implicit_user              + which items each user rated (SVD++)
attributes                 + user age band, gender, occupation; item genres
implicit_day               + implicit user and item terms + the rating's day
implicit_attributes        + implicit user and item terms + attributes
implicit_attributes_day    + implicit user and item terms + attributes + day
ordinal_implicit_attributes      ordered probit, implicit terms + attributes
ordinal_implicit_attributes_day  ordered probit, implicit terms + attributes + day
========================== ========================================================

* **myFM** (``MyFMRegressor``, or ``MyFMOrderedProbit`` for the ``ordinal_`` rows; rank
  10, ``--n-iter`` sweeps, 512 by default, all kept as in ``benchmarks/gibbs.py``): the
  issue's encodings.  One relation block for users and one for items
  (``myfm.RelationBlock``, as myFM's MovieLens examples): a user's row is its one-hot
  id, then (implicit user term) ``1/sqrt(|N(u)|)`` on each item the user rated in the
  *training* fold, then one-hot age band, gender and occupation; an item's row its
  one-hot id, the symmetric implicit term (the users who rated it in training), and
  its genres (multi-hot).  The day (``timestamp // 86400``, one-hot over the training
  fold's days; a test day not in training is a zero row) is a context column.  One
  hyperprior group per family of columns (``group_shapes``): day, user id, user
  implicit, age band, gender, occupation, item id, item implicit, genres.
* **bayesrec BPMF** (``build_model("bpmf", train, n_factors=10, implicit=...,
  user_features=..., item_features=...)``, ``likelihood="ordered_probit"`` for the
  ``ordinal_`` rows), fitted with ``fit(model, --method)`` (default ``gibbs``: the
  centred parameterisation as in ``gibbs.py``, ``--tune`` + ``--draws`` sweeps per
  chain, two chains).  The features are the same information as myFM's: DataFrames
  indexed by id with the columns ``age_band``, ``gender``, ``occupation`` and one 0/1
  column per genre (``--features auto`` uses the loader's own ``user_info`` /
  ``item_info`` instead, which also hold age as a number and the release date).  A
  fit (or model) that raises ``InputError`` is recorded as **refused** with its
  message, never skipped or replaced by another method.  The day is ``context="day"``
  (each day's bias and factor vector, interacting with the user's and the item's, as
  myFM's day column does); a test day not in training is predicted with the population
  of days (the model's ``"unseen"`` day).

Age bands (the MovieLens 1M groups): under 18, 18-24, 25-34, 35-44, 45-49, 50-55, 56+.

Scores: RMSE of the (clipped) predictive mean, bayesrec's 90 % interval coverage; for
the ordinal rows accuracy, LPD (mean log probability of the true level) and RMSE of
the expected rating (as ``benchmarks/ordinal.py``); for a bayesrec MCMC fit the split R-hat
and bulk ESS of the per-draw test RMSE (``converged``: R-hat < 1.01; the table shows the
worst fold's R-hat).  Seconds per fold: design/model
build, fit and prediction.  Before anything is timed each selected row runs once on
5,000 ratings of the first fold, on both systems (``warm_up``).

**Cold start** (u1, unless ``--no-cold-start``): all ratings of a random 10 % of the
users (seeded) are removed from the training fold and the users from its id universe;
their ratings (u1.base and u1.test) are predicted by (a) BPMF with user and item
features, given the new users' features, (b) the same fit without them (the average
feature row), (c) BPMF without features (the population).  RMSE and 90 % coverage of
each; bayesrec only, same refusal rule.

Targets (issue 21, 5-fold means): each bayesrec row within 0.002 of (or better than)
myFM's with the same information; the best bayesrec row <= 0.877 (its u1 <= 0.886);
time per fold <= 2 x myFM's; the ordinal row beats myFM's ordered probit on accuracy,
LPD and RMSE; cold start (a) beats (b) by >= 0.01 RMSE with coverage in [0.87, 0.93].

Prints a table per section and writes ``benchmarks/results/side_information.json``
(after every fold).  ``--quick``: u1, 64 myFM sweeps, short chains (``--method map``: at most 200
iterations); a smoke test whose figures are not targets.

    BAYESREC_DATA=/path/holding/ml-100k python benchmarks/side_information.py
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from types import SimpleNamespace

import arviz as az
import numpy as np
import pandas as pd
import scipy.sparse as sps
from _common import RHAT_TARGET, import_myfm

from bayesrec.data.movielens import movielens_folds
from bayesrec.data.ratings import Ratings
from bayesrec.diagnostics import rmse_trace
from bayesrec.errors import InputError
from bayesrec.evaluation import provenance, write_json
from bayesrec.inference import fit, method_defaults, predict
from bayesrec.metrics import score
from bayesrec.models import build_model

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "side_information.json"
AGE_EDGES = (18, 25, 35, 45, 50, 56)
AGE_LABELS = ("<18", "18-24", "25-34", "35-44", "45-49", "50-55", "56+")
USER_ATTRIBUTES = ("age_band", "gender", "occupation")


@dataclass(frozen=True)
class InfoSet:
    """One information set: implicit terms (None/"user"/"both"), attributes, day, likelihood."""

    implicit: str | None = None
    attributes: bool = False
    day: bool = False
    likelihood: str = "gaussian"

    @property
    def ordinal(self) -> bool:
        return self.likelihood != "gaussian"


ROWS = {
    "none": InfoSet(),
    "implicit_user": InfoSet(implicit="user"),
    "attributes": InfoSet(attributes=True),
    "implicit_day": InfoSet(implicit="both", day=True),
    "implicit_attributes": InfoSet(implicit="both", attributes=True),
    "implicit_attributes_day": InfoSet(implicit="both", attributes=True, day=True),
    "ordinal_implicit_attributes": InfoSet("both", True, False, "ordered_probit"),
    "ordinal_implicit_attributes_day": InfoSet("both", True, True, "ordered_probit"),
}
#: myFM's 5-fold mean test RMSE as measured in issue 21 (rank 10, 512 sweeps)
ISSUE_MYFM = {"none": 0.8967, "implicit_user": 0.8929, "attributes": 0.8906,
              "implicit_day": 0.8793, "implicit_attributes": 0.8798,
              "implicit_attributes_day": 0.8776,
              "ordinal_implicit_attributes_day": {"rmse": 0.8768, "accuracy": 0.4668,
                                                  "lpd": -1.211, "seconds": 48.0}}
TARGETS = {"rmse_margin_to_myfm": 0.002, "best_rmse": 0.877, "best_rmse_u1": 0.886,
           "time_ratio_to_myfm": 2.0, "cold_start_gain": 0.01,
           "cold_start_coverage_90": (0.87, 0.93)}


# ---------------------------------------------------------------------------------------------
# information: attributes, implicit terms, day
# ---------------------------------------------------------------------------------------------
def user_attributes(user_info: pd.DataFrame) -> pd.DataFrame:
    """Age band, gender and occupation of every user (indexed by user id), as text."""
    bands = pd.cut(user_info["age"], bins=[-np.inf, *AGE_EDGES, np.inf], right=False,
                   labels=AGE_LABELS)
    return pd.DataFrame({"age_band": bands.astype(str), "gender": user_info["gender"],
                         "occupation": user_info["occupation"]}, index=user_info.index)


def item_attributes(item_info: pd.DataFrame) -> pd.DataFrame:
    """The 0/1 genre columns of every item (indexed by item id)."""
    return item_info.select_dtypes(include=bool).copy()


def attribute_blocks(frame: pd.DataFrame, ids) -> tuple[sps.csr_matrix, list[int]]:
    """One-hot (text columns) or 0/1 (boolean columns) rows of ``ids``, and the width of
    each column family (text column: its levels; all boolean columns: one family)."""
    rows = frame.loc[list(ids)]
    parts, shapes = [], []
    for col in rows.columns:
        if rows[col].dtype != bool:
            dummies = pd.get_dummies(rows[col], dtype=float)
            parts.append(dummies.to_numpy())
            shapes.append(dummies.shape[1])
    flags = rows.select_dtypes(include=bool)
    if flags.shape[1]:
        parts.append(flags.to_numpy(dtype=float))
        shapes.append(flags.shape[1])
    return sps.csr_matrix(np.hstack(parts)), shapes


def implicit_rows(train: Ratings, side: str) -> sps.csr_matrix:
    """``1/sqrt(|N|)`` on the other side's ids rated in ``train`` (one row per id of ``side``)."""
    rows, cols = (train.user, train.item) if side == "user" else (train.item, train.user)
    n_rows, n_cols = ((train.n_users, train.n_items) if side == "user"
                      else (train.n_items, train.n_users))
    weight = 1.0 / np.sqrt(np.maximum(np.bincount(rows, minlength=n_rows), 1))
    return sps.csr_matrix((weight[rows], (rows, cols)), shape=(n_rows, n_cols))


def days(ratings: Ratings) -> np.ndarray:
    return np.asarray(ratings.timestamp, dtype=np.int64) // 86400


class MyFMDesign:
    """myFM's inputs for one training fold and information set (relation blocks)."""

    def __init__(self, train: Ratings, info: InfoSet, frames):
        user_parts, item_parts = [sps.identity(train.n_users, format="csr")], [
            sps.identity(train.n_items, format="csr")]
        user_shapes, item_shapes = [train.n_users], [train.n_items]
        if info.implicit in ("user", "both"):
            user_parts.append(implicit_rows(train, "user"))
            user_shapes.append(train.n_items)
        if info.implicit in ("item", "both"):
            item_parts.append(implicit_rows(train, "item"))
            item_shapes.append(train.n_users)
        if info.attributes:
            for parts, shapes, frame, ids in ((user_parts, user_shapes, frames.user, train.users),
                                              (item_parts, item_shapes, frames.item, train.items)):
                block, widths = attribute_blocks(frame, ids)
                parts.append(block)
                shapes.extend(widths)
        self.user_matrix = sps.hstack(user_parts, format="csr")
        self.item_matrix = sps.hstack(item_parts, format="csr")
        self.day_levels = np.unique(days(train)) if info.day else None
        day_shape = [len(self.day_levels)] if info.day else []
        self.group_shapes = day_shape + user_shapes + item_shapes

    def inputs(self, ratings: Ratings):
        """``(X, X_rel)``: the day columns (or none) and the user and item relation blocks."""
        n = ratings.n_ratings
        if self.day_levels is None:
            X = sps.csr_matrix((n, 0))
        else:
            where = np.searchsorted(self.day_levels, days(ratings))
            where = np.minimum(where, len(self.day_levels) - 1)
            known = self.day_levels[where] == days(ratings)
            X = sps.csr_matrix((np.ones(known.sum()), (np.flatnonzero(known), where[known])),
                               shape=(n, len(self.day_levels)))
        import myfm

        blocks = [myfm.RelationBlock(ratings.user.astype(np.int64).tolist(), self.user_matrix),
                  myfm.RelationBlock(ratings.item.astype(np.int64).tolist(), self.item_matrix)]
        return X, blocks


# ---------------------------------------------------------------------------------------------
# scores
# ---------------------------------------------------------------------------------------------
def rmse(pred, truth) -> float:
    return float(np.sqrt(np.mean((np.asarray(pred, float) - np.asarray(truth, float)) ** 2)))


def level_scores(prob: np.ndarray, test: Ratings) -> dict:
    """Accuracy, LPD and expected-rating RMSE of level probabilities (pairs, levels)."""
    levels = np.asarray(test.scale.levels, dtype=float)
    codes = test.level_codes
    picked = prob[np.arange(len(codes)), codes]
    return {"accuracy": float(np.mean(prob.argmax(axis=1) == codes)),
            "lpd": float(np.mean(np.log(np.maximum(picked, 1e-300)))),
            "rmse": rmse(prob @ levels, test.rating)}


# ---------------------------------------------------------------------------------------------
# the two systems
# ---------------------------------------------------------------------------------------------
def run_myfm(split, info: InfoSet, frames, seed: int, n_iter: int) -> dict | None:
    myfm = import_myfm("pip install myfm, or .[bench]")
    if myfm is None:
        return None
    train, test = split.train, split.test
    start = time.perf_counter()
    design = MyFMDesign(train, info, frames)
    X_train, rel_train = design.inputs(train)
    X_test, rel_test = design.inputs(test)
    common = {"X_rel": rel_train, "n_iter": n_iter, "n_kept_samples": n_iter,
              "group_shapes": design.group_shapes}
    if info.ordinal:
        fm = myfm.MyFMOrderedProbit(rank=10, random_seed=seed)
        fm.fit(X_train, train.level_codes, **common)
        row = level_scores(fm.predict_proba(X_test, rel_test), test)
    else:
        fm = myfm.MyFMRegressor(rank=10, random_seed=seed)
        fm.fit(X_train, train.rating, **common)
        pred = fm.predict(X_test, rel_test)
        row = {"rmse": rmse(train.scale.clip(pred), test.rating),
               "rmse_unclipped": rmse(pred, test.rating)}
    return {**row, "seconds": time.perf_counter() - start, "n_iter": n_iter,
            "n_columns": int(sum(design.group_shapes))}


def model_options(info: InfoSet, method: str, features: str, frames) -> dict:
    options = {"n_factors": 10, "implicit": info.implicit}
    if method == "gibbs":
        options["parameterisation"] = "centered"
    if info.attributes:
        if features == "auto":
            options |= {"user_features": "auto", "item_features": "auto"}
        else:
            options |= {"user_features": frames.user, "item_features": frames.item}
    if info.ordinal:
        options["likelihood"] = info.likelihood
    if info.day:
        options["context"] = "day"
    return options


def described(options: dict) -> dict:
    """Model options as JSON-ready text (a DataFrame option by its columns)."""
    return {k: (f"DataFrame{list(v.columns)}" if isinstance(v, pd.DataFrame) else v)
            for k, v in options.items()}


def fit_bayesrec(train: Ratings, options: dict, method: str, fit_options: dict, seed: int):
    """``(model, fit, None)``, or ``(None, None, refusal)`` when bayesrec refuses."""
    try:
        model = build_model("bpmf", train, **options)
    except InputError as exc:
        return None, None, {"status": "refused", "stage": "build_model", "message": str(exc)}
    try:
        dt = fit(model, method, random_seed=seed, **fit_options)
    except InputError as exc:
        return None, None, {"status": "refused", "stage": "fit", "message": str(exc)}
    return model, dt, None


def run_bayesrec(split, info: InfoSet, frames, seed: int, method: str, fit_options: dict,
                 features: str) -> dict:
    options = model_options(info, method, features, frames)
    start = time.perf_counter()
    model, dt, refusal = fit_bayesrec(split.train, options, method, fit_options, seed)
    if refusal is not None:
        return {**refusal, "model_options": described(options)}
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    pred = predict(dt, pairs=split.test, model=model, random_seed=seed, max_draws=None)
    predict_seconds = time.perf_counter() - start
    scores = score(pred, split.test)
    row = {"status": "ok", "rmse": scores["rmse"], "mae": scores["mae"],
           "coverage_90": scores["coverage_90"]}
    if info.ordinal:
        prob = pred["prob"].transpose("pair", "rating_level").values
        row |= level_scores(prob, split.test)
    row |= convergence(dt, model, split.test)
    return {**row, "fit_seconds": fit_seconds, "predict_seconds": predict_seconds,
            "seconds": fit_seconds + predict_seconds, "model_options": described(options)}


def convergence(dt, model, test: Ratings) -> dict:
    """Split R-hat and bulk ESS of the per-draw test RMSE (the quantity the row quotes), and
    whether it converged (R-hat < RHAT_TARGET); nothing for a point fit (one draw)."""
    post = dt["posterior"]
    if post.sizes["chain"] * post.sizes["draw"] < 4:
        return {}
    trace = rmse_trace(dt, test=test, model=model)["rmse"].sel(split="test").to_dataset(
        name="test_rmse")
    rhat = float(az.rhat(trace)["test_rmse"])
    return {"rhat_test_rmse": rhat, "ess_test_rmse": float(az.ess(trace, method="bulk")
                                                              ["test_rmse"]),
            "converged": rhat < RHAT_TARGET}


def warm_up(split, rows: list[str], frames, seed: int, method: str, fit_options: dict,
            features: str) -> dict:
    """Each row once on 5,000 ratings on both systems (compilation, caches); their seconds."""
    idx = np.random.default_rng(seed).choice(split.train.n_ratings, 5000, replace=False)
    small = SimpleNamespace(train=split.train.subset(idx), test=split.test.subset(np.arange(500)))
    short = {**fit_options, "draws": 20, "tune": 10} if method == "gibbs" else fit_options
    out = {}
    for name in rows:
        start = time.perf_counter()
        run_myfm(small, ROWS[name], frames, seed, 20)
        myfm_seconds = time.perf_counter() - start
        start = time.perf_counter()
        status = run_bayesrec(small, ROWS[name], frames, seed, method, short, features)["status"]
        out[name] = {"myfm_seconds": myfm_seconds, "bayesrec_seconds": time.perf_counter() - start,
                     "bayesrec_status": status}
    return {"n_ratings": len(idx), "rows": out}


# ---------------------------------------------------------------------------------------------
# cold start
# ---------------------------------------------------------------------------------------------
def cold_split(split, seed: int, share: float = 0.1):
    """Training ratings without a random ``share`` of the users (who leave the id universe),
    and those users' ratings from both files of the split."""
    train, test = split.train, split.test
    users = np.unique(np.concatenate([train.user_ids, test.user_ids]))
    rng = np.random.default_rng(seed)
    cold = np.sort(rng.choice(users, int(round(share * len(users))), replace=False))
    warm_ids = train.users[~train.users.isin(cold)]
    keep = ~np.isin(train.user_ids, cold)
    info = train.user_info
    cold_train = Ratings.from_arrays(
        train.user_ids[keep], train.item_ids[keep], train.rating[keep],
        timestamps=train.timestamp[keep], scale=train.scale, user_ids=warm_ids,
        item_ids=train.items, user_info=None if info is None else info.loc[warm_ids],
        item_info=train.item_info)
    held = [(r, np.isin(r.user_ids, cold)) for r in (train, test)]
    cold_test = Ratings.from_arrays(
        np.concatenate([r.user_ids[m] for r, m in held]),
        np.concatenate([r.item_ids[m] for r, m in held]),
        np.concatenate([r.rating[m] for r, m in held]), scale=train.scale,
        user_ids=train.users, item_ids=train.items)
    return cold_train, cold_test, cold


def cold_prediction(dt, model, test: Ratings, seed: int, user_features=None) -> dict:
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pred = predict(dt, pairs=test, model=model, random_seed=seed, max_draws=None,
                       user_features=user_features)
    scores = score(pred, test)
    return {"status": "ok", "rmse": scores["rmse"], "coverage_90": scores["coverage_90"],
            "predict_seconds": time.perf_counter() - start,
            "warnings": sorted({str(w.message)[:200] for w in caught})}


def cold_start(split, frames, seed: int, method: str, fit_options: dict, features: str) -> dict:
    train, test, cold = cold_split(split, seed)
    out = {"fold": split.name, "n_cold_users": len(cold), "n_train": train.n_ratings,
           "n_test": test.n_ratings, "cold_users": cold.tolist(), "rows": {}}
    with_info = ROWS["attributes"]
    options = model_options(with_info, method, features, frames)
    if features != "auto":  # the model sees the warm users' rows only
        options["user_features"] = frames.user.loc[train.users]
    new_features = (split.train.user_info if features == "auto" else frames.user).loc[cold]
    print("cold start: BPMF with features ...", file=sys.stderr, flush=True)
    start = time.perf_counter()
    model, dt, refusal = fit_bayesrec(train, options, method, fit_options, seed)
    rows = out["rows"]
    if refusal is not None:
        rows["features"] = rows["features_withheld"] = refusal
    else:
        fit_seconds = time.perf_counter() - start
        rows["features"] = {**cold_prediction(dt, model, test, seed, new_features),
                            "fit_seconds": fit_seconds}
        rows["features_withheld"] = {**cold_prediction(dt, model, test, seed),
                                     "fit_seconds": fit_seconds}
    print("cold start: BPMF without features ...", file=sys.stderr, flush=True)
    plain = model_options(ROWS["none"], method, features, frames)
    start = time.perf_counter()
    model, dt, refusal = fit_bayesrec(train, plain, method, fit_options, seed)
    if refusal is not None:
        rows["no_features"] = refusal
    else:
        fit_seconds = time.perf_counter() - start
        rows["no_features"] = {**cold_prediction(dt, model, test, seed),
                               "fit_seconds": fit_seconds}
    with_f, withheld = rows["features"], rows["features_withheld"]
    if with_f["status"] == "ok":
        low, high = TARGETS["cold_start_coverage_90"]
        out["targets_met"] = {
            "gain_over_features_withheld": with_f["rmse"] <= withheld["rmse"]
            - TARGETS["cold_start_gain"],
            "coverage_90": low <= with_f["coverage_90"] <= high}
    return out


# ---------------------------------------------------------------------------------------------
# summaries and tables
# ---------------------------------------------------------------------------------------------
METRICS = ("rmse", "accuracy", "lpd", "coverage_90", "seconds")


def summarise(per_fold: dict) -> dict:
    """Per row: each system's means over the folds that ran, and the targets met."""
    out = {}
    names = list(dict.fromkeys(r for fold in per_fold.values() for r in fold))
    for name in names:
        entries = [fold[name] for fold in per_fold.values() if name in fold]
        line = {}
        for system in ("myfm", "bayesrec"):
            runs = [e[system] for e in entries if e.get(system)]
            ok = [r for r in runs if r.get("status", "ok") == "ok"]
            if len(ok) == len(runs) and ok:
                line[system] = {k: float(np.mean([r[k] for r in ok])) for k in METRICS
                                if k in ok[0]}
                line[system]["folds"] = len(ok)
                if "rhat_test_rmse" in ok[0]:  # the worst fold's, not a mean
                    line[system]["max_rhat_test_rmse"] = max(r["rhat_test_rmse"] for r in ok)
                    line[system]["converged"] = all(r["converged"] for r in ok)
            elif runs:  # refused or not implemented on some fold: that status, not a mean
                first = next(r for r in runs if r.get("status", "ok") != "ok")
                line[system] = {"status": first["status"], "message": first["message"]}
        line["targets_met"] = row_targets(name, line)
        out[name] = line
    return out


def row_targets(name: str, line: dict) -> dict:
    mine, ref = line.get("bayesrec", {}), line.get("myfm", {})
    if "rmse" not in ref:
        return {}
    if "rmse" not in mine:  # refused or not implemented: no target is met
        keys = (("beats_myfm_rmse", "beats_myfm_accuracy", "beats_myfm_lpd")
                if ROWS[name].ordinal else ("rmse_within_margin",))
        return dict.fromkeys((*keys, "time_ratio"), False)
    met = {"time_ratio": mine["seconds"] <= TARGETS["time_ratio_to_myfm"] * ref["seconds"]}
    if ROWS[name].ordinal:
        met |= {"beats_myfm_rmse": mine["rmse"] < ref["rmse"],
                "beats_myfm_accuracy": mine["accuracy"] > ref["accuracy"],
                "beats_myfm_lpd": mine["lpd"] > ref["lpd"]}
    else:
        met["rmse_within_margin"] = mine["rmse"] <= ref["rmse"] + TARGETS["rmse_margin_to_myfm"]
    return met


def best_row(record: dict) -> dict | None:
    """The Gaussian bayesrec row with the lowest mean RMSE, and the best-row targets."""
    means = {n: m["bayesrec"]["rmse"] for n, m in record["mean"].items()
             if not ROWS[n].ordinal and "rmse" in m.get("bayesrec", {})}
    if not means:
        return None
    name = min(means, key=means.get)
    u1 = record["per_fold"].get("u1", {}).get(name, {}).get("bayesrec", {}).get("rmse")
    return {"row": name, "rmse": means[name], "rmse_u1": u1,
            "targets_met": {"rmse": means[name] <= TARGETS["best_rmse"],
                            "rmse_u1": None if u1 is None else u1 <= TARGETS["best_rmse_u1"]}}


def cell(entry: dict | None, key: str) -> str:
    if not entry:
        return "-"
    if key in entry:
        return f"{entry[key]:.1f}" if key == "seconds" else f"{entry[key]:.4f}"
    return entry.get("status", "-")


def yes_no(flag) -> str:
    return "-" if flag is None else ("met" if flag else "NO")


def print_tables(record: dict) -> None:
    mean = record.get("mean", {})
    folds = ", ".join(record["folds"])
    gaussian = [n for n in mean if not ROWS[n].ordinal]
    if gaussian:
        print(f"\nSide information, MovieLens 100K ({folds}), rank 10; bayesrec BPMF by "
              f"{record['method']} beside myFM ({record['myfm']['n_iter']} sweeps); means "
              f"over folds")
        lines = []
        for n in gaussian:
            m, b, t = mean[n].get("myfm"), mean[n].get("bayesrec"), mean[n]["targets_met"]
            lines.append({"row": n, "issue myFM": ISSUE_MYFM.get(n), "myFM rmse": cell(m, "rmse"),
                          "bayesrec rmse": cell(b, "rmse"), "cov90": cell(b, "coverage_90"),
                          "R-hat": cell(b, "max_rhat_test_rmse"),
                          "myFM s": cell(m, "seconds"), "bayesrec s": cell(b, "seconds"),
                          "rmse <= myFM+0.002": yes_no(t.get("rmse_within_margin")),
                          "time <= 2x": yes_no(t.get("time_ratio"))})
        print(pd.DataFrame(lines).to_string(index=False))
        best = record.get("best")
        if best:
            print(f"best bayesrec row: {best['row']} {best['rmse']:.4f} (target <= 0.877: "
                  f"{yes_no(best['targets_met']['rmse'])}); u1 {best['rmse_u1']} (target <= "
                  f"0.886: {yes_no(best['targets_met']['rmse_u1'])})")
        else:
            print("best bayesrec row: none ran (target <= 0.877: NO)")
        for n in gaussian:
            b = mean[n].get("bayesrec", {})
            if b.get("status") == "refused":
                print(f"  {n}: bayesrec refused: {b['message']}")
    ordinal = [n for n in mean if ROWS[n].ordinal]
    if ordinal:
        print(f"\nOrdered probit with side information ({folds}): means over folds")
        lines = []
        for n in ordinal:
            for system in ("myfm", "bayesrec"):
                e = mean[n].get(system)
                lines.append({"row": n, "system": system,
                              **{k: cell(e, k) for k in ("accuracy", "lpd", "rmse", "seconds")}})
            ref = ISSUE_MYFM.get(n)
            if ref:
                lines.append({"row": n, "system": "issue myFM",
                              **{k: f"{v:.4f}" for k, v in ref.items()}})
        print(pd.DataFrame(lines).to_string(index=False))
        for n in ordinal:
            t = mean[n]["targets_met"]
            print(f"  {n}: beats myFM on rmse / accuracy / lpd: "
                  f"{yes_no(t.get('beats_myfm_rmse'))} / {yes_no(t.get('beats_myfm_accuracy'))}"
                  f" / {yes_no(t.get('beats_myfm_lpd'))}; time <= 2x: "
                  f"{yes_no(t.get('time_ratio'))}")
    cold = record.get("cold_start")
    if cold:
        print(f"\nCold start on {cold['fold']}: {cold['n_cold_users']} users held out, "
              f"{cold['n_test']} of their ratings predicted")
        lines = [{"prediction": k, "rmse": cell(v, "rmse"), "coverage_90": cell(v, "coverage_90")}
                 for k, v in cold["rows"].items()]
        print(pd.DataFrame(lines).to_string(index=False))
        t = cold.get("targets_met", {})
        print(f"  features beat features withheld by >= 0.01: "
              f"{yes_no(t.get('gain_over_features_withheld'))}; coverage in [0.87, 0.93]: "
              f"{yes_no(t.get('coverage_90'))}")
        refused = {v["message"] for v in cold["rows"].values() if v.get("status") == "refused"}
        for message in refused:
            print(f"  bayesrec refused: {message}")


# ---------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------
def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-home", help="folder holding ml-100k/ (default $BAYESREC_DATA)")
    parser.add_argument("--folds", default="u1,u2,u3,u4,u5", help="comma-separated folds")
    parser.add_argument("--rows", default=",".join(ROWS),
                        help=f"comma-separated information sets, of {', '.join(ROWS)}")
    parser.add_argument("--method", default="gibbs", help="bayesrec's fit method (default gibbs)")
    parser.add_argument("--n-iter", type=int, default=512, help="myFM sweeps (all kept)")
    parser.add_argument("--draws", type=int, default=None,
                        help="Gibbs draws per chain (default 600; --quick 60)")
    parser.add_argument("--tune", type=int, default=None,
                        help="Gibbs burn-in sweeps per chain (default 100; --quick 30)")
    parser.add_argument("--cores", type=int, default=2, help="Gibbs chains run in parallel")
    parser.add_argument("--features", choices=("same", "auto"), default="same",
                        help="bayesrec's features: the same columns as myFM's (default) or "
                             "the loader's user_info / item_info ('auto')")
    parser.add_argument("--no-cold-start", action="store_true", help="skip the cold-start section")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true",
                        help="u1, short chains (a smoke test: its figures are not targets)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="JSON output file")
    args = parser.parse_args(argv)
    args.rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = [r for r in args.rows if r not in ROWS]
    if unknown:
        parser.error(f"unknown row(s) {unknown}; choose from {list(ROWS)}")
    if args.quick:
        args.folds, args.n_iter = "u1", min(args.n_iter, 64)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    folds = [f.strip() for f in args.folds.split(",") if f.strip()]
    try:
        splits = movielens_folds(folds, data_home=args.data_home)
    except (InputError, FileNotFoundError) as exc:
        print(f"benchmarks/side_information.py: MovieLens 100K is not available, nothing to "
              f"do.\n{exc}", file=sys.stderr)
        return 0
    fit_options = {}
    if args.method == "gibbs":
        fit_options = {"draws": args.draws or (60 if args.quick else 600),
                       "tune": args.tune or (30 if args.quick else 100),
                       "chains": 2, "cores": args.cores}
    elif args.quick and args.method == "map":
        fit_options = {"maxiter": 200}  # a smoke test of the path, not a converged MAP
    full = splits[0].train
    frames = SimpleNamespace(user=user_attributes(full.user_info),
                             item=item_attributes(full.item_info))
    record = {"benchmark": "side_information", "dataset": "ml-100k", "folds": folds,
              "seed": args.seed, "quick": args.quick, "method": args.method,
              "fit_options": fit_options, "method_defaults": method_defaults(args.method),
              "features": args.features,
              "myfm": {"rank": 10, "n_iter": args.n_iter, "n_kept_samples": args.n_iter,
                       "relation_blocks": True},
              "rows": {n: asdict(ROWS[n]) for n in args.rows},
              "encodings": {"age_bands": list(AGE_LABELS),
                            "user_attributes": list(USER_ATTRIBUTES),
                            "item_attributes": list(frames.item.columns),
                            "day": "timestamp // 86400, one-hot over the training fold's days",
                            "implicit": "1/sqrt(|N|) over the training fold's pairs"},
              "issue_myfm": ISSUE_MYFM, "targets": TARGETS, **provenance(), "per_fold": {}}
    print("warm-up (compilation, caches) ...", file=sys.stderr, flush=True)
    record["warm_up"] = warm_up(splits[0], args.rows, frames, args.seed, args.method,
                                fit_options, args.features)
    for fold, split in zip(folds, splits, strict=True):
        record["per_fold"][fold] = {}
        for name in args.rows:
            info = ROWS[name]
            print(f"{fold} {name}: myFM ...", file=sys.stderr, flush=True)
            ref = run_myfm(split, info, frames, args.seed, args.n_iter)
            print(f"{fold} {name}: bayesrec BPMF ({args.method}) ...", file=sys.stderr,
                  flush=True)
            row = run_bayesrec(split, info, frames, args.seed, args.method, fit_options,
                               args.features)
            if ref is not None and row["status"] == "ok":
                row["time_ratio_to_myfm"] = row["seconds"] / ref["seconds"]
            record["per_fold"][fold][name] = {"myfm": ref, "bayesrec": row}
            print(f"  myFM {ref}\n  bayesrec {row}", file=sys.stderr, flush=True)
        record["mean"] = summarise(record["per_fold"])
        record["best"] = best_row(record)
        # after every fold: a partial run keeps its folds, and says which ran
        record["folds_done"] = list(record["per_fold"])
        record["complete"] = False
        write_json(args.output, record)
    if not args.no_cold_start:
        cold_fold = "u1" if "u1" in folds else folds[0]
        record["cold_start"] = cold_start(splits[folds.index(cold_fold)], frames, args.seed,
                                          args.method, fit_options, args.features)
    record["mean"] = summarise(record["per_fold"])
    record["best"] = best_row(record)
    record["complete"] = True
    print_tables(record)
    write_json(args.output, record)
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
