"""Write the gallery's notebooks from their cell sources, and optionally execute them.

The notebooks are generated so that their code stays reviewable as plain Python:

    python notebooks/build.py            # write the .ipynb files (no outputs)
    python notebooks/build.py --execute  # and run them top to bottom, saving outputs

``--execute`` runs in full mode unless ``BAYESREC_FAST=1`` is set; CI runs the
notebooks through ``pytest --nbmake`` in fast mode (see ``tests/conftest.py``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

SETUP = '''\
import os
import numpy as np
import matplotlib.pyplot as plt

import bayesrec
# Fast mode (CI): a small dataset and short fits.  Unset BAYESREC_FAST for the full run.
FAST = os.environ.get("BAYESREC_FAST", "0") == "1"
print("fast mode" if FAST else "full mode", "| bayesrec", bayesrec.__version__)'''

# the inline backend shows figures that bayesrec returns (matplotlib Figure objects) with
# display(); without it they print as text until pyplot has drawn a figure
SETUP_INLINE = "%matplotlib inline\n" + SETUP

VERSIONS = '''\
from bayesrec.evaluation import versions
versions()'''


def quick_start() -> list:
    md, code = new_markdown_cell, new_code_cell
    return [
        md("# 1. Quick start: fit, predict, recommend, and check against the truth\n\n"
           "bayesrec ships an embedded dataset: ratings on 1..5 simulated from a known "
           "low-rank-plus-biases model, the size of MovieLens 100K. Because the true "
           "parameters are known, we can check what a fit gets right, not just its test "
           "score."),
        code(SETUP),
        code('''\
from bayesrec.data.splits import holdout
from bayesrec.data.synthetic import load_synthetic, true_mean

small = dict(n_users=200, n_items=150, n_ratings=6000) if FAST else {}
ratings, truth = load_synthetic(**small)
split = holdout(ratings, 0.2, seed=0)
train, test = split.train, split.test
print(ratings)
print(split.report())'''),
        md("## Baselines\n\nEvery comparison starts with the simple models."),
        code('''\
from bayesrec.evaluation import evaluate

rows = {}
for name in ["global_mean", "mean_of_means", "biases"]:
    res = evaluate(name, [split], seed=0)
    rows[name] = res.summary().loc["rmse", "mean"]
floor = np.sqrt(np.mean((test.rating - true_mean(truth, test.user, test.item)) ** 2))
rows["truth (noise floor)"] = floor
{k: round(v, 4) for k, v in rows.items()}'''),
        md("## Bayesian PMF by block Gibbs\n\n"
           "`build_model` returns a plain `pm.Model` with named dims labelled by your ids; "
           "`fit` runs it. Gibbs draws each user's and each item's factors from their exact "
           "Gaussian conditionals, so it is fast and needs no tuning."),
        code('''\
from bayesrec.models import build_model
from bayesrec.inference import fit, predict, recommend

model = build_model("bpmf", train, n_factors=3 if FAST else 10, parameterisation="centered")
draws = dict(draws=100, tune=50) if FAST else dict(draws=500, tune=100)
posterior = fit(model, "gibbs", chains=2, random_seed=1, **draws)
posterior'''),
        code('''\
pred = predict(posterior, pairs=test, random_seed=2)
err = pred["mean"].values - test.rating
print(f"test RMSE {np.sqrt(np.mean(err ** 2)):.4f} (noise floor {floor:.4f})")
pred[["mean", "sd"]].to_dataframe().head()'''),
        md("## Against the truth\n\n"
           "The posterior-mean prediction should track the true expected rating, and the "
           "90 % predictive intervals should cover about 90 % of the held-out ratings."),
        code('''\
from bayesrec.diagnostics import interval_coverage, plot_calibration, calibration_table

true = true_mean(truth, test.user, test.item)
fig, ax = plt.subplots(1, 2, figsize=(10, 4))
ax[0].hexbin(true, pred["mean"].values, gridsize=40, mincnt=1, cmap="Blues")
ax[0].plot([1, 5], [1, 5], "k--", lw=1)
ax[0].set(xlabel="true mean of the latent rating (before rounding to 1..5)",
          ylabel="posterior mean prediction",
          title=f"r = {np.corrcoef(true, pred['mean'].values)[0, 1]:.3f}")
cal = calibration_table(pred, test)
ax[1].plot(cal["level"], cal["coverage"], "o-")
ax[1].plot([0, 1], [0, 1], "k--", lw=1)
ax[1].set(xlabel="nominal level", ylabel="empirical coverage", title="calibration")
fig.tight_layout()
interval_coverage(pred, test).to_dataframe()'''),
        md("## Recommendations, with their uncertainty\n\n"
           "Batched over users; items a user already rated are excluded."),
        code('''\
top = recommend(posterior, train.users[:3].to_numpy(), n=5)
top.to_dataframe().reset_index()'''),
        md("## Convergence on identifiable quantities\n\n"
           "Factor matrices are identified only up to rotation, so R-hat on raw factors "
           "means nothing; bayesrec checks the Frobenius norms, the log-likelihood and the "
           "predictions of sampled pairs instead."),
        code('''\
from bayesrec.diagnostics import convergence_summary, frobenius_norms, plot_norm_traces, rmse_trace, plot_rmse_trace

from IPython.display import display

display(plot_norm_traces(frobenius_norms(posterior)))
display(plot_rmse_trace(rmse_trace(posterior, train, test)))
print(convergence_summary(posterior, pairs=test))'''),
        md("## Save and load\n\nA fit is a netCDF file with the id maps, the scale and "
           "a hash; the loaded fit predicts without the training data."),
        code('''\
import tempfile
from pathlib import Path
from bayesrec.inference import save_fit, load_fit

path = save_fit(posterior, Path(tempfile.mkdtemp()) / "bpmf.nc")
again = load_fit(path)
same = predict(again, pairs=test, random_seed=2)
assert np.array_equal(same["mean"].values, pred["mean"].values)
print(path.name, f"{path.stat().st_size / 1e6:.1f} MB, identical predictions after loading")'''),
        md("## Versions"),
        code(VERSIONS),
    ]


DATA = '''\
# MovieLens 100K fold u1 through the loader (data home: $BAYESREC_DATA); the embedded
# dataset when MovieLens is absent or in fast mode.
from bayesrec.data.splits import holdout
from bayesrec.data.synthetic import load_synthetic

try:
    if FAST:
        raise FileNotFoundError("fast mode")
    from bayesrec.data.movielens import load_movielens_fold
    split = load_movielens_fold("u1")
    DATASET = "MovieLens 100K, fold u1"
except Exception as exc:  # no MovieLens here (or fast mode): the embedded dataset
    ratings, _ = load_synthetic(n_users=150, n_items=120, n_ratings=4000) if FAST else load_synthetic()
    split = holdout(ratings, 0.2, seed=0)
    DATASET = f"embedded synthetic dataset ({exc})"
train, test = split.train, split.test
print(DATASET)
print(split.report())'''


def mmsbm_notebook() -> list:
    md, code = new_markdown_cell, new_code_cell
    return [
        md("# 4. MMSBM: memberships, rating patterns, and a distribution over rating levels\n\n"
           "The mixed-membership stochastic block model (Godoy-Lorite et al., PNAS 2016) "
           "treats ratings as categories: each user belongs to K groups with mixed "
           "memberships, each item to L groups, and every pair of groups has its own "
           "distribution over the rating levels. Its prediction for a pair is a full "
           "distribution over 1..5, so the expected rating (RMSE), the median (MAE) and "
           "the most probable rating (accuracy) all follow from one fit."),
        code(SETUP),
        code(DATA),
        md("## MAP by EM, several restarts averaged\n\n"
           "`fit(model, \"map\")` runs EM (the model declares an E-step, computed by a Numba "
           "kernel); each restart starts from its own prior draw and becomes a chain, and "
           "predictions average the restarts' level probabilities, as the paper does."),
        code('''\
import time
from bayesrec.models import build_model
from bayesrec.inference import fit, predict
from bayesrec.metrics import score

K = L = 4 if FAST else 10
model = build_model("mmsbm", train, n_user_groups=K, n_item_groups=L)
start = time.perf_counter()
em_fit = fit(model, "map", random_seed=0, restarts=2 if FAST else 10,
             maxiter=60 if FAST else 400)
print(f"fit {time.perf_counter() - start:.1f} s")
pred = predict(em_fit, pairs=test, random_seed=0)
bayes_scores = score(pred, test)
em_fit["optimizer_result"].to_dataset()[["log_likelihood"]].to_dataframe().T'''),
        code("{k: round(v, 4) for k, v in bayes_scores.items()}"),
        md("## The predictive distribution over rating levels\n\n"
           "Each pair gets a probability for every level: here the average over the "
           "restarts (for NUTS or ADVI fits, over the posterior draws, which are kept as "
           "`prob_draws` for their uncertainty)."),
        code('''\
fig, axes = plt.subplots(1, 4, figsize=(13, 3), sharey=True)
levels = pred["rating_level"].values
for ax, k in zip(axes, range(4)):
    p = pred["prob"].isel(pair=k).values
    ax.bar(levels, p, color="C0", alpha=0.8)
    ax.axvline(test.rating[k], color="C3", ls="--", label="observed")
    ax.set(title=f"user {pred['user'].values[k]}, item {pred['item'].values[k]}",
           xlabel="rating", xticks=levels)
axes[0].set_ylabel("P(rating)")
axes[0].legend()
fig.tight_layout()'''),
        md("## Memberships and rating patterns\n\n"
           "Group labels are exchangeable: restarts find the same structure under "
           "different labels. `memberships` and `rating_patterns` read the best restart "
           "(by training log-likelihood only); `plot_mmsbm_rating_patterns` shows the "
           "K x L table of expected ratings with each pair's distribution."),
        code('''\
from bayesrec.models.mmsbm_tools import memberships, rating_patterns
from bayesrec.diagnostics.plots_mmsbm import plot_mmsbm_rating_patterns
from IPython.display import display

mem = memberships(em_fit)
print(mem)
patterns = rating_patterns(em_fit)
display(plot_mmsbm_rating_patterns(patterns))'''),
        code('''\
# how mixed are the users? the largest membership of each user
top = mem["theta"].max("user_group")
fig, ax = plt.subplots(figsize=(5, 3))
ax.hist(np.ravel(top.values), bins=30)
ax.set(xlabel="largest group membership of a user", ylabel="users")'''),
        md("## Against the `mmsbm` package's EM\n\n"
           "The reference implementation (PyPI `mmsbm` 2.0.1, maximum likelihood by EM, "
           "5 restarts averaged), on the same split. bayesrec's MAP with the default flat "
           "membership priors and a light Dirichlet(2) smoothing of each rating "
           "distribution is the Bayesian counterpart of the same estimate."),
        code('''\
import pandas as pd
from mmsbm import MMSBM
from bayesrec.models.mmsbm_tools import package_probabilities
from bayesrec.predictions import from_probabilities

frame = pd.DataFrame({"users": train.user_ids, "items": train.item_ids, "ratings": train.rating})
em = MMSBM(K, L, iterations=60 if FAST else 400, sampling=2 if FAST else 5, seed=0,
           backend="numba")
em._show_progress = False
start = time.perf_counter()
em.fit(frame, silent=True)
print(f"package fit {time.perf_counter() - start:.1f} s")

prob = package_probabilities(em, train, test)  # restart-averaged, as bayesrec's
package_scores = score(from_probabilities(test.user_ids, test.item_ids, prob, test.scale), test)
pd.DataFrame({"bayesrec MAP (EM)": bayes_scores, "mmsbm package EM": package_scores}).round(4)'''),
        md("## Versions"),
        code(VERSIONS),
    ]


def comparison_notebook() -> list:
    md, code = new_markdown_cell, new_code_cell
    return [
        md("# 6. Model comparison across the zoo\n\n"
           "Every registered model on the same split, through the same interface "
           "(`make_recommender(name, method).fit(train).predict_ratings(test)`): point "
           "metrics of the posterior-mean prediction (RMSE, MAE, exact-rating accuracy), "
           "ranking metrics of the test items per user (precision, recall and nDCG at 10, "
           "items rated 4 or more count as relevant), and the coverage of the 90 % "
           "predictive intervals, which says whether the uncertainty is honest."),
        code(SETUP),
        code(DATA),
        code('''\
import time
import pandas as pd
from bayesrec.metrics import ranking_scores, score
from bayesrec.models import make_recommender

ROWS = [("uniform", None), ("global_mean", None), ("mean_of_means", None), ("biases", None),
        ("pmf", "map"), ("bpmf", "gibbs"), ("mmsbm", "map"), ("mpma", "map")]
results, predictions = {}, {}
for name, method in ROWS:
    start = time.perf_counter()
    options = {} if method is None else {"n_factors": 10} if name in ("pmf", "bpmf", "mpma") else {}
    rec = make_recommender(name, method, fast=FAST, options=None if FAST else options,
                           random_seed=0).fit(train)
    pred = rec.predict_ratings(test)
    seconds = time.perf_counter() - start
    label = f"{name} ({method or 'fit'})"
    predictions[label] = pred
    results[label] = {**score(pred, test), **ranking_scores(pred, test), "seconds": seconds}
table = pd.DataFrame(results).T
table[["rmse", "mae", "accuracy", "coverage_90", "precision_at_10", "ndcg_at_10", "seconds"]].round(4)'''),
        code('''\
fig, ax = plt.subplots(1, 2, figsize=(12, 4))
order = table.sort_values("rmse").index
ax[0].barh(order, table.loc[order, "rmse"], color="C0")
ax[0].set(xlabel="test RMSE (lower is better)", xlim=(0.85, table["rmse"].max() * 1.02))
ax[0].invert_yaxis()
ax[1].barh(order, table.loc[order, "coverage_90"], color="C2")
ax[1].axvline(0.9, color="k", ls="--", lw=1)
ax[1].set(xlabel="coverage of the 90 % predictive interval (0.90 is honest)", xlim=(0.6, 1.0))
ax[1].invert_yaxis()
fig.tight_layout()'''),
        md("Reading the table (MovieLens u1, full run): every Bayesian model beats the bias "
           "baseline on RMSE, MAE and accuracy. BPMF by Gibbs, with its learned "
           "regularisation and posterior averaging, has the lowest RMSE and its 90 % "
           "intervals cover 0.900 of the test ratings. MMSBM, which predicts a distribution "
           "over the five levels, has the best MAE (its median) and exact-rating accuracy "
           "(its most probable level); its discrete intervals over-cover. MAP fits plug in "
           "a point estimate and ignore parameter uncertainty, so their intervals are too "
           "narrow (PMF MAP 0.855). MPMA's MAP is not yet better than PMF's: its mixture "
           "collapses towards one component (an open issue).\n\n"
           "Not here yet: PSIS-LOO / WAIC comparisons (they need the pointwise "
           "log-likelihood of sampled fits, which bayesrec does not store yet)."),
        md("## Versions"),
        code(VERSIONS),
    ]


def bpmf_notebook() -> list:
    md, code = new_markdown_cell, new_code_cell
    return [
        md("# 3. Bayesian PMF: what the hyperpriors buy\n\n"
           "PMF fixes the prior precision of the factors (the regularisation "
           "lambda = sigma^2 / sigma_U^2 is a tuning knob). BPMF (Salakhutdinov & Mnih "
           "2008) puts hyperpriors on the factor means and covariances and learns them "
           "from the data. Here: PMF by MAP with its documented fixed prior against BPMF "
           "sampled by block Gibbs, on the same split; the regularisation BPMF learns; "
           "uncertainty per user; calibration."),
        code(SETUP),
        code(DATA),
        code('''\
from bayesrec.models import build_model
from bayesrec.inference import fit, predict
from bayesrec.metrics import score

K = 3 if FAST else 10
pmf_fit = fit(build_model("pmf", train, n_factors=K, factor_scale=2 / 3), "map", random_seed=0)
bpmf_model = build_model("bpmf", train, n_factors=K, parameterisation="centered")
draws = dict(draws=100, tune=50) if FAST else dict(draws=500, tune=100)
bpmf_fit = fit(bpmf_model, "gibbs", chains=2, random_seed=0, **draws)
preds = {"PMF (MAP, fixed prior)": predict(pmf_fit, pairs=test, random_seed=0),
         "BPMF (Gibbs, learned hyperpriors)": predict(bpmf_fit, pairs=test, random_seed=0)}
import pandas as pd
pd.DataFrame({k: score(v, test) for k, v in preds.items()}).round(4)'''),
        md("## The regularisation BPMF learns\n\n"
           "PMF's prior sd of every factor is fixed (`pmf_default_priors`, scaled by "
           "2/3 for MAP). BPMF learns one sd per factor and side, and the noise sd: the "
           "implied regularisation lambda_k = sigma^2 / sd_k^2 differs by factor and "
           "side, which a single fixed lambda cannot do."),
        code('''\
from bayesrec.models.pmf import pmf_default_priors

fixed = pmf_default_priors(train.scale)["user_factor_sd"] * 2 / 3
post = bpmf_fit["posterior"].to_dataset()
fig, ax = plt.subplots(1, 2, figsize=(11, 3.5))
for k, side in enumerate(("user", "item")):
    sd = post[f"{side}_factor_sd"]
    lo, mid, hi = (sd.quantile(q, ("chain", "draw")).values for q in (0.05, 0.5, 0.95))
    x = np.arange(len(mid)) + 0.2 * k
    ax[0].errorbar(x, mid, yerr=[mid - lo, hi - mid], fmt="o", ms=4, label=f"{side} factors")
ax[0].axhline(fixed, color="k", ls="--", lw=1, label="PMF's fixed prior sd (MAP)")
ax[0].set(xlabel="factor", ylabel="prior sd of the factor", title="learned factor scales (90 % intervals)")
ax[0].legend(fontsize="small")
lam = (post["sigma"] ** 2 / post["user_factor_sd"] ** 2).median(("chain", "draw"))
ax[1].bar(np.arange(len(lam)), lam.values)
ax[1].axhline(float(post["sigma"].median() ** 2 / fixed ** 2), color="k", ls="--", lw=1,
              label="PMF MAP's lambda (same noise)")
ax[1].set(xlabel="factor", ylabel="lambda_U = sigma^2 / sd^2", yscale="log",
          title="implied user regularisation per factor")
ax[1].legend(fontsize="small")
fig.tight_layout()'''),
        md("## Uncertainty per user\n\n"
           "The posterior predictive sd of a user's ratings combines the rating noise "
           "with the uncertainty about that user's factors, which shrinks as the user "
           "rates more. A MAP fit has one point estimate, so its sd is the noise alone."),
        code('''\
counts = np.bincount(train.user, minlength=train.n_users)
fig, ax = plt.subplots(figsize=(6, 4))
for label, pred in preds.items():
    sd = pd.Series(pred["sd"].values).groupby(test.user).mean()
    ax.scatter(counts[sd.index], sd.values, s=6, alpha=0.5, label=label)
ax.set(xscale="log", xlabel="user's training ratings", ylabel="mean predictive sd of the user's test ratings")
ax.legend(fontsize="small")'''),
        md("## Calibration\n\n"
           "Coverage of central predictive intervals on the test ratings at every level: "
           "on the diagonal means the stated uncertainty is the real uncertainty."),
        code('''\
from IPython.display import display
from bayesrec.diagnostics import calibration_table, plot_calibration

display(plot_calibration({k: calibration_table(v, test) for k, v in preds.items()}))'''),
        md("## Versions"),
        code(VERSIONS),
    ]


def pmf_notebook() -> list:
    md, code = new_markdown_cell, new_code_cell
    return [
        md("# 2. PMF on MovieLens 100K: baselines, MAP, ADVI and NUTS\n\n"
           "The questions of PyMC's PMF example, answered with bayesrec: does MAP beat "
           "the baselines, what do NUTS and ADVI add, and has the sampler converged "
           "(judged on identifiable quantities: factor norms, log-likelihood, "
           "predictions, never on the rotatable factors themselves)?"),
        code(SETUP_INLINE),
        code(DATA),
        code('''\
import time
import pandas as pd
from bayesrec.evaluation import evaluate

results = {}
for name in ["uniform", "global_mean", "mean_of_means", "biases"]:
    results[name] = evaluate(name, [split], seed=0)
pd.DataFrame({k: r.summary()["mean"] for k, r in results.items()}).T[["rmse", "mae", "coverage_90"]].round(4)'''),
        md("## MAP, ADVI and NUTS\n\n"
           "MAP starts from a prior draw (started at all-zero factors, the optimiser "
           "would sit on the saddle point U = V = 0 and return the bias model). "
           "NUTS runs nutpie, 2 chains of 500 tuning and 500 kept draws."),
        code('''\
from bayesrec.models import build_model
from bayesrec.inference import fit, predict

K = 3 if FAST else 10
fits, seconds = {}, {}
settings = {
    "map": dict(),
    "advi": dict(n=3000) if FAST else dict(),
    "nuts": dict(draws=100, tune=100, chains=2) if FAST else dict(draws=500, tune=500, chains=2),
}
for method, options in settings.items():
    factor_scale = 2 / 3 if method == "map" else 1.0   # the registry's MAP setting
    model = build_model("pmf", train, n_factors=K, factor_scale=factor_scale)
    start = time.perf_counter()
    fits[method] = fit(model, method, random_seed=0, **options)
    seconds[method] = time.perf_counter() - start
    print(f"{method}: {seconds[method]:.0f} s")'''),
        code('''\
from bayesrec.metrics import score

rows = {k: r.summary()["mean"][["rmse", "mae", "coverage_90"]] for k, r in results.items()}
preds = {}
for method, f in fits.items():
    preds[method] = predict(f, pairs=test, random_seed=0)
    rows[f"pmf {method}"] = pd.Series(score(preds[method], test))[["rmse", "mae", "coverage_90"]]
table = pd.DataFrame(rows).T
table["fit s"] = [seconds.get(k.replace("pmf ", ""), np.nan) for k in table.index]
table.round(4)'''),
        md("## Convergence of NUTS, on identifiable quantities"),
        code('''\
from IPython.display import display
from bayesrec.diagnostics import (convergence_summary, frobenius_norms, plot_norm_traces,
                                  plot_rmse_trace, rmse_trace)

display(plot_norm_traces(frobenius_norms(fits["nuts"])))
display(plot_rmse_trace(rmse_trace(fits["nuts"], train, test)))
print(convergence_summary(fits["nuts"], pairs=test))'''),
        md("## ADVI's loss"),
        code('''\
from bayesrec.diagnostics import plot_advi_loss

display(plot_advi_loss(fits["advi"]["advi"].to_dataset()))'''),
        md("## The summary comparison"),
        code('''\
fig, ax = plt.subplots(figsize=(7, 4))
order = table.sort_values("rmse").index
ax.barh(order, table.loc[order, "rmse"])
ax.set(xlabel="test RMSE", xlim=(0.85, min(1.2, table["rmse"].max() * 1.02)))
ax.invert_yaxis()
for y, v in enumerate(table.loc[order, "rmse"]):
    ax.text(v, y, f" {v:.3f}", va="center")'''),
        md("## Versions"),
        code(VERSIONS),
    ]


NOTEBOOKS = {"01_quick_start.ipynb": quick_start, "02_pmf.ipynb": pmf_notebook,
             "03_bpmf.ipynb": bpmf_notebook,
             "04_mmsbm.ipynb": mmsbm_notebook,
             "06_model_comparison.ipynb": comparison_notebook}


def write(name: str) -> Path:
    nb = new_notebook(cells=NOTEBOOKS[name]())
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    path = HERE / name
    nbformat.write(nb, path)
    return path


def execute(path: Path, timeout: int = 3600) -> None:
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(HERE)}}).execute()
    nbformat.write(nb, path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--execute", action="store_true")
    parser.add_argument("names", nargs="*", default=list(NOTEBOOKS))
    args = parser.parse_args(argv)
    for name in args.names:
        path = write(name)
        if args.execute:
            execute(path)
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
