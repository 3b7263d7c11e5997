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
# # 1. Quick start: fit, predict, recommend, and check against the truth
#
# bayesrec ships an embedded dataset: ratings on 1..5 simulated from a known low-rank-plus-biases model, the size of MovieLens 100K. Because the true parameters are known, we can check what a fit gets right, not just its test score.

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
from bayesrec.data.simulate import load_synthetic, true_mean
from bayesrec.data.splits import holdout

small = dict(n_users=200, n_items=150, n_ratings=6000) if FAST else {}
ratings, truth = load_synthetic(**small)
split = holdout(ratings, 0.2, seed=0)
train, test = split.train, split.test
print(ratings)
print(split.report())

# %% [markdown]
# ## Baselines
#
# Every comparison starts with the simple models.

# %%
from bayesrec.evaluation import evaluate

rows = {}
for name in ["global_mean", "mean_of_means", "biases"]:
    res = evaluate(name, [split], seed=0)
    rows[name] = res.summary().loc["rmse", "mean"]
floor = np.sqrt(np.mean((test.rating - true_mean(truth, test.user, test.item)) ** 2))
rows["truth (noise floor)"] = floor
{k: round(v, 4) for k, v in rows.items()}

# %% [markdown]
# ## Bayesian PMF by block Gibbs
#
# `build_model` returns a plain `pm.Model` with named dims labelled by your ids; `fit` runs it. Gibbs draws each user's and each item's factors from their exact Gaussian conditionals, so it is fast and needs no tuning.

# %%
from bayesrec.inference import fit, predict, recommend
from bayesrec.models import build_model

model = build_model("bpmf", train, n_factors=3 if FAST else 10, parameterisation="centered")
draws = dict(draws=100, tune=50) if FAST else dict(draws=500, tune=100)
posterior = fit(model, "gibbs", chains=2, random_seed=1, **draws)
posterior

# %%
pred = predict(posterior, pairs=test, random_seed=2)
err = pred["mean"].values - test.rating
print(f"test RMSE {np.sqrt(np.mean(err ** 2)):.4f} (noise floor {floor:.4f})")
pred[["mean", "sd"]].to_dataframe().head()

# %% [markdown]
# ## Against the truth
#
# The posterior-mean prediction should track the true expected rating, and the 90 % predictive intervals should cover about 90 % of the held-out ratings.

# %%
from bayesrec.diagnostics import calibration_table, interval_coverage

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
interval_coverage(pred, test).to_dataframe()

# %% [markdown]
# ## Recommendations, with their uncertainty
#
# Batched over users; items a user already rated are excluded.

# %%
top = recommend(posterior, train.users[:3].to_numpy(), n=5)
top.to_dataframe().reset_index()

# %% [markdown]
# ## Convergence on identifiable quantities
#
# Factor matrices are identified only up to rotation, so R-hat on raw factors means nothing; bayesrec checks the Frobenius norms, the log-likelihood and the predictions of sampled pairs instead.

# %%
from IPython.display import display

from bayesrec.diagnostics import (
    convergence_summary,
    frobenius_norms,
    plot_norm_traces,
    plot_rmse_trace,
    rmse_trace,
)

display(plot_norm_traces(frobenius_norms(posterior)))
display(plot_rmse_trace(rmse_trace(posterior, train, test)))
print(convergence_summary(posterior, pairs=test))

# %% [markdown]
# ## Save and load
#
# A fit is a netCDF file with the id maps, the scale and a hash; the loaded fit predicts without the training data.

# %%
import tempfile
from pathlib import Path

from bayesrec.inference import load_fit, save_fit

path = save_fit(posterior, Path(tempfile.mkdtemp()) / "bpmf.nc")
again = load_fit(path)
same = predict(again, pairs=test, random_seed=2)
assert np.array_equal(same["mean"].values, pred["mean"].values)
print(path.name, f"{path.stat().st_size / 1e6:.1f} MB, identical predictions after loading")
