"""MPMA by the paper's staged procedure: ``fit(build_model("mpma", train), "staged")``.

Components fitted separately (global on all ratings, local ones on their clusters'
ratings, centred on the global fit), then the weights and noise scales by EM on
out-of-fold predictions (:mod:`bayesrec.models.mpma_staged`, called through the
generic :mod:`bayesrec.inference.staged`).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from bayesrec import InputError
from bayesrec.cli import main
from bayesrec.data import Ratings
from bayesrec.data.simulate import simulate_mpma
from bayesrec.data.splits import kfold
from bayesrec.diagnostics.convergence import convergence_summary
from bayesrec.inference import fit, load_fit, method_defaults, predict, recommend, save_fit
from bayesrec.metrics import score
from bayesrec.models import build_model, get_spec
from bayesrec.models.mpma_staged import (
    StagedData,
    fold_labels,
    mixture_em,
    out_of_fold_means,
)

SEED = 5
#: penalties for the simulations below (noise variance ~ factor variance): the method's
#: defaults are MovieLens's
SIM_OPTIONS = {"factor_penalty": 5.0, "local_penalty": 10.0}


def _split(ratings, truth):
    split = kfold(ratings, k=5, seed=0)[0]
    clusters = {"user_clusters": truth["user_clusters"].tolist(),
                "item_clusters": truth["item_clusters"].tolist()}
    return split.train, split.test, clusters


@pytest.fixture(scope="module")
def small():
    """A small mixture: 40 users x 30 items, 700 ratings, K = 2, true clusters."""
    ratings, truth = simulate_mpma(40, 30, 700, n_factors=2, local_sd=0.7, factor_sd=1.0,
                                   sigmas=(0.3, 0.5, 0.7), seed=2)
    train, test, clusters = _split(ratings, truth)
    model = build_model("mpma", train, n_factors=2, n_user_clusters=2, n_item_clusters=2,
                        **clusters)
    return model, train, test


@pytest.fixture(scope="module")
def small_fit(small):
    model, _, _ = small
    return fit(model, "staged", random_seed=SEED, progressbar=False, **SIM_OPTIONS)


@pytest.fixture(scope="module")
def mixture():
    """Global + local structure (local factors = global + deviations), 100 x 80, 5,000
    ratings, weights 0.5 / 0.3 / 0.2, true clusters."""
    ratings, truth = simulate_mpma(100, 80, 5000, n_factors=2, weights=(0.5, 0.3, 0.2),
                                   sigmas=(0.3, 0.5, 0.7), factor_sd=1.0, local_sd=0.7, seed=1)
    train, test, clusters = _split(ratings, truth)
    return train, test, clusters


def test_staged_is_a_method_of_mpma_only(small):
    assert "staged" in get_spec("mpma").methods
    assert "staged" not in get_spec("pmf").methods
    model, train, _ = small
    with pytest.raises(InputError, match="unknown method 'staged' for model 'pmf'"):
        fit(build_model("pmf", train, n_factors=2), "staged")
    with pytest.raises(InputError, match="valid options are"):
        fit(model, "staged", factor_penality=3.0)
    with pytest.raises(InputError, match="folds must be an integer >= 2"):
        fit(model, "staged", folds=1)
    assert method_defaults("staged")["folds"] == 3


def test_fit_is_a_point_posterior_of_every_free_variable(small, small_fit):
    model, _, _ = small
    post = small_fit["posterior"].to_dataset()
    assert {rv.name for rv in model.free_RVs} <= set(post.data_vars)
    assert post.sizes["chain"] == 1 and post.sizes["draw"] == 1
    assert post["user_local_item_factors"].dims == ("chain", "draw", "user_cluster", "item",
                                                    "factor")
    weights = post["weights"].values.ravel()
    assert np.isclose(weights.sum(), 1.0) and (weights > 0).all()
    assert (post["sigma"].values > 0).all()
    report = small_fit["staged"].to_dataset()
    np.testing.assert_allclose(report["weights"].values, weights)
    assert int(report["fold_size"].sum()) == small[1].n_ratings
    assert small_fit.attrs["method"] == "staged"
    assert json.loads(small_fit.attrs["method_options"])["local_penalty"] == 10.0


@pytest.mark.parametrize("options", [SIM_OPTIONS, {**SIM_OPTIONS, "components": "gibbs",
                                                   "draws": 5, "tune": 3}],
                         ids=["map", "gibbs"])
def test_same_seed_same_fit_other_seed_other_fit(small, options):
    model, _, _ = small
    first = fit(model, "staged", random_seed=SEED, progressbar=False, **options)
    again = fit(model, "staged", random_seed=SEED, progressbar=False, **options)
    for name, var in first["posterior"].to_dataset().data_vars.items():
        np.testing.assert_array_equal(var.values, again["posterior"][name].values, name)
    other = fit(model, "staged", random_seed=SEED + 1, progressbar=False, **options)
    for name in ("weights", "user_factors"):
        assert not np.array_equal(other["posterior"][name].values,
                                  first["posterior"][name].values)


def test_predict_save_load_round_trip(small, small_fit, tmp_path):
    _, train, test = small
    pred = predict(small_fit, pairs=test, random_seed=1)
    for key in ("mean", "sd"):
        assert np.isfinite(pred[key].values).all()
    path = tmp_path / "staged.nc"
    save_fit(small_fit, path)
    loaded = load_fit(path)
    again = predict(loaded, pairs=test, random_seed=1)
    np.testing.assert_allclose(again["mean"].values, pred["mean"].values)
    np.testing.assert_allclose(again["sd"].values, pred["sd"].values)
    assert "staged" in loaded.children
    top = recommend(loaded, users=[train.users[0]], n=3, random_seed=0)
    assert top.sizes["rank"] == 3


def test_convergence_summary_reports_the_stages(small_fit):
    report = convergence_summary(small_fit, n_pairs=10)
    assert report.method == "staged"
    assert report.sampler["em_converged"] is True
    np.testing.assert_allclose(report.sampler["weights"],
                               small_fit["posterior"]["weights"].values.ravel())
    assert not report.flags


def test_prediction_is_the_mixture_of_the_components(small, small_fit):
    """The mean prediction is sum_k pi_k mu_k of the components at the fitted point."""
    model, _, test = small
    post = small_fit["posterior"].to_dataset().isel(chain=0, draw=0)
    u = np.asarray(test.user)
    i = np.asarray(test.item)
    base = float(post["offset"]) + post["user_bias"].values[u] + post["item_bias"].values[i]
    U, V = post["user_factors"].values, post["item_factors"].values
    uc = np.asarray(model["user_cluster_idx"].get_value())
    ic = np.asarray(model["item_cluster_idx"].get_value())
    means = np.stack([
        base + (U[u] * V[i]).sum(1),
        base + (post["user_local_user_factors"].values[u]
                * post["user_local_item_factors"].values[uc[u], i]).sum(1),
        base + (post["item_local_user_factors"].values[ic[i], u]
                * post["item_local_item_factors"].values[i]).sum(1)], axis=1)
    expected = means @ post["weights"].values
    lo, hi = test.scale.low, test.scale.high
    pred = predict(small_fit, pairs=test, random_seed=1)
    inside = (expected > lo + 1) & (expected < hi - 1)  # where clipping draws does not matter
    np.testing.assert_allclose(pred["mean"].values[inside], expected[inside], atol=0.15)


def test_out_of_fold_predictions_ignore_their_own_ratings():
    """Each rating's out-of-fold component means come from fits without its fold: moving
    the ratings of one fold leaves that fold's predictions unchanged (and changes the
    others').  In-sample predictions would fail this."""
    ratings, truth = simulate_mpma(30, 25, 400, n_factors=2, local_sd=0.5, seed=4)
    data = StagedData(user=ratings.user, item=ratings.item, rating=ratings.rating.copy(),
                      n_users=30, n_items=25, user_clusters=truth["user_clusters"],
                      item_clusters=truth["item_clusters"], n_user_clusters=2,
                      n_item_clusters=2, n_factors=2,
                      components=("global", "user_local", "item_local"))
    opts = {**method_defaults("staged"), **SIM_OPTIONS}
    labels = fold_labels(len(data.rating), 3, seed=0)
    before = out_of_fold_means(data, opts, labels, seed=1)
    moved = data.rating.copy()
    moved[labels == 0] += np.random.default_rng(0).normal(0, 2.0, (labels == 0).sum())
    after = out_of_fold_means(StagedData(**{**data.__dict__, "rating": moved}), opts, labels,
                              seed=1)
    np.testing.assert_array_equal(after[labels == 0], before[labels == 0])
    assert np.abs(after[labels != 0] - before[labels != 0]).max() > 1e-3


def test_mixture_em_recovers_weights_and_scales_given_the_means():
    rng = np.random.default_rng(0)
    n = 20_000
    means = rng.normal(0, 2, (n, 3))
    z = rng.choice(3, n, p=[0.5, 0.3, 0.2])
    sigmas = np.array([0.3, 0.6, 1.0])
    r = means[np.arange(n), z] + rng.normal(0, 1, n) * sigmas[z]
    weights, sig, report = mixture_em(r, means, noise_scale=2.0, maxiter=2000, tol=1e-12)
    np.testing.assert_allclose(weights, [0.5, 0.3, 0.2], atol=0.02)
    np.testing.assert_allclose(sig, sigmas, rtol=0.05)
    assert report["converged"]


def test_out_of_fold_weights_are_right_where_in_sample_ones_are_not(mixture):
    """Weights in the right direction (the global component, truly the largest, largest);
    in sample, the flexible local components take the global component's weight."""
    train, _, clusters = mixture
    model = build_model("mpma", train, n_factors=2, n_user_clusters=2, n_item_clusters=2,
                        **clusters)
    staged = fit(model, "staged", random_seed=SEED, progressbar=False, **SIM_OPTIONS)
    report = staged["staged"].to_dataset()
    weights = report["weights"].values
    assert weights[0] > max(weights[1:]), weights
    assert weights[0] > 0.4
    assert report["in_sample_weights"].values[0] < weights[0] - 0.2


@pytest.mark.agreement
def test_staged_beats_joint_map_and_pmf_on_held_out_ratings(mixture):
    """Held-out RMSE on a global + local mixture (about 90 s: the two MAP fits)."""
    train, test, clusters = mixture
    model = build_model("mpma", train, n_factors=2, n_user_clusters=2, n_item_clusters=2,
                        **clusters)
    staged = fit(model, "staged", random_seed=SEED, progressbar=False, **SIM_OPTIONS)
    joint = fit(model, "map", random_seed=SEED, progressbar=False, maxiter=400)
    pmf = fit(build_model("pmf", train, n_factors=2), "map", random_seed=SEED,
              progressbar=False)
    rmse = {name: score(predict(f, pairs=test, random_seed=0), test)["rmse"]
            for name, f in (("staged", staged), ("joint", joint), ("pmf", pmf))}
    assert rmse["staged"] < rmse["joint"] - 0.01, rmse
    assert rmse["staged"] < rmse["pmf"] - 0.01, rmse


def test_api_and_cli_give_the_same_fit(tmp_path):
    ratings, _ = simulate_mpma(40, 30, 700, n_factors=2, local_sd=0.7, seed=6)
    path = tmp_path / "ratings.csv"
    ratings.to_dataframe().to_csv(path, index=False)
    record_path = tmp_path / "record.json"
    assert main(["evaluate", "--model", "mpma", "--method", "staged", "--dataset", str(path),
                 "--kfold", "2", "--fast", "--seed", str(SEED), "--json",
                 str(record_path)]) == 0
    first = json.loads(record_path.read_text())["folds"][0]
    split = kfold(Ratings.from_csv(path), k=2, seed=SEED)[0]
    spec = get_spec("mpma")
    model = build_model("mpma", split.train, **spec.fast.options)
    api = score(predict(fit(model, "staged", random_seed=SEED), pairs=split.test), split.test)
    for metric in ("rmse", "mae", "coverage_90"):
        assert api[metric] == first[metric], metric


# ---------------------------------------------------------------------------------------------
# components="gibbs": the Bayesian staged fit (components sampled by block Gibbs)
# ---------------------------------------------------------------------------------------------
GIBBS = {**SIM_OPTIONS, "components": "gibbs", "draws": 60, "tune": 30}


@pytest.fixture(scope="module")
def mixture_fits(mixture):
    """The point and the Bayesian staged fits of the planted mixture."""
    train, _, clusters = mixture
    model = build_model("mpma", train, n_factors=2, n_user_clusters=2, n_item_clusters=2,
                        **clusters)
    point = fit(model, "staged", random_seed=SEED, progressbar=False, **SIM_OPTIONS)
    sampled = fit(model, "staged", random_seed=SEED, progressbar=False, **GIBBS)
    return model, point, sampled


def test_gibbs_staged_fit_is_one_chain_of_draws_of_every_component(mixture_fits):
    model, _, sampled = mixture_fits
    post = sampled["posterior"].to_dataset()
    assert {rv.name for rv in model.free_RVs} <= set(post.data_vars)
    assert post.sizes["chain"] == 1 and post.sizes["draw"] == GIBBS["draws"]
    assert post["item_local_user_factors"].dims == ("chain", "draw", "item_cluster", "user",
                                                    "factor")
    # the components vary over draws; the EM's weights and noise sds do not
    assert float(post["user_factors"].std("draw").mean()) > 0.01
    assert float(post["weights"].std("draw").max()) < 1e-12
    report = sampled["staged"].to_dataset()
    assert int(report["draws"]) == GIBBS["draws"]
    # the noise sds are the EM's less the posterior sd of the out-of-fold means
    assert (report["sigma"].values < report["em_sigma"].values).all()
    assert (report["out_of_fold_posterior_sd"].values > 0).all()
    assert json.loads(sampled.attrs["method_options"])["components"] == "gibbs"


def test_gibbs_staged_predicts_as_well_as_the_point_fit_with_calibrated_intervals(
        mixture, mixture_fits):
    """Held-out RMSE within noise of the point staged fit's; 90 % intervals near nominal."""
    _, test, _ = mixture
    _, point, sampled = mixture_fits
    scores = {name: score(predict(f, pairs=test, random_seed=0), test)
              for name, f in (("point", point), ("gibbs", sampled))}
    assert scores["gibbs"]["rmse"] < scores["point"]["rmse"] + 0.02, scores
    assert 0.86 <= scores["gibbs"]["coverage_90"] <= 0.94, scores["gibbs"]
    assert 0.45 <= scores["gibbs"]["coverage_50"] <= 0.55, scores["gibbs"]


def test_gibbs_staged_predicts_saves_loads_and_summarises(small, tmp_path):
    model, train, test = small
    dt = fit(model, "staged", random_seed=SEED, progressbar=False,
             **{**GIBBS, "draws": 20, "tune": 10})
    pred = predict(dt, pairs=test, random_seed=1)
    assert np.isfinite(pred["mean"].values).all() and (pred["sd"].values > 0).all()
    path = tmp_path / "staged_gibbs.nc"
    save_fit(dt, path)
    loaded = load_fit(path)
    again = predict(loaded, pairs=test, random_seed=1)
    np.testing.assert_allclose(again["mean"].values, pred["mean"].values)
    assert recommend(loaded, users=[train.users[0]], n=3, random_seed=0).sizes["rank"] == 3
    report = convergence_summary(loaded, n_pairs=10)
    assert report.method == "staged" and report.n_draws == 20
    assert report.sampler["em_converged"] is True


def test_gibbs_rows_at_zero_noise_are_the_ridge_solution():
    """The row kernel given to the hook, with eps = 0, solves the ridge problem of the
    point fit (per-row prior means, per-column penalties)."""
    from bayesrec.inference.staged import gaussian_rows
    from bayesrec.models.mpma_staged import _grouping, _ridge_rows

    rng = np.random.default_rng(0)
    n, groups, dim = 300, 7, 3
    group = rng.integers(0, groups - 1, n)  # the last group has no ratings: its prior mean
    x, y = rng.normal(size=(n, dim)), rng.normal(size=n)
    penalty, prior = np.array([2.0, 5.0, 0.5]), rng.normal(size=(groups, dim))
    mean = gaussian_rows(group, groups, x, y, penalty, prior, 3.0, np.zeros((groups, dim)))
    np.testing.assert_allclose(mean, _ridge_rows(_grouping(group, groups), x, y, penalty, prior),
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(mean[-1], prior[-1])


def test_staged_options_for_gibbs_are_checked(small):
    model, _, _ = small
    with pytest.raises(InputError, match="components must be one of"):
        fit(model, "staged", components="nuts")
    defaults = method_defaults("staged")
    assert defaults["components"] == "map" and defaults["draws"] == 100
