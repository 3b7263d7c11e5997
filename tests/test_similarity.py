"""Similar items and users with their uncertainty (issue 23), and the neighbourhood plot.

The data have planted clusters: items of one cluster share a factor vector up to small
noise, and so do the users of one cluster; two items get only three ratings each.
The similarity computed from the true parameters (the correlation across users of the
true expected ratings) is what the intervals should cover.
"""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest
import xarray as xr

from bayesrec.data import Ratings
from bayesrec.data.simulate import simulate_ratings
from bayesrec.errors import InputError, UnknownIdError
from bayesrec.inference import fit, similar_items, similar_users
from bayesrec.inference.similarity import POINT_NOTE, _prob_top_n
from bayesrec.models import build_model

N_USERS, N_ITEMS, ITEM_CLUSTERS, USER_CLUSTERS = 120, 40, 4, 3
RARE_ITEMS = (1, 11)  # ids of the items with three ratings
GIBBS = {"draws": 300, "tune": 100, "chains": 2}


def planted_clusters(seed: int = 0) -> tuple[Ratings, dict]:
    """Ratings (continuous, Gaussian noise) from a biased rank-2 factorisation whose item
    factors sit on four cluster centres and user factors on three, up to noise."""
    rng = np.random.default_rng(seed)
    radius = 0.9

    def centres(k: int, turn: float) -> np.ndarray:
        angle = 2 * np.pi * np.arange(k) / k + turn
        return radius * np.c_[np.cos(angle), np.sin(angle)]

    item_cluster = np.repeat(np.arange(ITEM_CLUSTERS), N_ITEMS // ITEM_CLUSTERS)
    user_cluster = np.repeat(np.arange(USER_CLUSTERS), N_USERS // USER_CLUSTERS)
    item_factors = centres(ITEM_CLUSTERS, 0.0)[item_cluster] + rng.normal(0, 0.12, (N_ITEMS, 2))
    user_factors = centres(USER_CLUSTERS, 0.3)[user_cluster] + rng.normal(0, 0.3, (N_USERS, 2))
    mu = (3.0 + rng.normal(0, 0.3, N_USERS)[:, None] + rng.normal(0, 0.3, N_ITEMS)[None, :]
          + user_factors @ item_factors.T)
    rated = rng.random((N_USERS, N_ITEMS)) < 0.4
    for item in RARE_ITEMS:
        rated[:, item - 1] = False
        rated[rng.choice(N_USERS, 3, replace=False), item - 1] = True
    users, items = np.nonzero(rated)
    values = mu[users, items] + rng.normal(0, 0.5, len(users))
    ratings = Ratings.from_arrays(users + 1, items + 1, values)
    return ratings, {"mu": mu, "item_cluster": item_cluster, "user_cluster": user_cluster}


def true_similarity(mu: np.ndarray, code: int) -> np.ndarray:
    """Correlation of column ``code`` of ``mu`` with every column, across rows (by hand)."""
    centred = mu - mu.mean(axis=0)
    cov = centred.T @ centred[:, code]
    var = (centred**2).sum(axis=0)
    return cov / np.sqrt(var * var[code])


@pytest.fixture(scope="module")
def planted():
    return planted_clusters(0)


@pytest.fixture(scope="module")
def bpmf_fit(planted):
    ratings, _ = planted
    return fit(build_model("bpmf", ratings, n_factors=2), "gibbs", random_seed=1,
               progressbar=False, **GIBBS)


@pytest.fixture(scope="module")
def pmf_gibbs(planted):
    ratings, _ = planted
    return fit(build_model("pmf", ratings, n_factors=2), "gibbs", random_seed=2,
               progressbar=False, draws=100, tune=50, chains=2)


def _covered(ds: xr.Dataset, truth: np.ndarray) -> np.ndarray:
    codes = np.asarray(ds["neighbour"].values, dtype=int) - 1
    return (ds["lower"].values <= truth[codes]) & (truth[codes] <= ds["upper"].values)


# ---------------------------------------------------------------------------------------------
# recovery on planted clusters
# ---------------------------------------------------------------------------------------------
def test_items_of_the_same_cluster_are_the_top_neighbours(bpmf_fit, planted):
    _, truth = planted
    clusters = truth["item_cluster"]
    precision = []
    for item in range(1, N_ITEMS + 1):
        top = np.asarray(similar_items(bpmf_fit, item, n=9)["neighbour"].values) - 1
        precision.append(np.mean(clusters[top] == clusters[item - 1]))
    # 9 of the 39 other items share the cluster: chance is 0.23; measured 0.91
    assert np.mean(precision) >= 0.85
    assert np.median(precision) == 1.0


def test_intervals_cover_the_true_similarity_at_about_the_nominal_rate(bpmf_fit, planted):
    # Tolerance: coverage over all 40 x 39 (item, neighbour) pairs must lie in
    # [0.75, 0.98] for nominal 0.90.  The pairs are far from independent checks (one data
    # set, one set of true factors, the intervals of one item share its draws), so the
    # binomial sd (0.008) is no guide; over seeds 0..3 of this simulation the coverage was
    # 0.877, 0.849, 0.788, 0.909.  PMF with its fixed prior, misspecified for clustered
    # factors, covers 0.63 here and would fail; vacuous intervals fail the width check.
    _, truth = planted
    covered, widths = [], []
    for item in range(1, N_ITEMS + 1):
        ds = similar_items(bpmf_fit, item, n=N_ITEMS - 1)
        covered.append(_covered(ds, true_similarity(truth["mu"], item - 1)))
        widths.append(float(np.median(ds["upper"] - ds["lower"])))
    coverage = np.concatenate(covered).mean()
    assert 0.75 <= coverage <= 0.98, coverage
    assert np.median(widths) < 0.6, np.median(widths)  # measured 0.42
    # and at another level: nominal 0.5, measured 0.46
    half = np.concatenate([
        _covered(similar_items(bpmf_fit, item, n=N_ITEMS - 1, interval=0.5),
                 true_similarity(truth["mu"], item - 1)) for item in range(1, N_ITEMS + 1)])
    assert 0.35 <= half.mean() <= 0.65, half.mean()


def test_similar_users_finds_user_clusters_and_covers(bpmf_fit, planted):
    _, truth = planted
    clusters = truth["user_cluster"]
    per_cluster = N_USERS // USER_CLUSTERS - 1
    precision, covered = [], []
    for user in range(1, N_USERS + 1, 3):
        ds = similar_users(bpmf_fit, user, n=N_USERS - 1)
        assert ds.attrs["user"] == user and "across items" in ds.attrs["method"]
        top = np.asarray(ds["neighbour"].values[:per_cluster]) - 1
        precision.append(np.mean(clusters[top] == clusters[user - 1]))
        covered.append(_covered(ds, true_similarity(truth["mu"].T, user - 1)))
    assert np.mean(precision) >= 0.8  # chance 0.33; measured 0.88
    assert 0.75 <= np.concatenate(covered).mean() <= 0.98  # measured 0.85 (see above)


def test_items_with_few_ratings_get_wide_intervals(bpmf_fit):
    widths = {item: float(np.median(similar_items(bpmf_fit, item, n=N_ITEMS - 1)
                                    .pipe(lambda d: d["upper"] - d["lower"])))
              for item in (*RARE_ITEMS, 2, 3, 12, 13)}
    rare = min(widths[i] for i in RARE_ITEMS)
    common = max(widths[i] for i in (2, 3, 12, 13))
    assert rare > 2 * common, widths  # measured about 1.1-1.5 against 0.4
    ds = similar_items(bpmf_fit, 2, n=N_ITEMS - 1)
    assert (ds["n_ratings"].sel(neighbour=list(RARE_ITEMS)) == 3).all()


# ---------------------------------------------------------------------------------------------
# the numbers and the format
# ---------------------------------------------------------------------------------------------
def test_format_order_and_attrs(bpmf_fit):
    ds = similar_items(bpmf_fit, 5, n=6)
    assert ds["mean"].dims == ("neighbour",) and ds.sizes["neighbour"] == 6
    assert 5 not in ds["neighbour"].values.tolist()
    assert (np.diff(ds["mean"].values) <= 0).all()
    assert (ds["lower"] <= ds["mean"]).all() and (ds["mean"] <= ds["upper"]).all()
    assert ((ds["prob_top_n"] >= 0) & (ds["prob_top_n"] <= 1)).all()
    assert ds.attrs["item"] == 5 and ds.attrs["n"] == 6 and ds.attrs["n_draws"] == 600
    assert ds.attrs["point_fit"] == 0 and ds.attrs["note"] == ""
    assert ds.attrs["computed_by"] == "factor structure"
    assert ds.attrs["interval"].startswith("equal-tailed 90%")
    thinned = similar_items(bpmf_fit, 5, n=6, max_draws=100)
    assert thinned.attrs["n_draws"] == 100
    wider = similar_items(bpmf_fit, 5, n=6, interval=0.99)
    assert (wider["upper"] - wider["lower"] >= ds["upper"] - ds["lower"] - 1e-12).all()


def test_the_similarity_draws_are_the_correlation_of_mu_computed_by_hand(pmf_gibbs):
    post = pmf_gibbs["posterior"].to_dataset()
    U, V = post["user_factors"].values, post["item_factors"].values
    b, c, m = post["user_bias"].values, post["item_bias"].values, post["offset"].values
    draws = []
    for ch in range(U.shape[0]):
        for d in range(U.shape[1]):
            mu = m[ch, d] + b[ch, d][:, None] + c[ch, d][None, :] + U[ch, d] @ V[ch, d].T
            draws.append(true_similarity(mu, 6))  # item id 7
    draws = np.delete(np.array(draws), 6, axis=1)
    ds = similar_items(pmf_gibbs, 7, n=N_ITEMS - 1)
    codes = np.asarray(ds["neighbour"].values) - 1
    codes = np.where(codes > 6, codes - 1, codes)
    np.testing.assert_allclose(ds["mean"].values, draws.mean(0)[codes], atol=1e-12)
    np.testing.assert_allclose(ds["upper"].values, np.quantile(draws, 0.95, axis=0)[codes],
                               atol=1e-12)


@pytest.mark.parametrize("function,unit", [(similar_items, 3), (similar_users, 10)])
def test_fast_path_equals_the_model_graph(pmf_gibbs, function, unit):
    fast = function(pmf_gibbs, unit, n=15)
    generic = function(pmf_gibbs, unit, n=15, fast=False)
    assert fast.attrs["computed_by"] == "factor structure"
    assert generic.attrs["computed_by"] == "model graph"
    assert fast["neighbour"].values.tolist() == generic["neighbour"].values.tolist()
    for name in ("mean", "lower", "upper", "prob_top_n"):
        np.testing.assert_allclose(fast[name].values, generic[name].values, atol=1e-10)


def test_prob_top_n_by_hand():
    sims = np.array([[0.9, 0.8, 0.1, np.nan],
                     [0.2, 0.8, 0.9, 0.1],
                     [0.9, 0.1, 0.2, 0.8]])
    np.testing.assert_allclose(_prob_top_n(sims, 2), [2 / 3, 2 / 3, 1 / 3, 1 / 3])
    np.testing.assert_allclose(_prob_top_n(sims, 4), [1, 1, 1, 1])


@pytest.mark.filterwarnings("ignore:Found chain dimension:UserWarning")  # ArviZ, on restarts
def test_a_map_fit_gives_a_point_and_says_so(planted):
    ratings, truth = planted
    point = fit(build_model("pmf", ratings, n_factors=2), "map", random_seed=0,
                progressbar=False, restarts=2)
    ds = similar_items(point, 15, n=9)
    assert ds.attrs["point_fit"] == 1 and ds.attrs["n_draws"] == 1
    assert POINT_NOTE == "MAP: a point, no uncertainty"
    assert ds.attrs["note"].startswith(POINT_NOTE) and "2 chains" in ds.attrs["note"]
    assert ds["lower"].isnull().all() and ds["upper"].isnull().all()
    assert ds["prob_top_n"].isnull().all() and ds["mean"].notnull().all()
    top = np.asarray(ds["neighbour"].values) - 1
    assert np.mean(truth["item_cluster"][top] == truth["item_cluster"][14]) >= 0.7
    # the restarts' expected ratings are averaged (side by side in the fast path)
    generic = similar_items(point, 15, n=9, fast=False)
    np.testing.assert_allclose(ds["mean"].values, generic["mean"].values, atol=1e-10)
    if importlib.util.find_spec("networkx") is not None:  # the plot says it too
        from bayesrec.diagnostics import plot_item_neighbourhood

        assert POINT_NOTE in plot_item_neighbourhood(ds).axes[0].get_title()


def test_mmsbm_map_restarts_are_averaged_into_one_point():
    ratings, _ = simulate_ratings(60, 30, 900, n_factors=2, seed=3)
    model = build_model("mmsbm", ratings, n_user_groups=3, n_item_groups=3)
    point = fit(model, "map", random_seed=0, progressbar=False, restarts=2, maxiter=60)
    ds = similar_items(point, 4, n=5)
    assert ds.attrs["computed_by"] == "model graph"
    assert ds.attrs["note"].startswith(POINT_NOTE) and "2 chains" in ds.attrs["note"]
    assert ds["mean"].notnull().all() and (np.abs(ds["mean"]) <= 1).all()
    users = similar_users(point, 7, n=5)
    assert users.sizes["neighbour"] == 5 and users["lower"].isnull().all()


@pytest.mark.agreement
@pytest.mark.parametrize("name,options", [
    ("bpmf", {"n_factors": 2}),
    ("mpma", {"n_factors": 2, "n_user_clusters": 2, "n_item_clusters": 2}),
])
def test_other_factor_models(planted, bpmf_fit, name, options):
    # BPMF (non-centred, factors a deterministic): fast path against the model graph;
    # MPMA (no factor structure): the model graph, from a MAP point
    if name == "bpmf":
        fast = similar_items(bpmf_fit, 8, n=10, max_draws=60)
        generic = similar_items(bpmf_fit, 8, n=10, max_draws=60, fast=False)
        np.testing.assert_allclose(fast["mean"].values, generic["mean"].values, atol=1e-10)
        return
    ratings, truth = planted
    point = fit(build_model(name, ratings, **options), "map", random_seed=0,
                progressbar=False, maxiter=300)
    ds = similar_items(point, 8, n=9)
    assert ds.attrs["computed_by"] == "model graph" and ds.attrs["point_fit"] == 1
    top = np.asarray(ds["neighbour"].values) - 1
    assert np.mean(truth["item_cluster"][top] == truth["item_cluster"][7]) >= 0.6


# ---------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------
def test_unknown_ids_raise(pmf_gibbs):
    with pytest.raises(UnknownIdError, match=r"unknown item id\(s\) \[999\]"):
        similar_items(pmf_gibbs, 999)
    with pytest.raises(UnknownIdError, match=r"unknown user id\(s\) \[0\]"):
        similar_users(pmf_gibbs, 0)
    with pytest.raises(UnknownIdError, match="'3'"):  # the string "3" is not the item 3
        similar_items(pmf_gibbs, "3")
    with pytest.raises(InputError, match="give one item id"):
        similar_items(pmf_gibbs, [1, 2])
    with pytest.raises(InputError, match="interval must be a probability"):
        similar_items(pmf_gibbs, 1, interval=90)
    with pytest.raises(InputError, match="n must be a positive integer"):
        similar_items(pmf_gibbs, 1, n=0)
    with pytest.raises(InputError, match="max_draws must be"):
        similar_items(pmf_gibbs, 1, max_draws=0)


# ---------------------------------------------------------------------------------------------
# the plot
# ---------------------------------------------------------------------------------------------
def test_plot_item_neighbourhood_draws(pmf_gibbs, bpmf_fit):
    pytest.importorskip("networkx")
    from matplotlib.figure import Figure

    from bayesrec.diagnostics import neighbourhood_certainty, plot_item_neighbourhood

    titles = {item: f"Film {item}" for item in range(1, N_ITEMS + 1)}
    fig = plot_item_neighbourhood(pmf_gibbs, 3, n=5, titles=titles)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    texts = {t.get_text() for t in ax.texts}
    assert "Film 3" in texts and sum(t.startswith("Film ") for t in texts) == 6
    assert "Film 3" in ax.get_title()
    # from the Dataset, on given axes; ids label the nodes without titles
    ds = similar_items(bpmf_fit, 3, n=4)
    fig2 = Figure()
    ax2 = fig2.add_subplot()
    assert plot_item_neighbourhood(ds, ax=ax2) is fig2
    assert {"3", *map(str, ds["neighbour"].values.tolist())} <= {t.get_text() for t in ax2.texts}
    certainty = neighbourhood_certainty(ds)
    assert ((certainty >= 0) & (certainty <= 1)).all()
    fig2.canvas.draw()  # Agg renders it


def test_plot_labels_from_item_info(pmf_gibbs):
    pytest.importorskip("networkx")
    import pandas as pd

    from bayesrec.diagnostics import plot_item_neighbourhood

    info = pd.DataFrame({"title": [f"Title {i}" for i in range(1, N_ITEMS + 1)]},
                        index=pd.Index(range(1, N_ITEMS + 1), name="item"))
    base = Ratings.from_arrays([1, 2], [1, 2], [3.0, 4.0], item_info=info)
    fig = plot_item_neighbourhood(pmf_gibbs, 4, n=3, titles=base)
    assert "Title 4" in {t.get_text() for t in fig.axes[0].texts}


def test_plot_without_networkx_says_how_to_install_it(monkeypatch, pmf_gibbs):
    from bayesrec.diagnostics import plot_item_neighbourhood

    monkeypatch.setitem(sys.modules, "networkx", None)  # import networkx -> ImportError
    with pytest.raises(ImportError, match=r"pip install 'bayesrec\[graph\]'"):
        plot_item_neighbourhood(pmf_gibbs, 3)
