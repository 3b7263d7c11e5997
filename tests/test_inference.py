"""The shared inference module and the PMF / BPMF factories, against known truth.

Data come from the models' own generative process (``simulate_ratings`` with a
continuous scale is exactly PMF-with-biases with Gaussian factors, and BPMF with
a zero factor mean and a diagonal covariance), so held-out RMSE can be compared
with the simulation's noise level and predictions with the true means.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy import stats

from bayesrec import FitError, InputError, Ratings, UnknownIdError
from bayesrec.data.simulate import simulate_ratings, true_mean
from bayesrec.data.splits import holdout
from bayesrec.inference import (
    expected_ratings,
    fit,
    load_fit,
    model_from_fit,
    predict,
    recommend,
    save_fit,
)
from bayesrec.metrics import rmse
from bayesrec.models import build_model

NOISE = 0.5
CORE_GROUPS = {"posterior", "observed_data", "constant_data", "bayesrec"}
METHOD_GROUP = {"map": "optimizer_result", "nuts": "sample_stats", "advi": "advi",
                "fullrank_advi": "advi"}


@pytest.fixture(scope="module")
def data():
    ratings, truth = simulate_ratings(
        n_users=80, n_items=60, n_ratings=2500, n_factors=2, noise_sd=NOISE, scale=None,
        factor_sd=0.8, seed=11,
    )
    split = holdout(ratings, 0.2, seed=3)
    return split.train, split.test, truth


@pytest.fixture(scope="module")
def pmf_model(data):
    train, _, _ = data
    return build_model("pmf", train, n_factors=2)


@pytest.fixture(scope="module")
def fits(pmf_model):
    """One fit per method of the same PMF model (NUTS is the slow one: ~20 s compile)."""
    return {
        "map": fit(pmf_model, "map", random_seed=1),
        "advi": fit(pmf_model, "advi", random_seed=1, n=6000, draws=300, learning_rate=0.02),
        "nuts": fit(pmf_model, "nuts", random_seed=1, draws=250, tune=250, chains=2),
    }


def _truth_scores(fit_, test, truth):
    pred = predict(fit_, pairs=test, random_seed=0, max_draws=300)
    mean = pred["mean"].values
    truth_mu = true_mean(truth, test.user, test.item)
    return rmse(test.rating, mean), np.corrcoef(mean, truth_mu)[0, 1], rmse(test.rating, truth_mu)


# -------------------------------------------------------------------------------------------
# log-density against a hand computation
# -------------------------------------------------------------------------------------------
def test_pmf_logp_matches_hand_computation():
    tiny = Ratings.from_arrays(["a", "a", "b"], ["x", "y", "y"], [4.0, 2.0, 5.0], scale="1-5")
    model = build_model("pmf", tiny, n_factors=1, priors={"user_factor_sd": 0.5,
                                                          "item_factor_sd": 0.7})
    U = np.array([[0.3], [-1.2]])
    V = np.array([[0.8], [0.1]])
    b, c, m, s = np.array([0.1, -0.2]), np.array([0.4, 0.0]), 3.2, 0.9
    point = {"user_factors": U, "item_factors": V, "offset": m, "user_bias": b,
             "item_bias": c, "sigma_log__": np.log(s)}
    mu = m + b[[0, 0, 1]] + c[[0, 1, 1]] + (U[[0, 0, 1]] * V[[0, 1, 1]]).sum(1)
    expected = (
        stats.norm.logpdf([4.0, 2.0, 5.0], mu, s).sum()
        + stats.norm.logpdf(U, 0, 0.5).sum() + stats.norm.logpdf(V, 0, 0.7).sum()
        + stats.norm.logpdf(b, 0, 1.0).sum() + stats.norm.logpdf(c, 0, 1.0).sum()
        + stats.norm.logpdf(m, 3.0, 2.0)
        + stats.halfnorm.logpdf(s, scale=2.0) + np.log(s)  # log-transform Jacobian
    )
    assert model.compile_logp()(point) == pytest.approx(expected, rel=1e-10)


def test_pmf_logistic_link_maps_onto_scale():
    tiny = Ratings.from_arrays([1, 2], [1, 1], [1.0, 5.0], scale="1-5")
    model = build_model("pmf", tiny, n_factors=1, link="logistic", biases=False)
    mu = model.compile_fn(model["mu"], inputs=model.free_RVs, point_fn=False,
                          on_unused_input="ignore")
    out = mu(np.array([[10.0], [-10.0]]), np.array([[10.0]]), 1.0)
    np.testing.assert_allclose(out, [1 + 4 / (1 + np.exp(-100)), 1 + 4 / (1 + np.exp(100))])


# -------------------------------------------------------------------------------------------
# every method recovers the truth
# -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["map", "advi", "nuts"])
def test_pmf_methods_recover_truth(fits, data, method):
    _, test, truth = data
    test_rmse, corr, floor = _truth_scores(fits[method], test, truth)
    assert floor == pytest.approx(NOISE, abs=0.05)  # the truth scores at the noise level
    assert test_rmse < floor + 0.12, (method, test_rmse, floor)
    assert corr > 0.9, (method, corr)


@pytest.mark.agreement
def test_bpmf_nuts_recovers_truth(data):
    train, test, truth = data
    model = build_model("bpmf", train, n_factors=2)
    dt = fit(model, "nuts", random_seed=2, draws=250, tune=250, chains=2)
    test_rmse, corr, floor = _truth_scores(dt, test, truth)
    assert test_rmse < floor + 0.12 and corr > 0.9
    divergent = float(dt["sample_stats"]["diverging"].mean())
    assert divergent < 0.05
    # the learned factor scale is of the order of the true one (0.8)
    sd = dt["posterior"]["user_factor_sd"].mean().item()
    assert 0.3 < sd < 1.5


@pytest.mark.agreement
def test_fullrank_advi_agrees_with_nuts(fits, pmf_model, data):
    """Full-rank ADVI (from a mean-field fit, correlations fitted with averaged
    gradients): a better ELBO than the mean-field start, and NUTS's noise sd and
    predictions.  Before that start, PyMC's default one (identity covariance, one
    draw per gradient) ended this fit with a noise sd in the hundreds, reported as
    converged."""
    _, test, truth = data
    dt = fit(pmf_model, "fullrank_advi", random_seed=1, draws=300)
    report = dt["advi"].attrs
    assert report["stop_reason"] == "converged"
    assert report["best_window_loss"] < report["mean_field_best_window_loss"]
    sigma_nuts = float(fits["nuts"]["posterior"]["sigma"].mean())
    assert float(dt["posterior"]["sigma"].mean()) == pytest.approx(sigma_nuts, rel=0.1)
    test_rmse, corr, floor = _truth_scores(dt, test, truth)
    assert test_rmse < floor + 0.12 and corr > 0.9
    nuts_mean = predict(fits["nuts"], pairs=test, random_seed=0, max_draws=300)["mean"].values
    full_mean = predict(dt, pairs=test, random_seed=0)["mean"].values
    assert np.corrcoef(nuts_mean, full_mean)[0, 1] > 0.95


@pytest.mark.agreement  # 30 s: a long ADVI run until the loss climbs
def test_a_diverging_variational_fit_raises(pmf_model):
    """A loss that rises well above its best window stops the fit with FitError
    (here full rank with a learning rate fifty times the default)."""
    with pytest.raises(FitError, match="fullrank_advi diverged.*learning_rate"):
        fit(pmf_model, "fullrank_advi", random_seed=1, n=1000, draws=10, learning_rate=0.05)


def test_a_diverging_mean_field_start_names_its_own_learning_rate(pmf_model, monkeypatch):
    """When full rank's mean-field start diverges, the error says so and points at the
    rate that phase used (not full rank's ``learning_rate``)."""
    import bayesrec.inference.advi as advi_module

    report = xr.Dataset(attrs={"stop_reason": "diverged", "method": "advi", "n_iterations": 400,
                               "convergence_window": 200, "last_window_loss": 9e9,
                               "best_window_loss": 3e3})
    monkeypatch.setattr(advi_module, "monitored_fit", lambda *args, **kwargs: (None, report))
    with pytest.raises(FitError, match=r"fullrank_advi \(its mean-field start\) diverged.*"
                                       r"smaller mean_field_learning_rate \(now 0.01\)"):
        fit(pmf_model, "fullrank_advi", random_seed=1)


def test_plateau_monitor_decays_converges_and_detects_divergence():
    import pytensor

    from bayesrec.inference.advi import PlateauMonitor

    def run(losses, **kw):
        rate = pytensor.shared(np.asarray(0.01))
        monitor = PlateauMonitor(rate, 0.5, 2, 10, 1e-3, **kw)
        try:
            for i in range(1, len(losses) + 1):
                monitor(None, losses[:i], i)
        except StopIteration:
            pass
        return monitor, float(rate.get_value())

    rng = np.random.default_rng(0)
    falling = list(1000 * np.exp(-np.arange(200) / 40) + 100 + rng.normal(0, 0.01, 200))
    monitor, rate = run(falling + [100.0] * 100)  # falls, then flat: decays, then converges
    assert monitor.stop_reason == "converged" and monitor.decayed_at and rate == 0.0025
    monitor, _ = run(falling + list(np.linspace(100, 200, 100)))  # rises after the fall
    assert monitor.stop_reason == "diverged" and monitor.best < 110
    monitor, _ = run(falling[:50] + [np.nan] * 20)
    assert monitor.stop_reason == "diverged"


def test_methods_agree_with_each_other(fits, data):
    _, test, _ = data
    means = {m: predict(f, pairs=test, random_seed=0, max_draws=300)["mean"].values
             for m, f in fits.items()}
    assert np.corrcoef(means["nuts"], means["advi"])[0, 1] > 0.95
    assert np.corrcoef(means["nuts"], means["map"])[0, 1] > 0.95


# -------------------------------------------------------------------------------------------
# the DataTree contract
# -------------------------------------------------------------------------------------------
def test_every_method_returns_the_same_groups_and_dims(fits, pmf_model):
    dims = None
    for method, dt in fits.items():
        assert isinstance(dt, xr.DataTree)
        assert CORE_GROUPS | {METHOD_GROUP[method]} <= set(dt.children), method
        post = dt["posterior"].to_dataset()
        these = {v: post[v].dims for v in post.data_vars}
        assert all(d[:2] == ("chain", "draw") for d in these.values())
        assert not any("obs" in d for d in these.values())  # data-sized vars are not stored
        dims = dims or these
        assert these == dims, method
        assert dt.attrs["method"] == method and dt.attrs["bayesrec_model"] == "pmf"
        assert '"n_factors": 2' in dt.attrs["bayesrec_config"]
        assert isinstance(dt.attrs["random_seed"], int)
        assert "pymc" in dt.attrs["versions"]
        np.testing.assert_array_equal(post["user"].values, pmf_model.coords["user"])
    assert fits["map"]["posterior"].sizes["draw"] == 1
    assert fits["advi"]["advi"]["loss"].ndim == 1
    assert {"diverging", "tree_depth", "step_size"} <= set(fits["nuts"]["sample_stats"].data_vars)


@pytest.mark.agreement  # refits MAP and ADVI: long (fresh-process determinism is there too)
def test_same_seed_same_numbers(pmf_model, fits):
    again = fit(pmf_model, "map", random_seed=1)  # same settings as the fixture
    xr.testing.assert_equal(again["posterior"].to_dataset(), fits["map"]["posterior"].to_dataset())
    advi = fit(pmf_model, "advi", random_seed=1, n=6000, draws=300, learning_rate=0.02)
    xr.testing.assert_equal(advi["posterior"].to_dataset(), fits["advi"]["posterior"].to_dataset())
    other = fit(pmf_model, "map", random_seed=2)
    assert not other["posterior"]["user_factors"].equals(fits["map"]["posterior"]["user_factors"])


def test_nuts_same_seed_same_draws():
    ratings, _ = simulate_ratings(n_users=20, n_items=15, n_ratings=150, seed=4, scale=None)
    model = build_model("pmf", ratings, n_factors=1)
    a = fit(model, "nuts", random_seed=9, draws=30, tune=30, chains=2)
    b = fit(model, "nuts", random_seed=9, draws=30, tune=30, chains=2)
    xr.testing.assert_equal(a["posterior"].to_dataset(), b["posterior"].to_dataset())


def test_map_restarts_become_chains_and_best_is_chosen_by_loglik(pmf_model):
    dt = fit(pmf_model, "map", random_seed=4, restarts=3, maxiter=100)
    assert dt["posterior"].sizes["chain"] == 3
    report = dt["optimizer_result"].to_dataset()
    assert report.sizes["restart"] == 3 and report["kept"].all()
    best = fit(pmf_model, "map", random_seed=4, restarts=3, maxiter=100, combine="best")
    assert best["posterior"].sizes["chain"] == 1
    chosen = int(np.argmax(report["log_likelihood"].values))
    np.testing.assert_allclose(
        best["posterior"]["user_factors"].isel(chain=0).values,
        dt["posterior"]["user_factors"].isel(chain=chosen).values,
    )


# -------------------------------------------------------------------------------------------
# predictions, recommendations, save/load
# -------------------------------------------------------------------------------------------
def test_predictions_for_new_pairs_have_dims_and_labels(fits, data):
    train, _, _ = data
    users = train.users[[5, 0, 5]].to_numpy()
    items = train.items[[3, 7, 1]].to_numpy()
    pred = predict(fits["nuts"], users, items, random_seed=1, max_draws=100, keep_draws=True)
    assert pred["rating"].dims == ("chain", "draw", "pair")
    assert pred["mu"].shape == (2, 50, 3)
    np.testing.assert_array_equal(pred["user"].values, users)
    np.testing.assert_array_equal(pred["item"].values, items)
    assert set(pred.data_vars) >= {"mean", "median", "mode", "sd", "quantiles"}
    q = pred["quantiles"].values
    assert (np.diff(q, axis=1) >= 0).all()  # quantiles ordered
    # the point prediction is the posterior mean of mu (averaged over draws)
    np.testing.assert_allclose(pred["mean"].values,
                               train.scale.clip(pred["mu"].mean(("chain", "draw")).values))


def test_map_predictive_is_the_plugin_distribution(fits, data):
    _, test, _ = data
    pred = predict(fits["map"], pairs=test, random_seed=1, point_draws=400)
    sigma = fits["map"]["posterior"]["sigma"].item()
    assert float(pred["sd"].median()) == pytest.approx(sigma, rel=0.15)


def test_predict_rejects_unknown_ids_and_bad_input(fits, data):
    with pytest.raises(UnknownIdError, match="unknown user id"):
        predict(fits["map"], [123456], [1], unknown="error")
    with pytest.raises(InputError, match="unknown must be"):
        predict(fits["map"], [1], [1], unknown="ignore")
    with pytest.raises(InputError, match="mismatched lengths"):
        predict(fits["map"], [1, 2], [1])
    with pytest.raises(InputError, match="expected a fit"):
        predict({"posterior": 1}, [1], [1])


def test_recommend_ranks_by_expected_rating_and_excludes_rated(fits, data):
    train, _, _ = data
    users = train.users[:4].to_numpy()
    rec = recommend(fits["map"], users, n=5)
    assert rec["item"].dims == ("user", "rank") and rec.sizes["rank"] == 5
    _, mean, _ = expected_ratings(fits["map"], users)
    rated = train.rated_mask()
    for row, u in enumerate(users):
        code = train.user_codes_of(u)[0]
        items = train.item_codes_of(rec["item"].values[row])
        assert not rated[code, items].toarray().any()
        scores = np.where(rated[code].toarray().ravel(), -np.inf, train.scale.clip(mean[row]))
        np.testing.assert_allclose(rec["mean"].values[row], np.sort(scores)[::-1][:5])
    single = recommend(fits["map"], users[0], n=3, exclude_rated=False)
    assert single["item"].dims == ("rank",)


def test_save_load_predicts_identically_without_training_data(fits, data, tmp_path):
    _, test, _ = data
    for method in ("map", "nuts"):
        path = save_fit(fits[method], tmp_path / f"{method}.nc")
        loaded = load_fit(path)
        a = predict(fits[method], pairs=test, random_seed=5, max_draws=100, keep_draws=True)
        b = predict(loaded, pairs=test, random_seed=5, max_draws=100, keep_draws=True)
        np.testing.assert_array_equal(a["mean"].values, b["mean"].values)
        np.testing.assert_array_equal(a["rating"].values, b["rating"].values)
    rebuilt = model_from_fit(loaded)
    assert set(rebuilt.named_vars) >= {"user_factors", "item_factors", "rating", "mu"}


def test_load_refuses_a_tampered_file(fits, tmp_path):
    path = save_fit(fits["map"], tmp_path / "fit.nc")
    tree = xr.open_datatree(path, engine="h5netcdf").load()
    tree["bayesrec"].attrs["config"] = tree["bayesrec"].attrs["config"].replace(
        '"n_factors": 2', '"n_factors": 3')
    tree.to_netcdf(tmp_path / "tampered.nc", engine="h5netcdf")
    with pytest.raises(InputError, match="does not match its recorded hash|differ from"):
        load_fit(tmp_path / "tampered.nc")


# -------------------------------------------------------------------------------------------
# options and errors
# -------------------------------------------------------------------------------------------
def test_unknown_options_list_the_valid_ones(pmf_model):
    with pytest.raises(InputError, match="unknown method 'gibbbs'.*valid methods are"):
        fit(pmf_model, "gibbbs")
    with pytest.raises(InputError, match=r"unknown option\(s\) \['draws'\] for method 'map'"):
        fit(pmf_model, "map", draws=10)
    with pytest.raises(InputError, match=r"sampler must be one of \('nutpie', 'pymc', 'numpyro', 'blackjax'\), got 'stan'"):
        fit(pmf_model, "nuts", sampler="stan")
    with pytest.raises(InputError, match="draws must be a positive integer"):
        fit(pmf_model, "nuts", draws=0)
    with pytest.raises(InputError, match="needs a pymc.Model"):
        fit("pmf", "map")
    with pytest.raises(InputError, match=r"unknown option\(s\) \['n_factor'\] for model 'pmf'"):
        build_model("pmf", pmf_model.bayesrec_info.ratings, n_factor=3)
    with pytest.raises(InputError, match="unknown prior"):
        build_model("pmf", pmf_model.bayesrec_info.ratings, priors={"factor_sd": 1.0})
    with pytest.raises(InputError, match="n_factors must be a positive integer"):
        build_model("bpmf", pmf_model.bayesrec_info.ratings, n_factors=0)


def test_bpmf_row_density_is_the_mvnormal_density():
    """The centred BPMF factors' one-solve density equals PyMC's MvNormal, value and gradient."""
    import pymc as pm
    import pytensor
    import pytensor.tensor as pt

    from bayesrec.models.bpmf import _rows_logp

    rng = np.random.default_rng(3)
    k = 4
    a = rng.normal(size=(k, k))
    chol = np.linalg.cholesky(a @ a.T + k * np.eye(k))
    mean, value = rng.normal(size=k), rng.normal(size=(7, k))
    x = pt.matrix("x")
    ours = _rows_logp(x, pt.as_tensor(mean), pt.as_tensor(chol))
    ref = pm.logp(pm.MvNormal.dist(mean, chol=chol, shape=(7, k)), x)
    f = pytensor.function([x], [ours, ref, pytensor.grad(ours.sum(), x),
                                pytensor.grad(ref.sum(), x)])
    lp, lp_ref, g, g_ref = f(value)
    np.testing.assert_allclose(lp, lp_ref, rtol=1e-10)
    np.testing.assert_allclose(g, g_ref, rtol=1e-10)
