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
# # 3. Bayesian PMF: what the hyperpriors buy
#
# PMF fixes the prior precision of the factors (the regularisation lambda = sigma^2 / sigma_U^2 is a tuning knob). BPMF (Salakhutdinov & Mnih 2008) puts hyperpriors on the factor means and covariances and learns them from the data. Here: PMF by MAP with its documented fixed prior against BPMF sampled by block Gibbs, on the same split; the regularisation BPMF learns; uncertainty per user; calibration.

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

# %%
import pandas as pd

from bayesrec.inference import fit, predict
from bayesrec.metrics import score
from bayesrec.models import build_model

K = 3 if FAST else 10
# PMF's MAP with the "point_estimate" preset (stronger factor shrinkage, factor_scale 2/3);
# BPMF by Gibbs with the registry's defaults (2 chains, 100 + 500 sweeps)
pmf_model = build_model("pmf", train, n_factors=K, preset="point_estimate")
pmf_fit = fit(pmf_model, "map", random_seed=0)
sweeps = dict(draws=100, tune=50) if FAST else {}
bpmf_fit = fit(build_model("bpmf", train, n_factors=K), "gibbs", random_seed=0, **sweeps)
preds = {"PMF MAP": predict(pmf_fit, pairs=test, random_seed=0),
         "BPMF Gibbs": predict(bpmf_fit, pairs=test, random_seed=0)}
pd.DataFrame({k: score(v, test) for k, v in preds.items()}).T[
    ["rmse", "mae", "accuracy", "lpd", "coverage_90"]].round(4)

# %% [markdown]
# ## The regularisation BPMF learns
#
# PMF's prior sd of every factor is fixed (`pmf_default_priors`, scaled by 2/3 in the `point_estimate` preset used for MAP here). BPMF learns one sd per factor and side, and the noise sd: the implied regularisation lambda_k = sigma^2 / sd_k^2 differs by factor and side, which a single fixed lambda cannot do.

# %%
from bayesrec.models.pmf import pmf_default_priors

fixed = pmf_default_priors(train.scale)["user_factor_sd"] * pmf_model.bayesrec_info.config["factor_scale"]
post = bpmf_fit["posterior"].to_dataset()
fig, ax = plt.subplots(1, 2, figsize=(11, 3.5))
for k, side in enumerate(("user", "item")):
    sd = post[f"{side}_factor_sd"]
    lo, mid, hi = (sd.quantile(q, ("chain", "draw")).values for q in (0.05, 0.5, 0.95))
    x = np.arange(len(mid)) + 0.2 * k
    ax[0].errorbar(x, mid, yerr=[mid - lo, hi - mid], fmt="o", ms=4, label=f"{side} factors")
ax[0].axhline(fixed, color="k", ls="--", lw=1, label="PMF's fixed prior sd (MAP)")
ax[0].set(xlabel="factor", ylabel="prior sd of the factor",
          title="learned factor scales (90 % intervals)")
ax[0].legend(fontsize="small")
lam = (post["sigma"] ** 2 / post["user_factor_sd"] ** 2).median(("chain", "draw"))
ax[1].bar(np.arange(len(lam)), lam.values)
ax[1].axhline(float(post["sigma"].median() ** 2 / fixed ** 2), color="k", ls="--", lw=1,
              label="PMF MAP's lambda (same noise)")
ax[1].set(xlabel="factor", ylabel="lambda_U = sigma^2 / sd^2", yscale="log",
          title="implied user regularisation per factor")
ax[1].legend(fontsize="small")
fig.tight_layout()

# %% [markdown]
# ## Uncertainty per user
#
# The posterior predictive sd of a user's ratings combines the rating noise with the uncertainty about that user's factors, which shrinks as the user rates more. A MAP fit has one point estimate, so its sd is the noise alone.

# %%
counts = np.bincount(train.user, minlength=train.n_users)
fig, ax = plt.subplots(figsize=(6, 4))
for label, pred in preds.items():
    sd = pd.Series(pred["sd"].values).groupby(test.user).mean()
    ax.scatter(counts[sd.index], sd.values, s=6, alpha=0.5, label=label)
ax.set(xscale="log", xlabel="user's training ratings",
       ylabel="mean predictive sd of the user's test ratings")
ax.legend(fontsize="small")

# %% [markdown]
# ## Calibration
#
# Coverage of central predictive intervals on the test ratings at every level: on the diagonal means the stated uncertainty is the real uncertainty.

# %%
from IPython.display import display

from bayesrec.diagnostics import calibration_table, plot_calibration

display(plot_calibration({k: calibration_table(v, test) for k, v in preds.items()}))

# %% [markdown]
# ## Films like a film, with their uncertainty
#
# Two films are alike, for this model, when users who like one like the other. `similar_items` computes, in every posterior draw, the correlation across all users of the two films' expected ratings (raw cosine of factor vectors would not do: factors are identified only up to a rotation), and returns its posterior mean, a 90 % interval and the probability that each neighbour is among the film's top 10. Below: the neighbourhoods of the three most-rated films of the training set, then a film with few ratings, where the posterior is unsure.

# %%
from bayesrec.inference import similar_items

info = train.item_info
title = (lambda i: info.loc[i, "title"]) if info is not None else (lambda i: f"item {i}")
counts_i = pd.Series(np.bincount(train.item, minlength=train.n_items), index=train.items)
popular = counts_i.sort_values(ascending=False).index[:3]
for item in popular:
    near = similar_items(bpmf_fit, item, n=10).to_dataframe()
    near.insert(0, "title", [title(i) for i in near.index])
    print(f"\n{title(item)} ({counts_i[item]} ratings):")
    display(near[["title", "mean", "lower", "upper", "prob_top_n", "n_ratings"]].round(3))

# %%
from bayesrec.diagnostics import plot_item_neighbourhood

display(plot_item_neighbourhood(bpmf_fit, popular[0], n=10))

# %%
rare = counts_i[counts_i.between(3, 5)].index[0]
near = similar_items(bpmf_fit, rare, n=10).to_dataframe()
near.insert(0, "title", [title(i) for i in near.index])
print(f"{title(rare)} ({counts_i[rare]} ratings): wide intervals, and no neighbour is sure")
near[["title", "mean", "lower", "upper", "prob_top_n", "n_ratings"]].round(3)
