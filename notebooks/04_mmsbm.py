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
# # 4. MMSBM: memberships, rating patterns, and a distribution over rating levels
#
# The mixed-membership stochastic block model (Godoy-Lorite et al., PNAS 2016) treats ratings as categories: each user belongs to K groups with mixed memberships, each item to L groups, and every pair of groups has its own distribution over the rating levels. Its prediction for a pair is a full distribution over 1..5, so the expected rating (RMSE), the median (MAE) and the most probable rating (accuracy) all follow from one fit.

# %%
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
# ## MAP by EM, several restarts averaged
#
# `fit(model, "map")` runs EM (the model declares an E-step, computed by a Numba kernel); each restart starts from its own prior draw and becomes a chain, and predictions average the restarts' level probabilities, as the paper does.

# %%
import time

from bayesrec.inference import fit, predict
from bayesrec.metrics import score
from bayesrec.models import build_model

K = L = 4 if FAST else 10
model = build_model("mmsbm", train, n_user_groups=K, n_item_groups=L)
start = time.perf_counter()
em_fit = fit(model, "map", random_seed=0, restarts=2 if FAST else 10,
             maxiter=60 if FAST else 400)
print(f"fit {time.perf_counter() - start:.1f} s")
pred = predict(em_fit, pairs=test, random_seed=0)
bayes_scores = score(pred, test)
em_fit["optimizer_result"].to_dataset()[["log_likelihood"]].to_dataframe().T

# %%
{k: round(v, 4) for k, v in bayes_scores.items()}

# %% [markdown]
# ## The predictive distribution over rating levels
#
# Each pair gets a probability for every level: here the average over the restarts (for NUTS or ADVI fits, over the posterior draws, which are kept as `prob_draws` for their uncertainty).

# %%
fig, axes = plt.subplots(1, 4, figsize=(13, 3), sharey=True)
levels = pred["rating_level"].values
for ax, k in zip(axes, range(4), strict=True):
    p = pred["prob"].isel(pair=k).values
    ax.bar(levels, p, color="C0", alpha=0.8)
    ax.axvline(test.rating[k], color="C3", ls="--", label="observed")
    ax.set(title=f"user {pred['user'].values[k]}, item {pred['item'].values[k]}",
           xlabel="rating", xticks=levels)
axes[0].set_ylabel("P(rating)")
axes[0].legend()
fig.tight_layout()

# %% [markdown]
# ## Memberships and rating patterns
#
# Group labels are exchangeable: restarts find the same structure under different labels. `memberships` and `rating_patterns` read the best restart (by training log-likelihood only); `plot_mmsbm_rating_patterns` shows the K x L table of expected ratings with each pair's distribution.

# %%
from IPython.display import display

from bayesrec.diagnostics.mmsbm import memberships, rating_patterns
from bayesrec.diagnostics.plots_mmsbm import plot_mmsbm_rating_patterns

mem = memberships(em_fit)
print(mem)
patterns = rating_patterns(em_fit)
display(plot_mmsbm_rating_patterns(patterns))

# %%
# how mixed are the users? the largest membership of each user
top = mem["theta"].max("user_group")
fig, ax = plt.subplots(figsize=(5, 3))
ax.hist(np.ravel(top.values), bins=30)
ax.set(xlabel="largest group membership of a user", ylabel="users")

# %% [markdown]
# ## Against the `mmsbm` package's EM
#
# The reference implementation (PyPI `mmsbm` 2.0.1, maximum likelihood by EM, 5 restarts averaged), on the same split. bayesrec's MAP with the default flat membership priors and a light Dirichlet(2) smoothing of each rating distribution is the Bayesian counterpart of the same estimate.

# %%
import pandas as pd
from mmsbm import MMSBM

from bayesrec.diagnostics.mmsbm import package_probabilities
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
pd.DataFrame({"bayesrec MAP (EM)": bayes_scores, "mmsbm package EM": package_scores}).round(4)
