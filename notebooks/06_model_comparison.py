# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 6. Model comparison across the zoo
#
# Every registered model on the same split, through the same interface (`make_recommender(name, method, options=...).fit(train).predict_ratings(test)`): point metrics of the posterior-mean prediction (RMSE, MAE, exact-rating accuracy), ranking metrics of the test items per user (precision, recall and nDCG at 10, items rated 4 or more count as relevant), and the coverage of the 90 % predictive intervals, which says whether the uncertainty is honest.

# %%
import os

import matplotlib.pyplot as plt

from bayesrec.provenance import watermark

# Fast mode (CI): a small dataset and short fits.  Unset BAYESREC_FAST for the full run.
FAST = os.environ.get("BAYESREC_FAST", "0") == "1"
print("fast mode" if FAST else "full mode")
print(watermark("matplotlib"))  # when, on which commit, with what, on which machine

# %%
# MovieLens 100K fold u1 from the data home ($BAYESREC_DATA, else the user cache folder):
# without it the loader says where it looked, and the notebook stops. Fast mode (CI) uses a
# small simulated data set instead, and its name says so.
from bayesrec.evaluation import example_split

split = example_split(FAST)
train, test = split.train, split.test
print(split.name)
print(split.report())

# %%
import time

import pandas as pd

from bayesrec.metrics import ranking_scores, score
from bayesrec.recommenders import make_recommender

# (model, method, model options): the registry's defaults, PMF's MAP with the
# `point_estimate` preset, and MPMA by its staged fit (its joint MAP collapses: notebook 5)
ROWS = [("uniform", None, {}), ("global_mean", None, {}), ("mean_of_means", None, {}),
        ("biases", None, {}), ("pmf", "map", {"preset": "point_estimate"}),
        ("bpmf", "gibbs", {}), ("mmsbm", "map", {}), ("mpma", "staged", {})]
results, predictions = {}, {}
for name, method, options in ROWS:
    start = time.perf_counter()
    if not FAST and name in ("pmf", "bpmf", "mpma"):
        options = {"n_factors": 10, **options}
    rec = make_recommender(name, method, fast=FAST, options=options, random_seed=0).fit(train)
    pred = rec.predict_ratings(test)
    seconds = time.perf_counter() - start
    label = f"{name} ({method or 'fit'})"
    predictions[label] = pred
    results[label] = {**score(pred, test), **ranking_scores(pred, test), "seconds": seconds}
table = pd.DataFrame(results).T
table[["rmse", "mae", "accuracy", "lpd", "coverage_90", "precision_at_10", "ndcg_at_10",
       "seconds"]].round(4)

# %%
fig, ax = plt.subplots(1, 2, figsize=(12, 4))
order = table.sort_values("rmse").index
ax[0].barh(order, table.loc[order, "rmse"], color="C0")
ax[0].set(xlabel="test RMSE (lower is better)", xlim=(0.85, table["rmse"].max() * 1.02))
ax[0].invert_yaxis()
ax[1].barh(order, table.loc[order, "coverage_90"], color="C2")
ax[1].axvline(0.9, color="k", ls="--", lw=1)
ax[1].set(xlabel="coverage of the 90 % predictive interval (0.90 is honest)", xlim=(0.6, 1.0))
ax[1].invert_yaxis()
fig.tight_layout()

# %% [markdown]
# Reading the table. The lines below are computed from it: which model is best on each score, whether every Bayesian model beats the bias baseline, and which 90 % intervals are honest. Point estimates (MAP, EM, the staged fit) plug in one point and ignore parameter uncertainty, so their intervals tend to be too narrow; MMSBM's are discrete (five levels) and over-cover. These are held-out scores of point predictions; the next section compares the sampled fits by their whole predictive distribution (PSIS-LOO).

# %%
bayesian = [k for k in table.index if k.split()[0] in ("pmf", "bpmf", "mmsbm", "mpma")]
for column, best in (("rmse", "min"), ("mae", "min"), ("accuracy", "max"), ("lpd", "max")):
    winner = getattr(table[column].astype(float), f"idx{best}")()
    print(f"best {column}: {winner} ({table.loc[winner, column]:.4f})")
beat = [k for k in bayesian if table.loc[k, "rmse"] < table.loc["biases (fit)", "rmse"]]
print(f"beat the biases baseline on RMSE: {beat} of {bayesian}")
honest = table["coverage_90"].astype(float).between(0.88, 0.92)
print("90 % intervals within 0.88-0.92:", list(table.index[honest]),
      "| too narrow (< 0.88):", list(table.index[table["coverage_90"] < 0.88]),
      "| too wide (> 0.92):", list(table.index[table["coverage_90"] > 0.92]))

# %% [markdown]
# ## Predictive comparison (PSIS-LOO)
#
# PMF and BPMF sampled by Gibbs on the same training ratings, compared by the expected log predictive density (elpd) estimated by Pareto-smoothed importance sampling leave-one-out cross-validation (`bayesrec.diagnostics.compare_fits`, which computes each fit's pointwise log-likelihood with PyMC and calls `arviz.loo` and `arviz.compare`).

# %%
import arviz as az

from bayesrec.diagnostics import compare_fits
from bayesrec.inference import fit
from bayesrec.models import build_model, get_spec

sampled = {}
for name in ("pmf", "bpmf"):
    # fast mode: the registry's fast settings, as above
    spec = get_spec(name)
    options = dict(spec.fast.options) if FAST else {"n_factors": 10}
    fit_options = dict(spec.fast.fit.get("gibbs", {})) if FAST else {}
    sampled[f"{name} (gibbs)"] = fit(build_model(name, train, **options), "gibbs",
                                     random_seed=0, **fit_options)
# at most 400 draws per fit: the pointwise log-likelihood is draws x training ratings
loo_table = compare_fits(sampled, ic="loo", max_draws=400)
loo_table[["elpd", "se", "p", "elpd_diff", "dse", "weight", "n_high_k", "max_k"]].round(2)

# %%
pc = az.plot_compare(loo_table)  # elpd difference from the best fit, with its standard error

# %% [markdown]
# How to read it: `elpd` (in nats, higher is better) estimates the log predictive density of a new rating of each training pair given all the other ratings, summed over the training ratings; PSIS-LOO gets it from the posterior draws by reweighting them, without refitting. `elpd_diff` is the difference from the best fit and `dse` its standard error: a difference of several `dse` is a clear preference, and `weight` is the stacking weight of each fit. `p` is the effective number of parameters. `n_high_k` counts the ratings whose Pareto shape k exceeds 0.7: for them the reweighting is unreliable. A factor model has a few parameters per user and per item, so ratings of users or items with few ratings are influential and some high k are expected; when there are many, the elpd is optimistic and held-out ratings (the table above) or K-fold cross-validation are the reliable check.
#
# Why only these two: LOO and WAIC average the likelihood over posterior draws. MAP fits (PMF MAP), EM fits (MMSBM MAP) and staged fits (MPMA staged) are one point, with no posterior to reweight, so `compare_fits` refuses them; they are compared on held-out ratings above. MMSBM's likelihood is also a probability of each rating level, not a density of the rating, so its elpd would not be on the same scale as PMF's or BPMF's even if it were sampled. ADVI fits are accepted with a warning: their draws come from the approximation, so the estimate is only approximately the posterior's. WAIC (`ic="waic"`) is available too, but PSIS-LOO is preferred: it is at least as accurate and has the k diagnostic.
