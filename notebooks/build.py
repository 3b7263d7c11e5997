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
           "These are held-out scores of point predictions. The next section compares the "
           "sampled fits by their whole predictive distribution (PSIS-LOO)."),
        md("## Predictive comparison (PSIS-LOO)\n\n"
           "PMF and BPMF sampled by Gibbs on the same training ratings, compared by the "
           "expected log predictive density (elpd) estimated by Pareto-smoothed importance "
           "sampling leave-one-out cross-validation (`bayesrec.diagnostics.compare_fits`, "
           "which computes each fit's pointwise log-likelihood with PyMC and calls "
           "`arviz.loo` and `arviz.compare`)."),
        code('''\
import arviz as az
from bayesrec.diagnostics import compare_fits
from bayesrec.inference import fit
from bayesrec.models import build_model, get_spec

sampled = {}
for name in ("pmf", "bpmf"):
    # the registry's settings for Gibbs (fast mode: its fast settings, as above)
    _, options, fit_options = get_spec(name).resolve(
        "gibbs", options=None if FAST else {"n_factors": 10}, fast=FAST)
    sampled[f"{name} (gibbs)"] = fit(build_model(name, train, **options), "gibbs",
                                     random_seed=0, **fit_options)
# at most 400 draws per fit: the pointwise log-likelihood is draws x training ratings
loo_table = compare_fits(sampled, ic="loo", max_draws=400)
loo_table[["elpd", "se", "p", "elpd_diff", "dse", "weight", "n_high_k", "max_k"]].round(2)'''),
        code('''\
pc = az.plot_compare(loo_table)  # elpd difference from the best fit, with its standard error'''),
        md("How to read it: `elpd` (in nats, higher is better) estimates the log predictive "
           "density of a new rating of each training pair given all the other ratings, "
           "summed over the training ratings; PSIS-LOO gets it from the posterior draws by "
           "reweighting them, without refitting. `elpd_diff` is the difference from the best "
           "fit and `dse` its standard error: a difference of several `dse` is a clear "
           "preference, and `weight` is the stacking weight of each fit. `p` is the effective "
           "number of parameters. `n_high_k` counts the ratings whose Pareto shape "
           "k exceeds 0.7: for them the reweighting is unreliable. A factor model has a few "
           "parameters per user and per item, so ratings of users or items with few ratings "
           "are influential and some high k are expected; when there are many, the elpd is "
           "optimistic and held-out ratings (the table above) or K-fold cross-validation are "
           "the reliable check.\n\n"
           "Why only these two: LOO and WAIC average the likelihood over posterior draws. "
           "MAP fits (PMF MAP) and EM fits (MMSBM MAP, MPMA MAP) are one point, with no "
           "posterior to reweight, so `compare_fits` refuses them; they are compared on "
           "held-out ratings above. MMSBM's likelihood is also a probability of each rating "
           "level, not a density of the rating, so its elpd would not be on the same scale as "
           "PMF's or BPMF's even if it were sampled. ADVI fits are accepted with a warning: "
           "their draws come from the approximation, so the estimate is only approximately "
           "the posterior's. WAIC (`ic=\"waic\"`) is available too, but PSIS-LOO is "
           "preferred: it is at least as accurate and has the k diagnostic."),
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


def mpma_notebook() -> list:
    md, code = new_markdown_cell, new_code_cell
    return [
        md("# 5. MPMA: component weights and responsibilities; where local models help\n\n"
           "Mixture probabilistic matrix approximation (Chen, Li, Lv, Yan, Shang & Chu, "
           "IJCAI 2016) mixes a global low-rank model with two local ones, each learned "
           "within a cluster of similar users or of similar items:\n\n"
           "$$r_{ui} \\sim \\sum_{k \\in \\{g, u, i\\}} \\pi_k\\, "
           "\\mathcal N\\big(b_{ui} + f^{(k)}_{ui},\\ \\sigma_k^2\\big), \\qquad "
           "b_{ui} = m + b_u + c_i$$\n\n"
           "$$f^{(g)}_{ui} = U_u^\\top V_i \\ \\text{(global)}, \\qquad "
           "f^{(u)}_{ui} = P_u^\\top Q_{c(u), i} \\ \\text{(user-local)}, \\qquad "
           "f^{(i)}_{ui} = S_{d(i), u}^\\top T_i \\ \\text{(item-local)}$$\n\n"
           "where $c(u)$ is the cluster of user $u$ and $d(i)$ that of item $i$. The "
           "user-local component has its own user factors $P_u$ and, per user cluster, its "
           "own item factors $Q_{c,i}$ shared by the users of that cluster; the item-local "
           "component mirrors it. Priors: $\\pi \\sim \\text{Dirichlet}(\\mathbf 1)$, "
           "$\\sigma_k \\sim \\text{InvGamma}(2, \\beta)$, Gaussian factors and biases.\n\n"
           "**The indicator is marginalised.** Each rating has a latent component "
           "$z_{ui}$ with $P(z_{ui} = k) = \\pi_k$; summing it out gives the mixture "
           "density above, which is smooth in every parameter, so MAP, ADVI and NUTS all "
           "apply. For a *rated* pair the posterior of $z_{ui}$ is the responsibility "
           "$\\gamma_k \\propto \\pi_k\\, \\mathcal N(r_{ui} \\mid b_{ui} + f^{(k)}_{ui}, "
           "\\sigma_k^2)$ (`bayesrec.models.mpma_tools.responsibilities`); for an unrated "
           "pair it is just $\\pi$, and the expected rating is "
           "$b_{ui} + \\sum_k \\pi_k f^{(k)}_{ui}$.\n\n"
           "**Clusters** (`mpma_clusters`, used when the caller gives none): a biased matrix "
           "factorisation of the training ratings by alternating least squares (a PMF MAP "
           "estimate), each user's and each item's factor vector scaled to unit length "
           "(the kind of taste, not how strongly it shows), then k-means (k-means++ start, "
           "seeded) on the users and, separately, on the items; labels are numbered by "
           "decreasing cluster size. The derived clusters are recorded in the fit's config.\n\n"
           "**Where bayesrec deviates from the paper.** The paper learns the global factors "
           "on all ratings and the local ones on the clusters' sub-matrices by SGD, and the "
           "weights and variances by EM; bayesrec writes the same three-component mixture as "
           "one Bayesian model and fits everything jointly. It adds the shared biases "
           "$m + b_u + c_i$, Dirichlet and inverse-gamma priors on the weights and noise "
           "scales, and its own clustering procedure (the paper does not fix one). "
           "`local_prior=\"offset\"` (not used here) is an optional further deviation: local "
           "factors as offsets from the global ones."),
        code(SETUP_INLINE),
        md("## Simulation check: are the weights and noise scales recovered?\n\n"
           "Ratings drawn from the model's own generative process (`simulate_mpma`) with "
           "known weights, noise scales and clusters. The model is given the true clusters "
           "and priors at the simulation's factor and bias scales, so any miss is the "
           "fit's, not a mismatch of the model. MAP (one L-BFGS run from a prior draw) and "
           "ADVI (in full mode from three seeds, to see whether the answer depends on the "
           "start)."),
        code('''\
import time
import pandas as pd
from bayesrec.inference import fit, predict
from bayesrec.models import build_model, get_spec
from bayesrec.models.mpma_tools import COMPONENTS, responsibilities, simulate_mpma

TRUE_WEIGHTS, TRUE_SIGMAS, FACTOR_SD, BIAS_SD = (0.5, 0.3, 0.2), (0.3, 0.5, 0.7), 0.8, 0.3
size = (dict(n_users=50, n_items=40, n_ratings=1200) if FAST
        else dict(n_users=150, n_items=120, n_ratings=14400))
sim, truth = simulate_mpma(**size, n_factors=2, n_user_clusters=2, n_item_clusters=2,
                           weights=TRUE_WEIGHTS, sigmas=TRUE_SIGMAS, factor_sd=FACTOR_SD,
                           bias_sd=BIAS_SD, seed=0)
print(sim)
sim_model = build_model(
    "mpma", sim, n_factors=2, n_user_clusters=2, n_item_clusters=2,
    user_clusters=truth["user_clusters"], item_clusters=truth["item_clusters"],
    priors={"user_factor_sd": FACTOR_SD, "item_factor_sd": FACTOR_SD,
            "local_factor_sd": FACTOR_SD, "bias_sd": BIAS_SD})
sim_runs = {"MAP": ("map", 0, dict(maxiter=200) if FAST else {})}
for seed in (0,) if FAST else (0, 1, 2):
    sim_runs[f"ADVI seed {seed}"] = ("advi", seed, dict(n=1000, draws=100) if FAST else {})
sim_fits = {}
for label, (method, seed, options) in sim_runs.items():
    start = time.perf_counter()
    sim_fits[label] = fit(sim_model, method, random_seed=seed, **options)
    print(f"{label}: {time.perf_counter() - start:.0f} s")'''),
        code('''\
def weights_and_sigmas(f):
    """Posterior means of the weights and noise sds (MAP: the point), one row per component."""
    post = f["posterior"].to_dataset()
    return pd.DataFrame({"weight": post["weights"].mean(("chain", "draw")).values,
                         "sigma": post["sigma"].mean(("chain", "draw")).values},
                        index=list(post["component"].values))

drawn = np.bincount(truth["component"], minlength=3) / len(truth["component"])
recovery = {"truth": pd.DataFrame({"weight": TRUE_WEIGHTS, "drawn share": drawn,
                                   "sigma": TRUE_SIGMAS}, index=list(COMPONENTS))}
recovery.update({label: weights_and_sigmas(f) for label, f in sim_fits.items()})
pd.concat(recovery, axis=1).round(3)'''),
        md("Weights and noise scales are numbers *per component*, so they are only "
           "comparable with the truth if each fitted component plays the role of the "
           "process with the same name. The responsibilities of the training ratings say "
           "which component explains each rating; since the simulation knows which "
           "process generated it, the table below is the share of each true process's "
           "ratings (rows) whose most responsible component is each fitted one (columns). "
           "A diagonal near 1 means the roles are kept."),
        code('''\
confusion = {}
for label, f in sim_fits.items():
    sim_resp = responsibilities(f, model=sim_model, max_draws=100)
    assigned = np.asarray(sim_resp["component"].values)[sim_resp.values.argmax(axis=1)]
    true = np.asarray(COMPONENTS)[truth["component"]]
    confusion[label] = pd.crosstab(pd.Series(true, name="true process"),
                                   pd.Series(assigned, name="fitted component"),
                                   normalize="index").reindex(index=list(COMPONENTS),
                                                              columns=list(COMPONENTS),
                                                              fill_value=0.0)
    kept = float(np.mean(assigned == true))
    smallest = recovery[label]["sigma"].min()
    print(f"{label}: {kept:.1%} of the ratings assigned to their own process; smallest "
          f"fitted sigma {smallest:.3f} (smallest true sigma {min(TRUE_SIGMAS)})")
pd.concat(confusion, names=["fit"]).round(2)'''),
        md("How to read this. Two failure modes of a Gaussian mixture show up here "
           "when they happen:\n\n"
           "* **A noise scale near zero (MAP).** A component with enough free factors can "
           "fit a subset of ratings exactly; its $\\sigma_k \\to 0$ then makes the "
           "likelihood unbounded. The inverse-gamma prior bounds the spike, but with many "
           "ratings the likelihood gain can still outweigh it, and the point estimate is "
           "then a degenerate mode, not an estimate of the noise. Averaging over the "
           "posterior (ADVI, NUTS) is much less prone to it: a spike has little "
           "posterior mass.\n"
           "* **Components exchanging roles.** A global low-rank matrix is a special case "
           "of both local components (equal factors in every cluster), so only the *local* "
           "structure tells the components apart. If, from its start, a local component "
           "captures the dominant global process first, the global component is left with "
           "what nothing else explains, and the weights and noise scales come out under "
           "the wrong names. Different seeds can end in different such optima: compare "
           "the ADVI rows and the confusion tables.\n\n"
           "Where the diagonal is near 1 and no sigma collapses, the table above is a "
           "recovery check of the weights and noise scales; where it is not, the printed "
           "lines say which of the two happened."),
        md("## MovieLens: PMF MAP against MPMA MAP\n\n"
           "Both with the registry's MAP settings (`get_spec(name).resolve`: the stronger "
           "factor shrinkage, `factor_scale=2/3`, that a point estimate needs), 10 factors "
           "in full mode, the registry's fast settings in fast mode. MPMA's clusters are "
           "derived from the training ratings."),
        code(DATA),
        code('''\
from bayesrec.metrics import score

OPTIONS = None if FAST else {"n_factors": 10}
models, fits, seconds = {}, {}, {}
for name in ("pmf", "mpma"):
    method, options, fit_options = get_spec(name).resolve("map", options=OPTIONS, fast=FAST)
    print(f"{name}: {options} {fit_options}")
    models[name] = build_model(name, train, **options)
    start = time.perf_counter()
    fits[f"{name} MAP"] = fit(models[name], method, random_seed=0, **fit_options)
    seconds[f"{name} MAP"] = time.perf_counter() - start
preds = {label: predict(f, pairs=test, random_seed=0) for label, f in fits.items()}

def score_table(preds, seconds):
    table = pd.DataFrame({k: score(v, test) for k, v in preds.items()}).T
    table = table[["rmse", "mae", "coverage_90"]]
    table["fit s"] = pd.Series(seconds)
    return table

score_table(preds, seconds).round(4)'''),
        md("### The fitted mixture\n\n"
           "The weights and noise scales of the MAP fit (PMF's single noise scale for "
           "reference), and the clusters the local components work in: their sizes and "
           "how many training ratings fall in each."),
        code('''\
mpma_map = fits["mpma MAP"]
mixture = weights_and_sigmas(mpma_map)
mixture.loc["PMF (one component)"] = [1.0, fits["pmf MAP"]["posterior"]["sigma"].values.item()]
print(mixture.round(4))

user_cluster = fits["mpma MAP"]["constant_data"]["user_cluster_idx"].values
item_cluster = fits["mpma MAP"]["constant_data"]["item_cluster_idx"].values
clusters = pd.concat({
    "user clusters": pd.DataFrame({"members": np.bincount(user_cluster),
                                   "training ratings": np.bincount(user_cluster[train.user])}),
    "item clusters": pd.DataFrame({"members": np.bincount(item_cluster),
                                   "training ratings": np.bincount(item_cluster[train.item])}),
}, names=["", "cluster"])
clusters'''),
        md("## Responsibilities of the held-out ratings\n\n"
           "For each test rating, the posterior probability that each component generated "
           "it. This uses the held-out rating itself, so it is a diagnostic of which "
           "component explains the rating, not a prediction."),
        code('''\
resp = responsibilities(mpma_map, test, model=models["mpma"])
fig, axes = plt.subplots(1, resp.sizes["component"], figsize=(12, 3.2), sharey=True)
for ax, name in zip(axes, resp["component"].values):
    values = resp.sel(component=name).values
    ax.hist(values, bins=np.linspace(0, 1, 26), color="C0")
    ax.set(title=f"{name} (mean {values.mean():.3f}, weight {mixture.loc[name, 'weight']:.3f})",
           xlabel="responsibility", yscale="log")
axes[0].set_ylabel("test ratings")
fig.tight_layout()
resp.to_pandas().describe().round(3)'''),
        md("## Where do the local models help?\n\n"
           "Per user cluster, per item cluster and per bin of the user's number of "
           "training ratings (five bins with about equal numbers of test ratings): the "
           "test RMSE of MPMA MAP minus that of PMF MAP (below zero: MPMA is better "
           "there), beside the mean responsibility of the two local components on those "
           "test ratings. Both models predict the same test ratings, so the comparison is "
           "paired: `mse diff` is the mean difference of their squared errors and the "
           "error bars are 2 standard errors of the RMSE difference derived from it."),
        code('''\
activity = np.bincount(train.user, minlength=train.n_users)[test.user]
activity_bins = pd.qcut(activity, 5, duplicates="drop").rename_categories(
    lambda iv: f"{int(np.floor(iv.left)) + 1}-{int(iv.right)}")
GROUPINGS = {"user cluster": user_cluster[test.user], "item cluster": item_cluster[test.item],
             "user's training ratings": activity_bins}


def where_it_helps(method, resp):
    """Per group of test ratings: RMSE of PMF and MPMA fitted by ``method``, and the
    mean responsibility of the local components."""
    local = resp.sel(component=[c for c in resp["component"].values if c != "global"])
    pairs = pd.DataFrame({**GROUPINGS,
                          "se pmf": (preds[f"pmf {method}"]["mean"].values - test.rating) ** 2,
                          "se mpma": (preds[f"mpma {method}"]["mean"].values - test.rating) ** 2,
                          "local": local.sum("component").values})
    pairs["se diff"] = pairs["se mpma"] - pairs["se pmf"]
    out = {}
    for by in GROUPINGS:
        g = pairs.groupby(by, observed=True)
        t = pd.DataFrame({"test ratings": g.size(), "rmse pmf": np.sqrt(g["se pmf"].mean()),
                          "rmse mpma": np.sqrt(g["se mpma"].mean()),
                          "local responsibility": g["local"].mean(),
                          # paired difference of squared errors (MPMA - PMF), its standard error
                          "mse diff": g["se diff"].mean(),
                          "mse diff se": g["se diff"].std() / np.sqrt(g.size())})
        out[by] = t.assign(**{"mpma - pmf": t["rmse mpma"] - t["rmse pmf"]})
    return out


def plot_where(groups, method):
    fig, axes = plt.subplots(1, len(groups), figsize=(14, 3.8))
    for ax, (by, table) in zip(axes, groups.items()):
        x = np.arange(len(table))
        # 2 standard errors of the RMSE difference (from the paired MSE difference's)
        yerr = 2 * table["mse diff se"] / (table["rmse pmf"] + table["rmse mpma"])
        ax.bar(x, table["mpma - pmf"], yerr=yerr, capsize=3,
               color=np.where(table["mpma - pmf"] < 0, "C2", "C3"))
        ax.axhline(0, color="k", lw=0.8)
        ax.set(xticks=x, xlabel=by, ylabel="RMSE of MPMA minus PMF (2 se)")
        ax.set_xticklabels([str(v) for v in table.index], rotation=30, ha="right")
        twin = ax.twinx()
        twin.plot(x, table["local responsibility"], "ko-", ms=4)
        twin.set(ylim=(0, 1.05), ylabel="mean local responsibility")
    fig.suptitle(f"{method}: bars, MPMA minus PMF test RMSE (green: MPMA better); "
                 "line, responsibility of the local components")
    fig.tight_layout()
    return fig


groups = {"MAP": where_it_helps("MAP", resp)}
pd.concat(groups["MAP"], names=["grouping", "group"]).round(4)'''),
        code("fig = plot_where(groups[\"MAP\"], \"MAP\")"),
        md("## Posterior version: ADVI\n\n"
           "MPMA and PMF by mean-field ADVI, started from a prior draw, with the package's "
           "default stopping (the learning rate decays on plateaus of the loss and the fit "
           "stops after the last decay), the same number of factors as above, and the "
           "registry's settings otherwise (no extra shrinkage: posterior averaging "
           "regularises). Then the weights' posterior mean and 90 % interval (mean-field "
           "ADVI tends to understate posterior spread), the loss history, and the test "
           "scores of all four fits."),
        code('''\
for name in ("pmf", "mpma"):
    method, options, fit_options = get_spec(name).resolve("advi", options=OPTIONS, fast=FAST)
    print(f"{name}: {options} {fit_options}")
    label = f"{name} ADVI"
    start = time.perf_counter()
    models[label] = build_model(name, train, **options)
    fits[label] = fit(models[label], method, random_seed=0, **fit_options)
    seconds[label] = time.perf_counter() - start
    preds[label] = predict(fits[label], pairs=test, random_seed=0)
    advi = fits[label]["advi"].attrs
    print(f"  {seconds[label]:.0f} s, {advi['n_iterations']} iterations, stopped: {advi['stop_reason']}")
score_table(preds, seconds).round(4)'''),
        code('''\
from IPython.display import display
from bayesrec.diagnostics import plot_advi_loss

weights = fits["mpma ADVI"]["posterior"]["weights"]
draws = weights.stack(sample=("chain", "draw"))
posterior_weights = pd.DataFrame({
    "mean": draws.mean("sample").values,
    "5 %": draws.quantile(0.05, "sample").values,
    "95 %": draws.quantile(0.95, "sample").values,
    "MAP": mixture.loc[list(weights["component"].values), "weight"].values,
}, index=list(weights["component"].values))
display(posterior_weights.round(4))
display(plot_advi_loss(fits["mpma ADVI"]["advi"].to_dataset()))'''),
        md("The responsibilities of the test ratings under the ADVI fit (averaged over its "
           "draws), and the same per-group comparison against PMF by ADVI."),
        code('''\
resp_advi = responsibilities(fits["mpma ADVI"], test, model=models["mpma ADVI"])
print(resp_advi.to_pandas().describe().round(3))
groups["ADVI"] = where_it_helps("ADVI", resp_advi)
fig = plot_where(groups["ADVI"], "ADVI")
pd.concat(groups["ADVI"], names=["grouping", "group"]).round(4)'''),
        md("## Reading the results\n\n"
           "The numbers below come from this run."),
        code('''\
table = score_table(preds, seconds)
fitted = {"MAP": (mixture["weight"].drop("PMF (one component)"), resp),
          "ADVI": (posterior_weights["mean"], resp_advi)}
for method, (w, r) in fitted.items():
    diff = table.loc[f"mpma {method}", "rmse"] - table.loc[f"pmf {method}", "rmse"]
    d = (preds[f"mpma {method}"]["mean"].values - test.rating) ** 2 - (
        preds[f"pmf {method}"]["mean"].values - test.rating) ** 2
    top = pd.Series(r["component"].values[r.values.argmax(1)]).value_counts(normalize=True)
    lines = [f"{method}: test RMSE of MPMA minus PMF {diff:+.4f} (paired MSE difference "
             f"{d.mean():+.4f} +- {d.std() / np.sqrt(len(d)):.4f} standard error)",
             "  weights: " + ", ".join(f"{k} {v:.3f}" for k, v in w.items())
             + f"; effective number of components 1 / sum(w^2) = {1 / np.sum(w.values ** 2):.2f}",
             "  most responsible component of the test ratings: "
             + ", ".join(f"{k} {v:.1%}" for k, v in top.items()),
             "  mean |responsibility - weight| over test ratings and components: "
             f"{np.abs(r.sel(component=list(w.index)).values - w.values).mean():.3f}"]
    print("\\n".join(lines))
    for by, t in groups[method].items():
        better = [str(g) for g in t.index[t["mse diff"] < -2 * t["mse diff se"]]]
        worse = [str(g) for g in t.index[t["mse diff"] > 2 * t["mse diff se"]]]
        print(f"  by {by} ({len(t)} groups): MPMA better by more than 2 standard errors "
              f"in {better or 'none'}, worse in {worse or 'none'}")'''),
        md("How to read them. MPMA can only beat PMF where a local component adds "
           "something: a user cluster whose taste for some items departs from the global "
           "low-rank structure, or an item cluster that users judge differently. The lines "
           "above say which of these outcomes this run gave.\n\n"
           "* **The local components take little weight.** The fit found no rating "
           "pattern that a local component explains better than the global one; MPMA then "
           "predicts like PMF with extra parameters, and its test error is PMF's or a "
           "little worse, because the local factors it still carries add variance.\n"
           "* **The mixture collapses onto one local component** (an effective number of "
           "components near 1, not on `global`). A local component contains the global "
           "one as a special case (equal factors in every cluster) and has more factors "
           "per user or item, so it fits the training ratings at least as well; a point "
           "estimate is then free to drop the other components, and MPMA reduces to a "
           "per-cluster factor model whose extra factors are each estimated from fewer "
           "ratings. That usually overfits (a higher test RMSE than PMF); the per-group "
           "tables show in which groups. It says nothing about whether a genuine mixture "
           "would help, only that the point estimate does not find one.\n"
           "* **Near-equal weights and responsibilities equal to the weights** (a mean "
           "|responsibility - weight| near 0 with an effective number of components near "
           "3). The components make nearly the same prediction for every rating, for "
           "example because their factors have shrunk towards zero or the fit stopped "
           "before they separated, so the data cannot tell them apart and the weights "
           "stay near their prior. That is not evidence for a mixture either; the ADVI "
           "loss plot shows whether the fit stopped on a real plateau.\n"
           "* **Real mixing with a lower RMSE.** Responsibilities that vary between ratings, "
           "and groups with a negative difference and a high local responsibility: there "
           "the local models help.\n\n"
           "Weights and responsibilities are per component, and the components can "
           "exchange roles (see the simulation), so they are evidence about structure only "
           "together with the test scores. A MAP point estimate of a mixture is fragile "
           "(spikes, a collapsing weight); ADVI averages over an approximate posterior, "
           "and test RMSE, MAE and coverage compare the fits regardless of labels."),
        md("## Versions"),
        code(VERSIONS),
    ]


NOTEBOOKS = {"01_quick_start.ipynb": quick_start, "02_pmf.ipynb": pmf_notebook,
             "03_bpmf.ipynb": bpmf_notebook,
             "04_mmsbm.ipynb": mmsbm_notebook,
             "05_mpma.ipynb": mpma_notebook,
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
