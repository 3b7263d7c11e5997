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

# the data were simulated with 5 factors (3 in fast mode): the model is given as many
model = build_model("bpmf", train, n_factors=3 if FAST else 5)
sweeps = dict(draws=100, tune=50) if FAST else dict(draws=1000)  # 2 chains, 100 burn-in
posterior = fit(model, "gibbs", random_seed=1, **sweeps)
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
if not FAST:  # the README's picture comes from this run
    fig.savefig("../docs/quick_start.png", dpi=80)
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
report = convergence_summary(posterior, pairs=test)
print(report)
print("\nconverged on every identified quantity" if report.ok else
      f"\nNOT converged: {len(report.flags)} problem(s) above. Do not trust the flagged "
      "quantities yet: draw more (fit(..., draws=...)) and check again.")

# %% [markdown]
# What to do when it has not converged. The report names each quantity whose chains disagree (R-hat above 1.01) or have too few effective draws, and says what to do: draw more, or look for several modes. A common cause with matrix factorisation is more factors than the data hold: fitted with more factors than these data were simulated with, the predictions and factor norms can converge while the training log-likelihood keeps drifting for thousands of sweeps (the superfluous factors slowly absorb noise), so that its R-hat stays high. Fewer factors, or more sweeps, fix it; held-out predictions, the quantity a recommender uses, converge much sooner. Here the model has the simulated rank, and the report above says whether every identified quantity converged.

# %% [markdown]
# ## Save and load
#
# A fit is a netCDF file with the id maps, the scale and a hash; the loaded fit predicts without the training data. Every draw of every factor makes a big file; `thin=20` keeps every 20th draw of each chain: a file 20 times smaller, whose predictions carry a larger Monte Carlo error.

# %%
import tempfile
from pathlib import Path

from bayesrec.inference import load_fit, save_fit

folder = Path(tempfile.mkdtemp())
path = save_fit(posterior, folder / "bpmf.nc", thin=20)
again = load_fit(path)
print(f"{path.name}: {path.stat().st_size / 1e6:.1f} MB, {again['posterior'].sizes['draw']} "
      f"draws per chain (thinned by {again.attrs['thinned_by']})")
same = predict(again, pairs=test, random_seed=2)
shift = np.abs(same["mean"].values - pred["mean"].values)
print(f"predictions from the thinned fit differ from the full fit's by {shift.mean():.4f} on "
      f"average (at most {shift.max():.4f}): Monte Carlo error of fewer draws")
