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
# # 7. Ratings as ordered categories
#
# A star rating is one of five ordered categories, not a Gaussian measurement. The ordered-probit likelihood (`likelihood="ordered_probit"` for `pmf` and `bpmf`) says so: a latent rating `eta + noise` (standard normal noise; `eta` the biases plus the factor product) falls between two learned cutpoints, and the rating is the level between them. Its prediction is a probability for each level, like MMSBM's; Gaussian models get level probabilities too, as the predictive mass of each level's interval. This notebook shows the learned cutpoints and their uncertainty, one user's predicted level probabilities, whether every model's level probabilities mean what they say (a reliability diagram), and the log predictive density (LPD) of each model on MovieLens u1.

# %%
# %matplotlib inline
import os

import matplotlib.pyplot as plt
import numpy as np

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

# %% [markdown]
# ## BPMF with the ordered probit, by block Gibbs
#
# The Gibbs sampler augments each rating with its latent value (a truncated normal between the rating's two cutpoints), so that the factors, biases and hyperparameters keep their exact Gaussian conditionals; the cutpoints move by a Metropolis step with the latent ratings integrated out.

# %%
import time

from bayesrec.inference import fit, predict
from bayesrec.models import build_model

K = 3 if FAST else 10
sweeps = dict(draws=100, tune=50) if FAST else {}
start = time.perf_counter()
probit = fit(build_model("bpmf", train, n_factors=K, likelihood="ordered_probit"), "gibbs",
             random_seed=0, **sweeps)
print(f"fitted in {time.perf_counter() - start:.0f} s")

# %% [markdown]
# ## The cutpoints and their uncertainty
#
# The cutpoint `"3|4"` is where the latent rating passes from 3 to 4 stars. What the ratings pin down is their spacing, and where each rating's latent value falls relative to them. Their common location is only weakly identified in BPMF: the model has no free offset, but BPMF learns the means of the user and item factors, and the product of those means acts as a global level of the latent rating; a shift of all cutpoints is matched by a shift of that level. Below, the summary of the cutpoints themselves and of their spacing (each cutpoint minus their mean): read the R-hat of each.

# %%
import arviz as az

cuts = probit["posterior"]["cutpoints"]
spacing = (cuts - cuts.mean("cutpoint")).rename("cutpoint_spacing")
print(az.summary(cuts.to_dataset(), ci_prob=0.9))
print(az.summary(spacing.to_dataset(), ci_prob=0.9))
draws = cuts.stack(sample=("chain", "draw"))
fig, ax = plt.subplots(figsize=(8, 2.6))
for label in draws["cutpoint"].values:
    ax.hist(draws.sel(cutpoint=label).values, bins=40, alpha=0.7, label=label)
ax.set(xlabel="cutpoint on the latent-rating scale", ylabel="posterior draws (both chains)",
       title="cutpoints of the ordered probit (BPMF, Gibbs)")
ax.legend(title="levels", fontsize="small")
fig.tight_layout()

# %%
from bayesrec.diagnostics import convergence_summary

r_hat = {"cutpoints": float(az.rhat(cuts.to_dataset())["cutpoints"].max()),
         "spacing": float(az.rhat(spacing.to_dataset())["cutpoint_spacing"].max())}
print(f"largest R-hat: cutpoints {r_hat['cutpoints']:.3f}, their spacing {r_hat['spacing']:.3f}")
print(convergence_summary(probit, pairs=test))

# %% [markdown]
# When the cutpoints' R-hat is high but their spacing's and the predictions' are near 1, the chains agree on everything the ratings determine and differ only along the direction the data leave loose (the cutpoints' common location against the factor means' global level): the predictions and their level probabilities can be used. Where the spacing or the predictions are flagged too, draw more.

# %% [markdown]
# ## One user's predicted level probabilities
#
# For each of a user's held-out films, the probability of every rating level (posterior mean over the draws), with the rating the user actually gave marked.

# %%
pred = predict(probit, pairs=test, random_seed=0)
users = np.asarray(test.user_ids)
user = users[np.argmax([np.sum(users == u) for u in users])]  # the user with most test ratings
mine = np.flatnonzero(users == user)[:8]
prob = pred["prob"].isel(pair=mine)
levels = prob["rating_level"].values
fig, axes = plt.subplots(1, len(mine), figsize=(2 * len(mine), 2.6), sharey=True)
for ax, j in zip(axes, range(len(mine)), strict=True):
    truth = float(test.rating[mine[j]])
    ax.bar(levels, prob.isel(pair=j).values,
           color=["C3" if level == truth else "C0" for level in levels])
    ax.set(title=f"item {test.item_ids[mine[j]]}", xticks=levels)
axes[0].set_ylabel("probability")
fig.suptitle(f"user {user}: predicted level probabilities (red: the rating given)")
fig.tight_layout()

# %% [markdown]
# ## Do the level probabilities mean what they say?
#
# Every model's prediction carries level probabilities: the ordered probit's and MMSBM's are their own; a Gaussian model's are the predictive mass of each level's interval (between the midpoints of adjacent levels, the ends taking the tails). A reliability diagram groups all (test rating, level) pairs by the probability the model gave that level and plots how often the level was the rating: calibrated probabilities lie on the diagonal. ECE (expected calibration error) is the count-weighted mean distance from it. Each model is fitted with its registry defaults, through `make_recommender`, as `bayesrec evaluate` does.

# %%
import pandas as pd

from bayesrec.diagnostics import level_reliability, plot_level_reliability
from bayesrec.metrics import score
from bayesrec.recommenders import make_recommender

# (label, model, method, model options): registry defaults, 10 factors in the full run
ROWS = [("uniform", "uniform", None, {}), ("biases", "biases", None, {}),
        ("PMF MAP (point_estimate)", "pmf", "map", {"preset": "point_estimate"}),
        ("BPMF Gibbs, Gaussian", "bpmf", "gibbs", {}),
        ("MMSBM MAP (EM)", "mmsbm", "map", {}),
        ("MPMA staged", "mpma", "staged", {})]
predictions, seconds = {}, {}
for label, name, method, options in ROWS:
    start = time.perf_counter()
    if not FAST and name in ("pmf", "bpmf", "mpma"):
        options = {"n_factors": 10, **options}
    rec = make_recommender(name, method, fast=FAST, options=options, random_seed=0).fit(train)
    predictions[label] = rec.predict_ratings(test)
    seconds[label] = time.perf_counter() - start
predictions["BPMF Gibbs, ordered probit"] = pred
reliability = {label: level_reliability(p, test) for label, p in predictions.items()}
fig = plot_level_reliability({k: v for k, v in reliability.items() if k != "uniform"})

# %% [markdown]
# ## Log predictive density on u1
#
# The LPD is the mean log probability a model gave the level each held-out rating had (nats; higher is better; uniform guessing on five levels scores log(1/5) = -1.609). Accuracy is the share of ratings equal to the most probable level; RMSE is that of the expected rating.

# %%
rows = {label: {**score(p, test), "ece": reliability[label].attrs["ece"]}
        for label, p in predictions.items()}
table = pd.DataFrame(rows).T[["lpd", "accuracy", "rmse", "ece", "coverage_90"]]
table.sort_values("lpd", ascending=False).round(4)

# %% [markdown]
# ## Five folds, beside myFM's ordered probit
#
# `benchmarks/ordinal.py` runs BPMF's ordered probit by Gibbs and myFM's ordered-probit Gibbs sampler (rank 10, the same folds, the same process) on u1..u5; its record, `benchmarks/results/ordinal.json`, is read here as it was written.

# %%
import json
from pathlib import Path

record = json.loads(Path("../benchmarks/results/ordinal.json").read_text())
print("record made", record["created_at"], "with bayesrec", record["versions"]["bayesrec"])
pd.DataFrame(record["mean"]).T.round(4)
