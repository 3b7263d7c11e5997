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
# # 5. MPMA: component weights and responsibilities; where local models help
#
# Mixture probabilistic matrix approximation (Chen, Li, Lv, Yan, Shang & Chu, IJCAI 2016) mixes a global low-rank model with two local ones, each learned within a cluster of similar users or of similar items:
#
# $$r_{ui} \sim \sum_{k \in \{g, u, i\}} \pi_k\, \mathcal N\big(b_{ui} + f^{(k)}_{ui},\ \sigma_k^2\big), \qquad b_{ui} = m + b_u + c_i$$
#
# $$f^{(g)}_{ui} = U_u^\top V_i \ \text{(global)}, \qquad f^{(u)}_{ui} = P_u^\top Q_{c(u), i} \ \text{(user-local)}, \qquad f^{(i)}_{ui} = S_{d(i), u}^\top T_i \ \text{(item-local)}$$
#
# where $c(u)$ is the cluster of user $u$ and $d(i)$ that of item $i$. The user-local component has its own user factors $P_u$ and, per user cluster, its own item factors $Q_{c,i}$ shared by the users of that cluster; the item-local component mirrors it. Priors: $\pi \sim \text{Dirichlet}(\mathbf 1)$, $\sigma_k \sim \text{InvGamma}(2, \beta)$, Gaussian factors and biases.
#
# **The indicator is marginalised.** Each rating has a latent component $z_{ui}$ with $P(z_{ui} = k) = \pi_k$; summing it out gives the mixture density above, which is smooth in every parameter, so MAP, ADVI and NUTS all apply. For a *rated* pair the posterior of $z_{ui}$ is the responsibility $\gamma_k \propto \pi_k\, \mathcal N(r_{ui} \mid b_{ui} + f^{(k)}_{ui}, \sigma_k^2)$ (`bayesrec.models.mpma_tools.responsibilities`); for an unrated pair it is just $\pi$, and the expected rating is $b_{ui} + \sum_k \pi_k f^{(k)}_{ui}$.
#
# **Clusters** (`mpma_clusters`, used when the caller gives none): a biased matrix factorisation of the training ratings by alternating least squares (a PMF MAP estimate), each user's and each item's factor vector scaled to unit length (the kind of taste, not how strongly it shows), then k-means (k-means++ start, seeded) on the users and, separately, on the items; labels are numbered by decreasing cluster size. The derived clusters are recorded in the fit's config.
#
# **Where bayesrec deviates from the paper.** The paper learns the global factors on all ratings and the local ones on the clusters' sub-matrices by SGD, and the weights and variances by EM; bayesrec writes the same three-component mixture as one Bayesian model and fits everything jointly. It adds the shared biases $m + b_u + c_i$, Dirichlet and inverse-gamma priors on the weights and noise scales, and its own clustering procedure (the paper does not fix one). `local_prior="offset"` (not used here) is an optional further deviation: local factors as offsets from the global ones.

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

# %% [markdown]
# ## Simulation check: are the weights and noise scales recovered?
#
# Ratings drawn from the model's own generative process (`simulate_mpma`) with known weights, noise scales and clusters. The model is given the true clusters and priors at the simulation's factor and bias scales, so any miss is the fit's, not a mismatch of the model. MAP (one L-BFGS run from a prior draw) and ADVI (in full mode from three seeds, to see whether the answer depends on the start).

# %%
import time

import pandas as pd

from bayesrec.data.simulate import simulate_mpma
from bayesrec.diagnostics.mpma import responsibilities
from bayesrec.inference import fit, predict
from bayesrec.models import build_model, get_spec
from bayesrec.models.mpma import COMPONENTS

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
    print(f"{label}: {time.perf_counter() - start:.0f} s")


# %%
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
pd.concat(recovery, axis=1).round(3)

# %% [markdown]
# Weights and noise scales are numbers *per component*, so they are only comparable with the truth if each fitted component plays the role of the process with the same name. The responsibilities of the training ratings say which component explains each rating; since the simulation knows which process generated it, the table below is the share of each true process's ratings (rows) whose most responsible component is each fitted one (columns). A diagonal near 1 means the roles are kept.

# %%
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
pd.concat(confusion, names=["fit"]).round(2)

# %% [markdown]
# How to read this. Two failure modes of a Gaussian mixture show up here when they happen:
#
# * **A noise scale near zero (MAP).** A component with enough free factors can fit a subset of ratings exactly; its $\sigma_k \to 0$ then makes the likelihood unbounded. The inverse-gamma prior bounds the spike, but with many ratings the likelihood gain can still outweigh it, and the point estimate is then a degenerate mode, not an estimate of the noise. Averaging over the posterior (ADVI, NUTS) is much less prone to it: a spike has little posterior mass.
# * **Components exchanging roles.** A global low-rank matrix is a special case of both local components (equal factors in every cluster), so only the *local* structure tells the components apart. If, from its start, a local component captures the dominant global process first, the global component is left with what nothing else explains, and the weights and noise scales come out under the wrong names. Different seeds can end in different such optima: compare the ADVI rows and the confusion tables.
#
# Where the diagonal is near 1 and no sigma collapses, the table above is a recovery check of the weights and noise scales; where it is not, the printed lines say which of the two happened.

# %% [markdown]
# ## MovieLens: PMF MAP against MPMA MAP
#
# Both with the `point_estimate` preset (the stronger factor shrinkage, `factor_scale=2/3`, that a point estimate needs on MovieLens), 10 factors in full mode, the registry's fast settings in fast mode. MPMA's clusters are derived from the training ratings.

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
from bayesrec.metrics import score


def settings(name, method, **options):
    """Model and fit options: the registry's fast ones in fast mode, else 10 factors."""
    fast = get_spec(name).fast
    base = dict(fast.options) if FAST else {"n_factors": 10}
    return {**base, **options}, (dict(fast.fit.get(method, {})) if FAST else {})


models, fits, seconds = {}, {}, {}
for name in ("pmf", "mpma"):
    method = "map"
    options, fit_options = settings(name, method, preset="point_estimate")
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

score_table(preds, seconds).round(4)

# %% [markdown]
# ### The fitted mixture
#
# The weights and noise scales of the MAP fit (PMF's single noise scale for reference), and the clusters the local components work in: their sizes and how many training ratings fall in each.

# %%
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
clusters

# %% [markdown]
# ## Responsibilities of the held-out ratings
#
# For each test rating, the posterior probability that each component generated it. This uses the held-out rating itself, so it is a diagnostic of which component explains the rating, not a prediction.

# %%
resp = responsibilities(mpma_map, test, model=models["mpma"])
fig, axes = plt.subplots(1, resp.sizes["component"], figsize=(12, 3.2), sharey=True)
for ax, name in zip(axes, resp["component"].values, strict=True):
    values = resp.sel(component=name).values
    ax.hist(values, bins=np.linspace(0, 1, 26), color="C0")
    ax.set(title=f"{name} (mean {values.mean():.3f}, weight {mixture.loc[name, 'weight']:.3f})",
           xlabel="responsibility", yscale="log")
axes[0].set_ylabel("test ratings")
fig.tight_layout()
resp.to_pandas().describe().round(3)

# %% [markdown]
# ## Where do the local models help?
#
# Per user cluster, per item cluster and per bin of the user's number of training ratings (five bins with about equal numbers of test ratings): the test RMSE of MPMA MAP minus that of PMF MAP (below zero: MPMA is better there), beside the mean responsibility of the two local components on those test ratings. Both models predict the same test ratings, so the comparison is paired: `mse diff` is the mean difference of their squared errors and the error bars are 2 standard errors of the RMSE difference derived from it.

# %%
activity = np.bincount(train.user, minlength=train.n_users)[test.user]
activity_bins = pd.qcut(activity, 5, duplicates="drop").rename_categories(
    lambda iv: f"{int(np.floor(iv.left)) + 1}-{int(iv.right)}")
GROUPINGS = {"user cluster": user_cluster[test.user], "item cluster": item_cluster[test.item],
             "user's training ratings": activity_bins}


# the PMF fit each MPMA fit is compared with (the staged fit's global component is a
# penalised PMF: its counterpart is PMF's MAP with the point_estimate preset)
PMF_OF = {"MAP": "pmf MAP", "ADVI": "pmf ADVI", "staged": "pmf MAP"}


def where_it_helps(method, resp):
    """Per group of test ratings: RMSE of MPMA fitted by ``method`` and of its PMF
    counterpart, and the mean responsibility of the local components."""
    local = resp.sel(component=[c for c in resp["component"].values if c != "global"])
    pairs = pd.DataFrame({**GROUPINGS,
                          "se pmf": (preds[PMF_OF[method]]["mean"].values - test.rating) ** 2,
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
    for ax, (by, table) in zip(axes, groups.items(), strict=True):
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
pd.concat(groups["MAP"], names=["grouping", "group"]).round(4)

# %%
fig = plot_where(groups["MAP"], "MAP")

# %% [markdown]
# ## The paper's procedure: the staged fit
#
# Chen et al. do not fit the mixture jointly. `fit(model, "staged")` follows them: the global component on all training ratings, each local component on its cluster's ratings with a penalty towards the global fit, then the weights and noise scales by EM on predictions the components did not train on (out of fold within the training set). The result is one point of every MPMA variable, so it predicts, recommends and is diagnosed like a MAP fit. Its weights beside the joint MAP's, then the same per-group comparison against PMF MAP.

# %%
from IPython.display import display

options, fit_options = settings("mpma", "staged")
models["mpma staged"] = build_model("mpma", train, **options)
start = time.perf_counter()
fits["mpma staged"] = fit(models["mpma staged"], "staged", random_seed=0, **fit_options)
seconds["mpma staged"] = time.perf_counter() - start
preds["mpma staged"] = predict(fits["mpma staged"], pairs=test, random_seed=0)
staged_mixture = weights_and_sigmas(fits["mpma staged"])
display(pd.concat({"joint MAP": mixture.drop("PMF (one component)"), "staged": staged_mixture},
                  axis=1).round(4))
resp_staged = responsibilities(fits["mpma staged"], test, model=models["mpma staged"])
groups["staged"] = where_it_helps("staged", resp_staged)
fig = plot_where(groups["staged"], "staged")
score_table(preds, seconds).round(4)

# %% [markdown]
# ### The accounting, on five folds
#
# How much of the staged fit's gain is the mixture's own? `benchmarks/mpma_staged.py` fits, on u1..u5 in one process, the staged MPMA beside PMF MAP with its default prior, with the `point_estimate` preset, and with the same penalty as the staged fit's global component ("equal penalty"): the last comparison isolates what the local components and the mixture add. Its record, `benchmarks/results/mpma_staged.json`, read as it was written:

# %%
import json
from pathlib import Path

record = json.loads(Path("../benchmarks/results/mpma_staged.json").read_text())
print("record made", record["created_at"], "on folds", ", ".join(record["folds"]))
runs = pd.DataFrame(record["rows"])
accounting = runs.pivot_table(index="row", columns="fold", values="rmse")
accounting["mean"] = accounting.mean(axis=1)
accounting.sort_values("mean").round(4)

# %% [markdown]
# ## Posterior version: ADVI
#
# MPMA and PMF by mean-field ADVI, started from a prior draw, with the package's default stopping (the learning rate decays on plateaus of the loss and the fit stops after the last decay), the same number of factors as above, and the registry's settings otherwise (no extra shrinkage: posterior averaging regularises). Then the weights' posterior mean and 90 % interval (mean-field ADVI tends to understate posterior spread), the loss history, and the test scores of all four fits.

# %%
for name in ("pmf", "mpma"):
    method = "advi"
    options, fit_options = settings(name, method)
    print(f"{name}: {options} {fit_options}")
    label = f"{name} ADVI"
    start = time.perf_counter()
    models[label] = build_model(name, train, **options)
    fits[label] = fit(models[label], method, random_seed=0, **fit_options)
    seconds[label] = time.perf_counter() - start
    preds[label] = predict(fits[label], pairs=test, random_seed=0)
    advi = fits[label]["advi"].attrs
    print(f"  {seconds[label]:.0f} s, {advi['n_iterations']} iterations, "
          f"stopped: {advi['stop_reason']}")
score_table(preds, seconds).round(4)

# %%
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
display(plot_advi_loss(fits["mpma ADVI"]["advi"].to_dataset()))

# %% [markdown]
# The responsibilities of the test ratings under the ADVI fit (averaged over its draws), and the same per-group comparison against PMF by ADVI.

# %%
resp_advi = responsibilities(fits["mpma ADVI"], test, model=models["mpma ADVI"])
print(resp_advi.to_pandas().describe().round(3))
groups["ADVI"] = where_it_helps("ADVI", resp_advi)
fig = plot_where(groups["ADVI"], "ADVI")
pd.concat(groups["ADVI"], names=["grouping", "group"]).round(4)

# %% [markdown]
# ## Reading the results
#
# The numbers below come from this run.

# %%
table = score_table(preds, seconds)
fitted = {"MAP": (mixture["weight"].drop("PMF (one component)"), resp),
          "staged": (staged_mixture["weight"], resp_staged),
          "ADVI": (posterior_weights["mean"], resp_advi)}
for method, (w, r) in fitted.items():
    diff = table.loc[f"mpma {method}", "rmse"] - table.loc[PMF_OF[method], "rmse"]
    d = (preds[f"mpma {method}"]["mean"].values - test.rating) ** 2 - (
        preds[PMF_OF[method]]["mean"].values - test.rating) ** 2
    top = pd.Series(r["component"].values[r.values.argmax(1)]).value_counts(normalize=True)
    lines = [f"{method}: test RMSE of MPMA minus {PMF_OF[method]} {diff:+.4f} (paired MSE "
             "difference "
             f"{d.mean():+.4f} +- {d.std() / np.sqrt(len(d)):.4f} standard error)",
             "  weights: " + ", ".join(f"{k} {v:.3f}" for k, v in w.items())
             + f"; effective number of components 1 / sum(w^2) = {1 / np.sum(w.values ** 2):.2f}",
             "  most responsible component of the test ratings: "
             + ", ".join(f"{k} {v:.1%}" for k, v in top.items()),
             "  mean |responsibility - weight| over test ratings and components: "
             f"{np.abs(r.sel(component=list(w.index)).values - w.values).mean():.3f}"]
    print("\n".join(lines))
    for by, t in groups[method].items():
        better = [str(g) for g in t.index[t["mse diff"] < -2 * t["mse diff se"]]]
        worse = [str(g) for g in t.index[t["mse diff"] > 2 * t["mse diff se"]]]
        print(f"  by {by} ({len(t)} groups): MPMA better by more than 2 standard errors "
              f"in {better or 'none'}, worse in {worse or 'none'}")

# %% [markdown]
# How to read them. MPMA can only beat PMF where a local component adds something: a user cluster whose taste for some items departs from the global low-rank structure, or an item cluster that users judge differently. The lines above say which of these outcomes this run gave.
#
# * **The local components take little weight.** The fit found no rating pattern that a local component explains better than the global one; MPMA then predicts like PMF with extra parameters, and its test error is PMF's or a little worse, because the local factors it still carries add variance.
# * **The mixture collapses onto one local component** (an effective number of components near 1, not on `global`). A local component contains the global one as a special case (equal factors in every cluster) and has more factors per user or item, so it fits the training ratings at least as well; a point estimate is then free to drop the other components, and MPMA reduces to a per-cluster factor model whose extra factors are each estimated from fewer ratings. That usually overfits (a higher test RMSE than PMF); the per-group tables show in which groups. It says nothing about whether a genuine mixture would help, only that the point estimate does not find one.
# * **Near-equal weights and responsibilities equal to the weights** (a mean |responsibility - weight| near 0 with an effective number of components near 3). The components make nearly the same prediction for every rating, for example because their factors have shrunk towards zero or the fit stopped before they separated, so the data cannot tell them apart and the weights stay near their prior. That is not evidence for a mixture either; the ADVI loss plot shows whether the fit stopped on a real plateau.
# * **Real mixing with a lower RMSE.** Responsibilities that vary between ratings, and groups with a negative difference and a high local responsibility: there the local models help.
#
# Weights and responsibilities are per component, and the components can exchange roles (see the simulation), so they are evidence about structure only together with the test scores. A MAP point estimate of a mixture is fragile (spikes, a collapsing weight); ADVI averages over an approximate posterior, and test RMSE, MAE and coverage compare the fits regardless of labels.
