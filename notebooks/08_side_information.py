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
# # 8. What attributes and viewing history add
#
# The rating matrix is not all we know. MovieLens 100K also records each user's age, gender and occupation and each film's genres and release date, and *which* films a user chose to rate says something by itself. `pmf` and `bpmf` take both as parts of the prior:
#
# * `user_features="auto"` / `item_features="auto"` (the data set's own `user_info` / `item_info`, or a DataFrame indexed by id): the prior mean of each user's factors and bias is a linear function of the user's attributes, `X_U @ user_feature_coef` and `X_U @ user_bias_feature_coef`, with coefficients under their own learned shrinkage (Porteous, Asuncion & Welling 2010; Macau); the same for films.
# * `implicit="both"`: each user's factors gain `|N(u)|^-1/2` times the sum of `item_implicit` over the films the user rated in the training data (Koren's SVD++ term), and each film's the symmetric sum over its raters.
#
# This notebook fits BPMF by block Gibbs with and without the attributes on MovieLens u1, shows what the attributes do (the coefficient posteriors, labelled), predicts a brand-new user from attributes alone, measures cold start (users none of whose ratings were seen), and adds the viewing history, by the same sampler.

# %%
# %matplotlib inline
import os

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from bayesrec.provenance import watermark

# Fast mode (CI): a small dataset and short fits.  Unset BAYESREC_FAST for the full run.
FAST = os.environ.get("BAYESREC_FAST", "0") == "1"
print("fast mode" if FAST else "full mode")
print(watermark("matplotlib"))  # when, on which commit, with what, on which machine

# %%
# MovieLens 100K fold u1 from the data home ($BAYESREC_DATA, else the user cache folder):
# without it the loader says where it looked, and the notebook stops. Fast mode (CI) uses
# small synthetic ratings whose biases and factor means are planted functions of simulated
# attributes, and its name says so.
from bayesrec.data.simulate import simulate_side_information
from bayesrec.data.splits import Split, holdout
from bayesrec.evaluation import example_split

if FAST:
    ratings, _ = simulate_side_information(150, 120, 4000, seed=0)
    held = holdout(ratings, 0.2, seed=0)
    split = Split(held.train, held.test,
                  name="fast mode: small synthetic data with attributes, not MovieLens")
else:
    split = example_split(False)
train, test = split.train, split.test
print(split.name)
print(train.user_info.head(3), "\n")
print(train.item_info.drop(columns=["title", "url"], errors="ignore").head(3))

# %% [markdown]
# ## The attributes as the model sees them
#
# The info tables are encoded once, by `bayesrec.data.features.encode_features`: booleans (the genres) stay 0/1, numbers and dates (age; the release date, as a year) are standardised, text with few values (gender, occupation) becomes one column per value, and free text and identifiers (title, zip code, URL) are dropped.

# %%
from bayesrec.data.features import encode_features

for side, info, ids in (("user", train.user_info, train.users),
                        ("item", train.item_info, train.items)):
    matrix, names = encode_features(info, ids)
    print(f"{side}: {matrix.shape[1]} features: {', '.join(names)}\n")

# %% [markdown]
# ## BPMF with and without the attributes, by block Gibbs
#
# The same model and sampler settings (the registry's defaults: 2 chains, 100 + 500 sweeps, 10 factors), once on the ratings alone and once with the attributes of both sides. The feature coefficients are extra exact blocks of the same Gibbs sampler (a Bayesian linear regression of the factors and biases on the attributes, and slice updates of their scales).

# %%
import time

from bayesrec.inference import fit, predict
from bayesrec.metrics import score
from bayesrec.models import build_model

K = 2 if FAST else 10
sweeps = dict(draws=100, tune=50) if FAST else {}
SIDE = dict(user_features="auto", item_features="auto")
fits, seconds = {}, {}
for label, options in (("ratings only", {}), ("+ attributes", SIDE)):
    start = time.perf_counter()
    fits[label] = fit(build_model("bpmf", train, n_factors=K, **options), "gibbs",
                      random_seed=0, **sweeps)
    seconds[label] = time.perf_counter() - start
preds = {label: predict(f, pairs=test, random_seed=0) for label, f in fits.items()}
table = pd.DataFrame({label: score(p, test) for label, p in preds.items()}).T[
    ["rmse", "mae", "lpd", "coverage_90"]]
table["fit seconds"] = pd.Series(seconds)
print(f"the attributes change the test RMSE by "
      f"{table['rmse'].iloc[1] - table['rmse'].iloc[0]:+.4f}; the fit with them took "
      f"{seconds['+ attributes'] / seconds['ratings only']:.1f} x as long (its coefficient "
      "updates run in plain numpy, and the extra moves are off for feature models)")
table.round(4)

# %% [markdown]
# ## What an attribute adds to the average rating
#
# An attribute acts twice: through the bias (`user_bias_feature_coef`) and through the mean of the factors (`user_feature_coef`), and in BPMF the two trade off: a shift of the users' factor means along the films' average factor vector moves every rating of those users like a bias does, so the bias coefficient alone is not identified. What is identified, and what an analyst wants, is the sum: the stars an attribute adds to a user's rating of the average film (the training films' mean factor vector), all else equal,
#
# `effect_f = user_bias_feature_coef[f] + user_feature_coef[f] . mean over films of item_factors`,
#
# per posterior draw; the same for films, against the average user. First, have the chains settled on these effects? R-hat and bulk ESS of every effect, then the library's summary on the log-likelihood, the factor norms and the predictions of 200 test pairs.

# %%
import arviz as az
import xarray as xr

from bayesrec.diagnostics import convergence_summary

side_fit = fits["+ attributes"]
post = side_fit["posterior"].to_dataset()
effects = xr.Dataset({
    "user_effect": post["user_bias_feature_coef"]
    + (post["user_feature_coef"] * post["item_factors"].mean("item")).sum("factor"),
    "item_effect": post["item_bias_feature_coef"]
    + (post["item_feature_coef"] * post["user_factors"].mean("user")).sum("factor"),
})
rhat, ess = az.rhat(effects), az.ess(effects)
worst_rhat = float(max(rhat[v].max() for v in rhat))
print(f"attribute effects: largest R-hat {worst_rhat:.3f}, smallest bulk ESS "
      f"{float(min(ess[v].min() for v in ess)):.0f}")
print("converged on the attribute effects (R-hat < 1.01)" if worst_rhat < 1.01 else
      "NOT converged on every attribute effect (R-hat >= 1.01): read the intervals below as "
      "provisional; more sweeps (fit(..., draws=2000)) narrow the gap between the chains")
print(convergence_summary(side_fit, pairs=test, n_pairs=200))

# %% [markdown]
# Dots are posterior means, bars 90 % credible intervals; a bar across zero is an effect the data cannot sign. One-hot attributes (gender, occupation) share the model's offset, so compare them with each other, not with zero.

# %%
def forest(ax, draws, title):
    stacked = draws.stack(sample=("chain", "draw"))
    frame = pd.DataFrame({
        "mean": stacked.mean("sample").values,
        "low": stacked.quantile(0.05, "sample").values,
        "high": stacked.quantile(0.95, "sample").values,
    }, index=stacked[stacked.dims[0]].values).sort_values("mean")
    y = np.arange(len(frame))
    ax.errorbar(frame["mean"], y, xerr=[frame["mean"] - frame["low"],
                                         frame["high"] - frame["mean"]], fmt="o", ms=3)
    ax.axvline(0, color="grey", lw=0.8)
    ax.set(yticks=y, yticklabels=frame.index, title=title,
           xlabel="stars added (average film / average user)")
    return frame


fig, axes = plt.subplots(1, 2, figsize=(11, 7))
user_effects = forest(axes[0], effects["user_effect"],
                      "users: age, gender, occupation")
item_effects = forest(axes[1], effects["item_effect"],
                      "films: release date, genres")
fig.tight_layout()
for what, frame in (("users", user_effects), ("films", item_effects)):
    print(f"{what}: lowest {frame.index[0]} {frame['mean'].iloc[0]:+.3f}, "
          f"highest {frame.index[-1]} {frame['mean'].iloc[-1]:+.3f}")

# %% [markdown]
# ## A user the model has never seen
#
# A brand-new user has no ratings; all the model knows is what they tell it when they sign up. `predict(..., user_features=...)` takes their attributes (a DataFrame indexed by the new id, with the info table's columns) and draws their factors and bias around `x_new @ coefficients`, once per posterior draw; without attributes the user is the average of the population. Below, a 22-year-old female student and a 62-year-old retired man, on a few films.

# %%
newcomers = pd.DataFrame(
    {"age": [22, 62], "gender": ["F", "M"], "occupation": ["student", "retired"],
     "zip": ["00000", "00000"]},
    index=pd.Index(["new student", "new retiree"], name="user"))
if FAST:  # the simulated attributes
    newcomers = pd.DataFrame({"age": [22.0, 62.0], "gender": ["F", "M"],
                              "student": [True, False]},
                             index=pd.Index(["new student", "new retiree"], name="user"))
films = train.items[:6] if FAST else [50, 181, 1, 71, 69, 294]  # Star Wars ... Liar Liar
rows = []
for who in newcomers.index:
    for given, features in (("attributes", newcomers), ("nothing", None)):
        p = predict(side_fit, users=[who] * len(films), items=list(films), random_seed=0,
                    user_features=features)
        rows.append(pd.DataFrame({"user": who, "given": given, "film": list(films),
                                  "mean": p["mean"].values, "sd": p["sd"].values,
                                  "5%": p["quantiles"].sel(quantile=0.05).values,
                                  "95%": p["quantiles"].sel(quantile=0.95).values}))
newcomer_table = pd.concat(rows)
if not FAST:
    newcomer_table["film"] = train.item_info.loc[newcomer_table["film"], "title"].values
newcomer_table.round(2)

# %% [markdown]
# (Predicting "nothing" for an id the fit never saw warns that it falls back to the average user; the warning is the library telling you what it did.)
#
# ## Cold start: users none of whose ratings were seen
#
# A tenth of u1's test users (seeded) lose all their training ratings; both models are refitted on what remains, and those users' test ratings are predicted, by the model with attributes from their attributes alone, by the model without from the population. (The users stay in the model's id universe with no ratings, so their posterior is their prior given the rest: for the model with attributes, centred on `x_u @ coefficients`.)

# %%
rng = np.random.default_rng(0)
test_users = np.unique(test.user)
cold = rng.choice(test_users, size=max(1, len(test_users) // 10), replace=False)
warm_train = train.subset(~np.isin(train.user, cold))
cold_test = test.subset(np.isin(test.user, cold))
cold_scores = {}
for label, options in (("ratings only", {}), ("+ attributes", SIDE)):
    f = fit(build_model("bpmf", warm_train, n_factors=K, **options), "gibbs", random_seed=0,
            **sweeps)
    cold_scores[label] = score(predict(f, pairs=cold_test, random_seed=0), cold_test)
print(f"{len(cold)} cold users, {len(cold_test)} test ratings")
cold_table = pd.DataFrame(cold_scores).T[["rmse", "lpd", "coverage_90"]]
cold_table.round(4)

# %%
gain = cold_table.loc["ratings only", "rmse"] - cold_table.loc["+ attributes", "rmse"]
print(f"attributes lower the cold users' RMSE by {gain:.4f}; 90 % intervals cover "
      f"{cold_table.loc['+ attributes', 'coverage_90']:.3f} of their ratings")

# %% [markdown]
# ## Viewing history: the implicit terms, by block Gibbs
#
# Which films a user chose to rate is information too (Koren's SVD++): `implicit="both"` adds to each user's factors the scaled sum of an `item_implicit` vector over the films they rated in the training data, and the symmetric term to each film. The block Gibbs sampler draws each film's `item_implicit` (and each user's `user_implicit`) from its Gaussian conditional, one after another, between the factor rows and the hyperparameters. Here BPMF by Gibbs with the viewing history, alone and with the attributes, beside the two fits above (same sampler settings, same split).

# %%
for label, options in (("+ viewing history", {"implicit": "both"}),
                       ("+ viewing history + attributes", {"implicit": "both", **SIDE})):
    start = time.perf_counter()
    fits[label] = fit(build_model("bpmf", train, n_factors=K, **options), "gibbs",
                      random_seed=0, **sweeps)
    seconds[label] = time.perf_counter() - start
    preds[label] = predict(fits[label], pairs=test, random_seed=0)
history = pd.DataFrame({label: score(p, test) for label, p in preds.items()}).T[
    ["rmse", "mae", "lpd", "coverage_90"]]
history["fit seconds"] = pd.Series(seconds)
change = history["rmse"] - history.loc["ratings only", "rmse"]
print("; ".join(f"{label}: test RMSE {'+' if d >= 0 else ''}{d:.4f} against ratings only"
                for label, d in change.iloc[1:].items()))
history.round(4)

# %% [markdown]
# ## The benchmark
#
# `benchmarks/side_information.py` runs these models on MovieLens folds (u1..u5 by default) beside myFM with the same information, in one process. Its record (`benchmarks/results/side_information.json`), when one exists: the mean test RMSE over the folds it holds, and the largest split R-hat of bayesrec's per-draw test RMSE (converged means below 1.01).

# %%
import json
from pathlib import Path

from IPython.display import display

record = Path("../benchmarks/results/side_information.json")
if record.exists():
    bench = json.loads(record.read_text())
    print(f"folds: {', '.join(bench['folds_done'])}; created {bench['created_at']}")
    table = pd.DataFrame({
        name: {"bayesrec": row["bayesrec"].get("rmse"), "myFM": row["myfm"].get("rmse"),
               "R-hat": row["bayesrec"].get("max_rhat_test_rmse"),
               "converged": row["bayesrec"].get("converged"),
               "seconds (bayesrec / myFM)": f"{row['bayesrec'].get('seconds', float('nan')):.0f}"
                                            f" / {row['myfm'].get('seconds', float('nan')):.0f}"}
        for name, row in bench["mean"].items()}).T
    display(table.round(4))
else:
    print("no record yet: benchmarks/side_information.py has not been run with this code")
