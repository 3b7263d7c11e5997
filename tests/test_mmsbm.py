"""The MMSBM factory, its EM MAP, predictions and interpretation helpers, against known truth.

Data come from the model's own generative process (:func:`simulate_mmsbm`, with
known memberships and rating patterns).  Group labels are exchangeable, so
recovery is checked after matching labels (Hungarian matching on memberships)
and through label-free quantities: predictive distributions and log-likelihoods.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from matplotlib.figure import Figure
from pymc.model.transform.conditioning import remove_value_transforms
from pymc.pytensorf import extract_obs_data
from pytensor.compile.mode import Mode

from bayesrec import InputError, Ratings
from bayesrec.cli import main
from bayesrec.data.scale import RatingScale
from bayesrec.data.simulate import simulate_mmsbm
from bayesrec.data.splits import holdout
from bayesrec.diagnostics.mmsbm import (
    align_groups,
    best_chain,
    level_probabilities_np,
    match_groups,
    memberships,
    rating_patterns,
)
from bayesrec.diagnostics.plots_mmsbm import plot_mmsbm_rating_patterns
from bayesrec.inference import fit, predict
from bayesrec.inference.em import gradient_em_step, run_em
from bayesrec.metrics import score
from bayesrec.models import build_model, get_spec
from bayesrec.models._mmsbm_kernels import expected_counts
from bayesrec.models.mmsbm import mmsbm
from bayesrec.recommenders import make_recommender

FLAT = {"theta_concentration": 1.0, "eta_concentration": 1.0, "p_concentration": 1.0}


@pytest.fixture(scope="module")
def simulated():
    """150 users x 200 items, 9000 ratings on 1..5, K = L = 3 nearly pure groups."""
    return simulate_mmsbm(150, 200, 9000, n_user_groups=3, n_item_groups=3,
                          membership_concentration=0.15, seed=2)


@pytest.fixture(scope="module")
def split(simulated):
    ratings, truth = simulated
    parts = holdout(ratings, 0.2, seed=0)
    return parts.train, parts.test, truth


@pytest.fixture(scope="module")
def model(split):
    return build_model("mmsbm", split[0], n_user_groups=3, n_item_groups=3)


@pytest.fixture(scope="module")
def map_fit(model):
    return fit(model, "map", random_seed=0, restarts=4, maxiter=400)


@pytest.fixture(scope="module")
def prediction(map_fit, model, split):
    return predict(map_fit, pairs=split[1], model=model, random_seed=0)


def _tiny():
    """Six ratings on a 1..3 scale, with random parameters for K = 2, L = 3."""
    ratings = Ratings.from_arrays([0, 0, 1, 2, 2, 2], [0, 1, 1, 0, 2, 3], [1, 3, 2, 3, 1, 2],
                                  scale=[1, 2, 3])
    rng = np.random.default_rng(4)
    point = {"theta": rng.dirichlet(np.ones(2), 3), "eta": rng.dirichlet(np.ones(3), 4),
             "p": rng.dirichlet(np.ones(3), (2, 3))}
    return ratings, point


def _direct_loglik(ratings, point):
    """sum_n log sum_k sum_l theta[u,k] eta[i,l] p[k,l,r], by explicit loops."""
    theta, eta, p = point["theta"], point["eta"], point["p"]
    total = 0.0
    for u, i, r in zip(ratings.user, ratings.item, ratings.level_codes, strict=True):
        total += np.log(sum(theta[u, k] * eta[i, l] * p[k, l, r]
                            for k in range(p.shape[0]) for l in range(p.shape[1])))  # noqa: E741
    return total


# ---------------------------------------------------------------------------------------------
# the factory
# ---------------------------------------------------------------------------------------------
def test_model_variables_dims_and_labelled_coords(model, split):
    train = split[0]
    dims = model.named_vars_to_dims
    assert dims["theta"] == ("user", "user_group")
    assert dims["eta"] == ("item", "item_group")
    assert dims["p"] == ("user_group", "item_group", "rating_level")
    assert dims["prob"] == ("obs", "rating_level") and dims["mu"] == ("obs",)
    assert dims["rating"] == ("obs",)
    assert list(model.coords["user_group"]) == [0, 1, 2]
    assert list(model.coords["rating_level"]) == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert list(model.coords["user"]) == list(train.users)
    observed = extract_obs_data(model.rvs_to_values[model["rating"]])
    np.testing.assert_array_equal(observed, train.level_codes)
    assert get_spec("mmsbm").predicts == "categorical"


def test_bad_input_raises_with_a_message(split):
    train = split[0]
    continuous = Ratings.from_arrays([0, 1], [0, 1], [1.5, 2.25], scale=RatingScale.interval(1, 5))
    with pytest.raises(InputError, match="discrete rating scale"):
        mmsbm(continuous)
    with pytest.raises(InputError, match="unknown prior"):
        mmsbm(train, priors={"alpha": 2.0})
    with pytest.raises(InputError, match="n_user_groups must be a positive integer"):
        mmsbm(train, n_user_groups=0)
    with pytest.raises(InputError, match="concentrations >= 1"):
        fit(mmsbm(train, n_user_groups=2, n_item_groups=2, priors={"p_concentration": 0.5}),
            "map", random_seed=0, maxiter=2)


def test_loglik_matches_a_direct_computation_on_a_tiny_case():
    ratings, point = _tiny()
    model = mmsbm(ratings, n_user_groups=2, n_item_groups=3, priors=FLAT)
    direct = _direct_loglik(ratings, point)
    plain = remove_value_transforms(model)  # the simplexes themselves as inputs
    per_rating = plain.compile_logp(vars=[plain["rating"]], sum=False)(point)
    assert np.sum(per_rating) == pytest.approx(direct, rel=1e-12)
    loglik, *_ = expected_counts(ratings.user, ratings.item, ratings.level_codes,
                                 point["theta"], point["eta"], point["p"])
    assert loglik == pytest.approx(direct, rel=1e-12)


def test_em_counts_are_x_times_the_gradient_of_the_models_loglik():
    # the Numba E-step against PyTensor's gradient of the model's own likelihood graph
    ratings, point = _tiny()
    model = mmsbm(ratings, n_user_groups=2, n_item_groups=3)
    from bayesrec.inference.em import em_step_of

    fast = em_step_of(model).expected_counts(model, point)
    slow = gradient_em_step(model, mode=Mode(linker="py", optimizer="fast_compile")
                            ).expected_counts(model, point)
    assert fast[0] == pytest.approx(slow[0], rel=1e-12)
    for name in ("theta", "eta", "p"):
        np.testing.assert_allclose(fast[1][name], slow[1][name], rtol=1e-10, atol=1e-14)
    # each rating spreads one unit of responsibility over each simplex it touches
    assert fast[1]["theta"].sum() == pytest.approx(len(ratings))
    np.testing.assert_allclose(fast[1]["theta"].sum(1), np.bincount(ratings.user))


def test_em_raises_the_models_log_posterior_and_reports_it():
    ratings, start = _tiny()
    model = mmsbm(ratings, n_user_groups=2, n_item_groups=3,
                  priors={"theta_concentration": 1.5, "eta_concentration": 1.2,
                          "p_concentration": 2.0})
    logp = remove_value_transforms(model).compile_logp(jacobian=False)
    funs = []
    for maxiter in (1, 2, 5, 20):
        point, report = run_em(model, start, maxiter=maxiter, tol=1e-14)
        # the reported objective is PyMC's log density (find_MAP's objective), constants included
        assert report["fun"] == pytest.approx(-logp(point), rel=1e-10)
        funs.append(report["fun"])
    assert all(b <= a + 1e-9 for a, b in zip(funs, funs[1:], strict=False))


# ---------------------------------------------------------------------------------------------
# MAP: recovery, restarts, reproducibility
# ---------------------------------------------------------------------------------------------
def test_map_recovers_simulated_parameters_up_to_a_permutation(simulated):
    ratings, truth = simulated
    model = build_model("mmsbm", ratings, n_user_groups=3, n_item_groups=3)
    dt = fit(model, "map", random_seed=0, restarts=4, maxiter=500, combine="best")
    post = dt["posterior"].to_dataset().isel(chain=0, draw=0)
    theta, eta, p = post["theta"].values, post["eta"].values, post["p"].values
    perm_k, perm_l = match_groups(theta, truth["theta"]), match_groups(eta, truth["eta"])
    assert np.abs(theta[:, perm_k] - truth["theta"]).mean() < 0.12
    assert np.abs(eta[:, perm_l] - truth["eta"]).mean() < 0.1
    assert np.abs(p[perm_k][:, perm_l] - truth["p"]).mean() < 0.06
    # label-free: predictive distributions of random pairs against the true ones
    rng = np.random.default_rng(0)
    user, item = rng.integers(0, 150, 4000), rng.integers(0, 200, 4000)
    true_prob = level_probabilities_np(truth["theta"], truth["eta"], truth["p"], user, item)
    fitted = level_probabilities_np(theta, eta, p, user, item)
    marginal = np.bincount(ratings.level_codes, minlength=5) / len(ratings)
    tv = 0.5 * np.abs(fitted - true_prob).sum(1).mean()
    assert tv < 0.12 and tv < 0.3 * 0.5 * np.abs(marginal - true_prob).sum(1).mean()


@pytest.mark.filterwarnings("ignore:Found chain dimension")
def test_restarts_are_chains_and_best_is_chosen_by_training_loglik(model, map_fit):
    report = map_fit["optimizer_result"].to_dataset()
    assert report.attrs["optimizer"] == "em"
    assert map_fit["posterior"].sizes["chain"] == 4 and report["kept"].values.all()
    # the EM's log-likelihood is the model's (PyMC computes it independently here)
    from bayesrec.inference.map import training_loglik

    np.testing.assert_allclose(training_loglik(model, map_fit["posterior"].to_dataset()),
                               report["log_likelihood"].values, rtol=1e-10)
    best = fit(model, "map", random_seed=0, restarts=4, maxiter=400, combine="best")
    assert best["posterior"].sizes["chain"] == 1
    assert int(np.flatnonzero(best["optimizer_result"]["kept"].values)[0]) == int(
        np.argmax(report["log_likelihood"].values))
    assert best_chain(map_fit) == int(np.argmax(report["log_likelihood"].values))


def test_same_seed_same_numbers(model, map_fit):
    again = fit(model, "map", random_seed=0, restarts=4, maxiter=400)
    for name in ("theta", "eta", "p"):
        np.testing.assert_array_equal(again["posterior"][name].values,
                                      map_fit["posterior"][name].values)


# ---------------------------------------------------------------------------------------------
# predictions
# ---------------------------------------------------------------------------------------------
def test_predictive_distributions_sum_to_one_and_give_the_point_predictions(
        prediction, map_fit, split):
    train, test, _ = split
    prob = prediction["prob"]
    assert prob.dims == ("pair", "rating_level")
    np.testing.assert_allclose(prob.sum("rating_level"), 1.0, atol=1e-12)
    levels = np.asarray(train.scale.levels)
    np.testing.assert_array_equal(prediction["mode"], levels[prob.values.argmax(1)])
    np.testing.assert_allclose(prediction["mean"], prob.values @ levels, atol=1e-9)
    cdf = np.cumsum(prob.values, axis=1)
    np.testing.assert_array_equal(prediction["median"], levels[(cdf < 0.5).sum(1)])
    # the average over restarts of each restart's distribution, as in the paper
    post = map_fit["posterior"].to_dataset()
    per_chain = [level_probabilities_np(post["theta"].values[c, 0], post["eta"].values[c, 0],
                                        post["p"].values[c, 0], test.user, test.item)
                 for c in range(post.sizes["chain"])]
    np.testing.assert_allclose(prob.values, np.mean(per_chain, axis=0), atol=1e-12)
    # close to the oracle that knows the true parameters
    truth = split[2]
    oracle = level_probabilities_np(truth["theta"], truth["eta"], truth["p"], test.user,
                                    test.item)
    scores = score(prediction, test)
    assert scores["accuracy"] > np.mean(levels[oracle.argmax(1)] == test.rating) - 0.03
    assert scores["rmse"] < np.sqrt(np.mean((oracle @ levels - test.rating) ** 2)) + 0.05


def test_predictive_rating_draws_follow_the_level_probabilities(map_fit, model, split):
    """The rating draws (inverse CDF) have the law ``prob``: per level, pooled over pairs,
    and per pair on the pairs' most probable level (z-scores of binomial counts)."""
    test = split[1]
    pred = predict(map_fit, pairs=test, model=model, random_seed=3, point_draws=400,
                   keep_draws=True)
    prob = pred["prob"].values  # (pair, level): the average over restarts
    levels = np.asarray(test.scale.levels)
    draws = pred["rating"].values.reshape(-1, pred.sizes["pair"])  # every restart's draws
    n = draws.shape[0]
    counts = np.stack([(draws == lv).sum(0) for lv in levels], axis=-1)  # (pair, level)
    assert counts.sum(-1).tolist() == [n] * len(test)  # every draw is a level of the scale
    z_pooled = (counts.sum(0) - n * prob.sum(0)) / np.sqrt(n * (prob * (1 - prob)).sum(0))
    assert np.all(np.abs(z_pooled) < 4), z_pooled
    top = prob.argmax(1)
    p_top = prob[np.arange(len(top)), top]
    z_pair = (counts[np.arange(len(top)), top] - n * p_top) / np.sqrt(n * p_top * (1 - p_top))
    assert abs(z_pair.mean()) * np.sqrt(len(z_pair)) < 4  # pooled over pairs
    assert np.mean(np.abs(z_pair) > 3) < 0.01  # no pair far off


def test_half_star_scale_works_end_to_end():
    ratings, _ = simulate_mmsbm(100, 120, 5000, n_user_groups=3, n_item_groups=3,
                                scale=RatingScale.stars(), membership_concentration=0.15,
                                seed=6)
    assert ratings.scale.n_levels == 10
    parts = holdout(ratings, 0.2, seed=1)
    rec = make_recommender("mmsbm", fast=True, random_seed=0).fit(parts.train)
    pred = rec.predict_ratings(parts.test)
    levels = np.arange(1, 11) / 2
    np.testing.assert_array_equal(pred["rating_level"], levels)
    assert set(np.unique(pred["mode"].values)) <= set(levels)
    assert set(np.unique(pred["median"].values)) <= set(levels)
    np.testing.assert_allclose(pred["prob"].sum("rating_level"), 1.0, atol=1e-12)
    scores = score(pred, parts.test)
    marginal_mode = levels[np.bincount(parts.train.level_codes).argmax()]
    assert scores["accuracy"] > np.mean(parts.test.rating == marginal_mode) + 0.1


# ---------------------------------------------------------------------------------------------
# agreement with the mmsbm package's EM
# ---------------------------------------------------------------------------------------------
def test_map_agrees_with_the_mmsbm_package_em_in_training_loglik():
    mmsbm_package = pytest.importorskip("mmsbm")
    ratings, _ = simulate_mmsbm(60, 80, 2500, n_user_groups=2, n_item_groups=2, seed=5)
    frame = pd.DataFrame({"users": ratings.user_ids, "items": ratings.item_ids,
                          "ratings": ratings.rating.astype(int)})
    runs = []
    for seed in range(4):
        em = mmsbm_package.MMSBM(2, 2, iterations=300, sampling=1, seed=seed, backend="numpy")
        em._show_progress = False
        em.fit(frame, silent=True)
        runs.append(em)
    package_best = max(em.results[0]["likelihood"] for em in runs)
    # with flat priors the MAP is the maximum-likelihood estimate the package's EM seeks
    model = build_model("mmsbm", ratings, n_user_groups=2, n_item_groups=2, priors=FLAT)
    ours = fit(model, "map", random_seed=0, restarts=4, maxiter=300)
    ours_best = ours["optimizer_result"]["log_likelihood"].values.max()
    # Both best runs sit in the same (top) basin: on this case distinct local optima differ
    # by >= 0.08 nats, while 300 iterations leave each within ~0.01 nats of its limit.  So
    # 0.05 nats in all (2e-5 per rating) separates "same optimum" from "a worse one".
    assert abs(ours_best - package_best) < 0.05
    # and the two objectives are the same function: ours at the package's parameters
    em = runs[0]
    handler = em.data_handler
    users = [handler.obs_dict[str(u)] for u in ratings.users]
    items = [handler.items_dict[str(i)] for i in ratings.items]
    levels = [handler.ratings_dict[str(int(v))] for v in ratings.scale.levels]
    result = em.results[0]
    point = {"theta": result["theta"][users], "eta": result["eta"][items],
             "p": result["pr"][:, :, levels]}
    loglik, *_ = expected_counts(ratings.user, ratings.item, ratings.level_codes, **point)
    assert loglik == pytest.approx(result["likelihood"], rel=1e-10)


# ---------------------------------------------------------------------------------------------
# interpretation helpers
# ---------------------------------------------------------------------------------------------
def test_memberships_and_rating_patterns_are_labelled(map_fit, split):
    train = split[0]
    members = memberships(map_fit)
    assert members["theta"].dims == ("chain", "draw", "user", "user_group")
    assert list(members["eta"]["item"].values) == list(train.items)
    patterns = rating_patterns(map_fit)
    assert patterns["p"].dims == ("user_group", "item_group", "rating_level")
    np.testing.assert_allclose(patterns["p"].sum("rating_level"), 1.0)
    assert patterns["user_group_size"].sum() == pytest.approx(train.n_users)
    assert float(patterns["expected_rating"].min()) >= 1.0
    fig = plot_mmsbm_rating_patterns(patterns, distributions=True)
    assert isinstance(fig, Figure) and len(fig.axes) >= 2


def test_aligning_group_labels_changes_no_prediction(map_fit, split):
    test = split[1]
    post = map_fit["posterior"].to_dataset()
    aligned = align_groups(map_fit)
    for c in range(post.sizes["chain"]):
        before = level_probabilities_np(*(post[v].values[c, 0] for v in ("theta", "eta", "p")),
                                        test.user, test.item)
        after = level_probabilities_np(*(aligned[v].values[c, 0] for v in ("theta", "eta", "p")),
                                       test.user, test.item)
        np.testing.assert_allclose(after, before, atol=1e-12)
    assert isinstance(memberships(map_fit, chain="all"), xr.Dataset)


# ---------------------------------------------------------------------------------------------
# a posterior method and the command line
# ---------------------------------------------------------------------------------------------
@pytest.mark.agreement
def test_nuts_posterior_agrees_with_map_and_carries_uncertainty():
    # one small NUTS fit (nutpie compiles the model: the slowest test of this file)
    ratings, _ = simulate_mmsbm(40, 50, 1200, n_user_groups=2, n_item_groups=2,
                                membership_concentration=0.15, seed=3)
    parts = holdout(ratings, 0.2, seed=0)
    model = build_model("mmsbm", parts.train, n_user_groups=2, n_item_groups=2)
    posterior = fit(model, "nuts", random_seed=0, draws=150, tune=150, chains=2)
    point = fit(model, "map", random_seed=0, restarts=4, maxiter=300)
    by_nuts = predict(posterior, pairs=parts.test, model=model, random_seed=0, keep_draws=True)
    by_map = predict(point, pairs=parts.test, model=model, random_seed=0)
    np.testing.assert_allclose(by_nuts["prob"].sum("rating_level"), 1.0, atol=1e-12)
    # label-free agreement: the predictive distributions, not theta/eta
    tv = 0.5 * np.abs(by_nuts["prob"] - by_map["prob"]).sum("rating_level").mean()
    assert float(tv) < 0.1
    assert float(by_nuts["mu"].std(("chain", "draw")).mean()) > 0.02  # posterior uncertainty
    assert abs(score(by_nuts, parts.test)["accuracy"] - score(by_map, parts.test)["accuracy"]) \
        < 0.06


@pytest.mark.slow
def test_advi_from_the_map_gives_predictions_with_posterior_uncertainty(model, split):
    train, test, _ = split
    dt = fit(model, "advi", random_seed=0, n=1500, draws=100, init="map")
    pred = predict(dt, pairs=test, model=model, random_seed=0, keep_draws=True)
    np.testing.assert_allclose(pred["prob"].sum("rating_level"), 1.0, atol=1e-12)
    assert float(pred["mu"].std(("chain", "draw")).mean()) > 0.005
    assert score(pred, test)["accuracy"] > 0.5


def test_cli_evaluate_prints_accuracy_mae_and_rmse(tmp_path, capsys):
    ratings, _ = simulate_mmsbm(60, 70, 2500, seed=9)
    path = tmp_path / "ratings.csv"
    ratings.to_dataframe().to_csv(path, index=False)
    assert main(["evaluate", "--model", "mmsbm", "--dataset", str(path), "--kfold", "2",
                 "--fast"]) == 0
    out = capsys.readouterr().out
    assert "accuracy" in out and "mae" in out and "rmse" in out


@pytest.mark.slow
@pytest.mark.movielens
def test_movielens_u1_map_beats_the_biases_baseline(movielens_home):
    from bayesrec.evaluation import evaluate, load_dataset

    _, splits = load_dataset("ml-100k", data_home=movielens_home, folds=["u1"])
    result = evaluate("mmsbm", splits, seed=0)
    fold = result.folds.iloc[0]
    assert fold["accuracy"] > 0.44 and fold["rmse"] < 0.96
