"""The block-Gibbs sampler (``fit(model, "gibbs")``) against brute force and against NUTS.

* Each conditional the sampler draws from is compared with the one implied by the
  model's own log-density (PyMC's ``compile_logp``): the log-density is quadratic in a
  user's ``(factors, bias)``, so finite differences give its precision and mean exactly.
* The MH updates (noise scale, covariance prior ratio) against a quadrature of the
  model's conditional, PyMC's LKJ density and the inverse-Wishart moments.
* The whole chain against NUTS on a small simulated BPMF: predictive means and the
  distribution of the factor norms within Monte Carlo error.
* Same seed, same draws; the DataTree contract; predict, recommend, save and load.
"""

from __future__ import annotations

import json

import arviz as az
import numpy as np
import pymc as pm
import pytest
import xarray as xr

from bayesrec import InputError, Ratings
from bayesrec.data.simulate import simulate_ratings
from bayesrec.data.splits import holdout
from bayesrec.inference import fit, load_fit, predict, ratings_from_fit, recommend, save_fit
from bayesrec.inference.gibbs import gibbs_steps, layout_of
from bayesrec.inference.gibbs.kernels import (
    SdPrior,
    draw_rows,
    inverse_wishart,
    lkj_cholesky_logp,
    scale_independence_mh,
    scaling_moments,
    slice_each,
)
from bayesrec.models import build_model
from bayesrec.recommenders import make_recommender

CORE_GROUPS = {"posterior", "observed_data", "constant_data", "bayesrec", "sample_stats"}


# -------------------------------------------------------------------------------------------
# the conditionals against the model's log-density
# -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny():
    rng = np.random.default_rng(0)
    users, items = rng.integers(0, 7, 40), rng.integers(0, 6, 40)
    return Ratings.from_arrays(users.astype(str), items.astype(str), rng.normal(3, 1, 40),
                               scale=None, duplicates="last")


def _random_point(model, rng) -> dict:
    """A point with every value variable drawn at random (value space)."""
    point = model.initial_point()
    return {k: rng.normal(0.0, 0.5, np.shape(v)) + (3.0 if k == "offset" else 0.0)
            for k, v in point.items()}


def _quadratic_fit(logp, point, keys, indices, h=0.5):
    """Precision and maximiser of ``logp`` along the coordinates ``(key, index)``.

    ``logp`` is exactly quadratic there, so central differences are exact.
    """
    def at(delta):
        p = {k: np.array(v, dtype=float) for k, v in point.items()}
        for (key, idx), d in zip(zip(keys, indices, strict=True), delta, strict=True):
            p[key][idx] += d
        return logp(p)

    dim = len(keys)
    eye = np.eye(dim) * h
    grad = np.array([(at(eye[a]) - at(-eye[a])) / (2 * h) for a in range(dim)])
    hess = np.empty((dim, dim))
    for a in range(dim):
        for b in range(dim):
            hess[a, b] = (at(eye[a] + eye[b]) - at(eye[a] - eye[b]) - at(-eye[a] + eye[b])
                          + at(-eye[a] - eye[b])) / (4 * h * h)
    x0 = np.array([point[k][idx] for k, idx in zip(keys, indices, strict=True)])
    prec = -hess
    return prec, x0 + np.linalg.solve(prec, grad)


@pytest.mark.parametrize("name, options", [
    ("pmf", {}),
    ("bpmf", {"parameterisation": "centered"}),
    ("bpmf", {}),  # non-centred: the conditional of the standardised factors
])
def test_row_conditionals_match_the_log_density(tiny, name, options):
    model = build_model(name, tiny, n_factors=2, **options)
    logp = model.compile_logp(mode="FAST_COMPILE")
    point = _random_point(model, np.random.default_rng(1))
    step = gibbs_steps(model)[0]
    lay = step.layout
    for side, other in (("user", "item"), ("item", "user")):
        inputs = step.side_inputs(point, side, lay.factors_of(point, other),
                                  lay.bias_of(point, other), lay.offset(point), lay.sigma(point))
        n_rows, dim = lay.side(side).n_rows, 3
        mean = draw_rows(eps=np.zeros((n_rows, dim)), **inputs)
        # theta = mean + C^-T eps: the columns of C^-T from unit eps, covariance C^-T C^-1
        basis = [draw_rows(eps=np.tile(e, (n_rows, 1)), **inputs) - mean for e in np.eye(dim)]
        for row in (0, n_rows - 1):
            root = np.stack([b[row] for b in basis], axis=1)
            keys = [lay.side(side).factors] * 2 + [lay.side(side).bias]
            prec, centre = _quadratic_fit(logp, point, keys, [(row, 0), (row, 1), row])
            np.testing.assert_allclose(mean[row], centre, rtol=1e-6, atol=1e-8)
            np.testing.assert_allclose(root @ root.T, np.linalg.inv(prec), rtol=1e-6, atol=1e-10)


def test_overrelaxed_rows_keep_the_conditional(tiny):
    """Over-relaxation (Adler 1981): ``theta' = mean + alpha (theta - mean) + sqrt(1 -
    alpha^2) C^-T eps``.  Its mean and spread are checked against the plain draw's, and
    the invariance of ``N(mean, P^-1)`` follows: ``alpha^2 P^-1 + (1 - alpha^2) P^-1``."""
    model = build_model("bpmf", tiny, n_factors=2, parameterisation="centered")
    point = _random_point(model, np.random.default_rng(2))
    step = gibbs_steps(model)[0]
    lay = step.layout
    inputs = step.side_inputs(point, "user", lay.factors_of(point, "item"),
                              lay.bias_of(point, "item"), lay.offset(point), lay.sigma(point))
    n_rows, dim, alpha = lay.user.n_rows, 3, -0.8
    current = np.random.default_rng(3).normal(size=(n_rows, dim))
    mean = draw_rows(eps=np.zeros((n_rows, dim)), **inputs)
    relaxed_mean = draw_rows(eps=np.zeros((n_rows, dim)), current=current, alpha=alpha, **inputs)
    np.testing.assert_allclose(relaxed_mean, mean + alpha * (current - mean), rtol=1e-10,
                               atol=1e-12)
    for e in np.eye(dim):
        plain = draw_rows(eps=np.tile(e, (n_rows, 1)), **inputs) - mean
        relaxed = draw_rows(eps=np.tile(e, (n_rows, 1)), current=current, alpha=alpha,
                            **inputs) - relaxed_mean
        np.testing.assert_allclose(relaxed, np.sqrt(1 - alpha**2) * plain, rtol=1e-10,
                                   atol=1e-12)
    with pytest.raises(ValueError, match="alpha"):
        draw_rows(eps=np.zeros((n_rows, dim)), current=current, alpha=1.0, **inputs)
    with pytest.raises(InputError, match="overrelax"):
        gibbs_steps(model, overrelax=-1.0)


def test_offset_conditional_matches_the_log_density(tiny):
    model = build_model("bpmf", tiny, n_factors=2, parameterisation="centered")
    logp = model.compile_logp(mode="FAST_COMPILE")
    point = _random_point(model, np.random.default_rng(2))
    step = gibbs_steps(model)[0]
    lay = step.layout
    users, items = lay.factors_of(point, "user"), lay.factors_of(point, "item")
    resid = (lay.rating - lay.bias_of(point, "user")[lay.user_code]
             - lay.bias_of(point, "item")[lay.item_code]
             - (users[lay.user_code] * items[lay.item_code]).sum(1))
    mean, prec = step.offset_conditional(resid.sum(), len(resid), lay.sigma(point))
    point["offset"] = np.asarray(point["offset"], dtype=float)
    brute_prec, brute_mean = _quadratic_fit(logp, point, ["offset"], [()])
    assert prec == pytest.approx(brute_prec[0, 0], rel=1e-6)
    assert mean == pytest.approx(brute_mean[0], rel=1e-8)


def test_noise_update_targets_its_conditional(tiny):
    """The independence MH chain of sigma against a quadrature of the model's log-density."""
    model = build_model("pmf", tiny, n_factors=2)
    logp = model.compile_logp(mode="FAST_COMPILE")
    point = _random_point(model, np.random.default_rng(3))
    lay = gibbs_steps(model)[0].layout
    fitted = (lay.offset(point) + lay.bias_of(point, "user")[lay.user_code]
              + lay.bias_of(point, "item")[lay.item_code]
              + (lay.factors_of(point, "user")[lay.user_code]
                 * lay.factors_of(point, "item")[lay.item_code]).sum(1))
    sse, n = float(((lay.rating - fitted) ** 2).sum()), len(lay.rating)
    grid = np.linspace(np.log(0.2), np.log(4.0), 600)  # log sigma; logp includes the Jacobian
    dens = np.exp([logp({**point, "sigma_log__": np.asarray(x)}) for x in grid])
    dens /= dens.sum()
    true_mean = (np.exp(grid) * dens).sum()
    true_sd = np.sqrt((np.exp(2 * grid) * dens).sum() - true_mean**2)
    rng, sigma, draws = np.random.default_rng(4), 1.0, []
    for _ in range(6000):
        sigma, _ = scale_independence_mh(rng, sigma, n, sse, lay.priors["noise_sd"])
        draws.append(sigma)
    draws = np.array(draws[100:])
    assert draws.mean() == pytest.approx(true_mean, abs=4 * true_sd / np.sqrt(len(draws) / 3))
    assert draws.std() == pytest.approx(true_sd, rel=0.08)


@pytest.mark.parametrize("sd_dist, sd_prior", [
    (pm.HalfNormal.dist(0.7, shape=3), SdPrior("halfnormal", 0.7)),
    (pm.Gamma.dist(alpha=2.0, beta=3.0, shape=3), SdPrior("gamma", 2.0, 1 / 3.0)),
])
def test_lkj_cholesky_density_matches_pymc(sd_dist, sd_prior):
    dist = pm.LKJCholeskyCov.dist(n=3, eta=2.0, sd_dist=sd_dist, compute_corr=False)
    value = pm.math.constant(np.zeros(6)).type()
    fn = pm.compile([value], pm.logp(dist, value), mode="FAST_COMPILE")
    rng, diffs = np.random.default_rng(5), []
    for _ in range(5):
        chol = np.tril(rng.normal(0, 0.5, (3, 3)))
        chol[np.diag_indices(3)] = np.abs(chol[np.diag_indices(3)]) + 0.2
        diffs.append(float(fn(chol[np.tril_indices(3)])) - lkj_cholesky_logp(chol, 2.0, sd_prior))
    np.testing.assert_allclose(diffs, diffs[0], atol=1e-8)  # equal up to the normaliser


def test_inverse_wishart_moments():
    rng = np.random.default_rng(6)
    scale = np.array([[2.0, 0.5], [0.5, 1.0]])
    draws = np.array([inverse_wishart(rng, 9.0, scale) for _ in range(6000)])
    np.testing.assert_allclose(draws.mean(0), scale / (9.0 - 2 - 1), rtol=0.06, atol=0.006)


def test_vectorised_slice_sampler_targets_each_entry():
    """Three independent targets run in lock-step: a Gaussian, a Gamma in log space and
    a generalised-inverse-Gaussian in log space (the balance move's), against their moments."""
    rng = np.random.default_rng(8)
    shape, rate = 3.0, 2.0  # log of a Gamma(3, 2): density exp(3 x - 2 e^x)

    def logf(x):
        return np.array([-0.5 * ((x[0] - 1.0) / 0.3) ** 2,
                         shape * x[1] - rate * np.exp(x[1]),
                         0.5 * x[2] - 1.5 * np.exp(x[2]) - 0.5 * np.exp(-x[2])])

    x, draws = np.zeros(3), []
    for _ in range(12000):
        x = slice_each(rng, logf, x, width=np.array([0.3, 0.5, 0.5]))
        draws.append(x)
    draws = np.array(draws[1000:])
    assert abs(draws[:, 0].mean() - 1.0) < 0.02 and abs(draws[:, 0].std() - 0.3) < 0.02
    gamma = np.exp(draws[:, 1])
    assert abs(gamma.mean() - shape / rate) < 0.05 and abs(gamma.var() - shape / rate**2) < 0.06
    # GIG(p=0.5, a=3, b=1) in t = e^x: E t = sqrt(b/a) K_{p+1}(sqrt(ab)) / K_p(sqrt(ab))
    from scipy.special import kv
    w = np.sqrt(3.0)
    assert abs(np.exp(draws[:, 2]).mean() - np.sqrt(1 / 3) * kv(1.5, w) / kv(0.5, w)) < 0.03


@pytest.mark.parametrize("with_bias", [False, True])
def test_scaling_moments_brute_force(with_bias):
    """F^T F and F^T e of the per-factor rescaling, against the features built rating by
    rating: f_j,k = dev_uk x_jk and e_j = y_j - x_j . theta_u."""
    rng = np.random.default_rng(3)
    n_rows, k, per_row = 5, 3, 4
    d = k + with_bias
    x = rng.normal(size=(n_rows, per_row, d))
    y = rng.normal(size=(n_rows, per_row))
    theta, dev = rng.normal(size=(n_rows, d)), rng.normal(size=(n_rows, k))
    gram, h = np.einsum("ujd,uje->ude", x, x), np.einsum("ujd,uj->ud", x, y)
    f = (dev[:, None, :] * x[:, :, :k]).reshape(-1, k)
    e = (y - np.einsum("ujd,ud->uj", x, theta)).reshape(-1)
    ftf, ftr = scaling_moments(dev, gram, theta, h)
    np.testing.assert_allclose(ftf, f.T @ f, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ftr, f.T @ e, rtol=1e-10, atol=1e-12)


def test_log_likelihood_memo_is_never_stale(tiny):
    """The reported log-likelihood is the point's, whether remembered or recomputed."""
    from bayesrec.inference.gibbs.steps import log_likelihood

    model = build_model("bpmf", tiny, n_factors=2, parameterisation="centered")
    steps = gibbs_steps(model)
    for j, step in enumerate(steps):
        step.setup_chain(np.random.default_rng(j), 0, 5)
    point = model.initial_point()
    for _ in range(5):
        for step in steps:
            point, stats = step.step(point)
            if "training_log_likelihood" in stats[0]:
                fresh = log_likelihood(step.layout, {k: np.copy(v) for k, v in point.items()})
                assert stats[0]["training_log_likelihood"] == pytest.approx(fresh, rel=1e-12)
    lay = steps[0].layout
    lay.remember_log_likelihood(point, 1.0)
    assert lay.remembered_log_likelihood(point) == 1.0
    moved = dict(point, offset=np.copy(point["offset"]))  # a new array: not the same entry
    assert lay.remembered_log_likelihood(moved) is None


def test_layout_reads_priors_from_the_graph(tiny):
    model = build_model("pmf", tiny, n_factors=2, factor_scale=0.5,
                        priors={"bias_sd": 0.3, "noise_sd": 1.5})
    pr = layout_of(model).priors
    expected = build_model("pmf", tiny, n_factors=2)["user_factors"].owner.inputs[-1].eval()
    assert pr["user_factor_sd"] == pytest.approx(0.5 * float(np.ravel(expected)[0]))
    assert pr["bias_sd"] == pytest.approx(0.3) and pr["noise_sd"] == pytest.approx(1.5)


# -------------------------------------------------------------------------------------------
# the whole chain against NUTS
# -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def data():
    ratings, truth = simulate_ratings(n_users=40, n_items=30, n_ratings=700, n_factors=2,
                                      noise_sd=0.5, scale=None, factor_sd=0.8, seed=5)
    return holdout(ratings, 0.2, seed=1)


@pytest.fixture(scope="module")
def nuts_fit(data):
    """NUTS on the default (non-centred) BPMF: the reference (~20 s of nutpie compile)."""
    return fit(build_model("bpmf", data.train, n_factors=2), "nuts", random_seed=3,
               draws=500, tune=400, chains=2)


@pytest.fixture(scope="module")
def gibbs_fit(data):
    return fit(build_model("bpmf", data.train, n_factors=2, parameterisation="centered"),
               "gibbs", random_seed=3, draws=800, tune=150, chains=2)


def _norms(dt) -> xr.Dataset:
    post = dt["posterior"].to_dataset()
    return xr.Dataset({
        side: np.sqrt((post[f"{side}_factors"] ** 2).sum("factor")).mean(side)
        for side in ("user", "item")
    } | {"sigma": post["sigma"], "bias_sd": post["bias_sd"]})


def _agree(a: xr.DataArray, b: xr.DataArray, z: float = 4.0) -> bool:
    """Posterior means equal within ``z`` combined Monte Carlo standard errors."""
    se = np.hypot(float(az.mcse(a, method="mean")), float(az.mcse(b, method="mean")))
    return abs(float(a.mean()) - float(b.mean())) < z * se


@pytest.mark.agreement
def test_gibbs_agrees_with_nuts(nuts_fit, gibbs_fit, data):
    n, g = _norms(nuts_fit), _norms(gibbs_fit)
    for var in n.data_vars:
        assert _agree(n[var], g[var]), (var, float(n[var].mean()), float(g[var].mean()))
        assert float(g[var].std()) == pytest.approx(float(n[var].std()), rel=0.3), var
    # predictive means of held-out pairs
    pn = predict(nuts_fit, pairs=data.test, random_seed=0, max_draws=2000, keep_draws=True)
    pg = predict(gibbs_fit, pairs=data.test, random_seed=0, max_draws=3000, keep_draws=True)
    mu_n, mu_g = pn["mu"], pg["mu"]
    se = np.hypot(az.mcse(mu_n, method="mean").values, az.mcse(mu_g, method="mean").values)
    diff = np.abs(mu_n.mean(("chain", "draw")).values - mu_g.mean(("chain", "draw")).values)
    assert np.mean(diff < 4 * se) > 0.95, np.sort(diff / se)[-10:]
    assert np.corrcoef(pn["mean"].values, pg["mean"].values)[0, 1] > 0.99


def test_log_likelihood_statistic_is_the_models(gibbs_fit):
    sub = gibbs_fit["posterior"].to_dataset().isel(draw=slice(0, 3))
    model = build_model("bpmf", ratings_from_fit(gibbs_fit), n_factors=2,
                        parameterisation="centered")
    ll = pm.compute_log_likelihood(xr.DataTree.from_dict({"posterior": sub}), model=model,
                                   extend_inferencedata=False, progressbar=False)
    ds = ll["log_likelihood"].to_dataset() if isinstance(ll, xr.DataTree) else ll
    total = ds["rating"].sum("obs").values
    stat = gibbs_fit["sample_stats"]["training_log_likelihood"].isel(draw=slice(0, 3)).values
    np.testing.assert_allclose(stat, total, rtol=1e-9)


# -------------------------------------------------------------------------------------------
# contract, determinism, errors
# -------------------------------------------------------------------------------------------
def test_same_groups_and_dims_as_nuts(nuts_fit, gibbs_fit, tmp_path, data):
    assert CORE_GROUPS <= set(gibbs_fit.children)
    assert gibbs_fit.attrs["method"] == "gibbs" and gibbs_fit.attrs["bayesrec_model"] == "bpmf"
    post = gibbs_fit["posterior"].to_dataset()
    assert not any("obs" in post[v].dims for v in post.data_vars)
    nuts_post = nuts_fit["posterior"].to_dataset()
    shared = set(post.data_vars) & set(nuts_post.data_vars)
    assert {"user_factors", "item_factors", "user_factor_sd", "sigma", "bias_sd"} <= shared
    for var in shared:
        assert post[var].dims == nuts_post[var].dims, var
    assert {"training_log_likelihood", "diverging"} & set(gibbs_fit["sample_stats"].data_vars)
    path = save_fit(gibbs_fit, tmp_path / "gibbs.nc")
    loaded = load_fit(path)
    a = predict(gibbs_fit, pairs=data.test, random_seed=1, max_draws=100)
    b = predict(loaded, pairs=data.test, random_seed=1, max_draws=100)
    np.testing.assert_array_equal(a["mean"].values, b["mean"].values)
    rec = recommend(loaded, data.train.users[:2].to_numpy(), n=3)
    assert rec.sizes == {"user": 2, "rank": 3}


def test_same_seed_same_draws(data):
    model = build_model("pmf", data.train, n_factors=2)
    a = fit(model, "gibbs", random_seed=7, draws=30, tune=10)
    b = fit(model, "gibbs", random_seed=7, draws=30, tune=10)
    xr.testing.assert_equal(a["posterior"].to_dataset(), b["posterior"].to_dataset())
    c = fit(model, "gibbs", random_seed=8, draws=30, tune=10)
    assert not a["posterior"]["user_factors"].equals(c["posterior"]["user_factors"])


def test_a_non_centred_model_is_sampled_through_its_centred_twin(data):
    """The same chain as the centred model's (same seed), as draws of the non-centred
    variables: z = L^{-1} (U - mu) for every draw, and U = mu + L z back."""
    kwargs = {"random_seed": 5, "draws": 20, "tune": 10, "chains": 2}
    centred = fit(build_model("bpmf", data.train, n_factors=2, parameterisation="centered"),
                  "gibbs", **kwargs)
    plain = build_model("bpmf", data.train, n_factors=2)
    f = fit(plain, "gibbs", **kwargs)
    post, ref = f["posterior"].to_dataset(), centred["posterior"].to_dataset()
    assert "user_factors_std" in post and "user_factors_std" not in ref
    assert json.loads(f.attrs["bayesrec_config"])["parameterisation"] == "noncentered"
    for name in ("user_factors", "item_factors", "user_factor_chol", "sigma", "bias_sd"):
        np.testing.assert_array_equal(post[name].values, ref[name].values)
    for side in ("user", "item"):
        z = post[f"{side}_factors_std"].values
        mean = post[f"{side}_factor_mean"].values
        rows, cols = np.tril_indices(2)
        chol = np.zeros((*mean.shape[:2], 2, 2))
        chol[..., rows, cols] = post[f"{side}_factor_chol"].values
        rebuilt = mean[:, :, None, :] + np.einsum("cdkl,cdul->cduk", chol, z)
        np.testing.assert_allclose(rebuilt, post[f"{side}_factors"].values, atol=1e-10)
    # and the model's own graph agrees: predictions from z, mean and L equal the twin's
    a = predict(f, pairs=data.test, keep_draws=False)["mean"].values
    b = predict(centred, pairs=data.test, keep_draws=False)["mean"].values
    np.testing.assert_allclose(a, b, rtol=1e-10)


def test_recommender_through_the_registry(data):
    rec = make_recommender("bpmf", "gibbs", fast=True, random_seed=0).fit(data.train)
    assert rec.fit_.attrs["method"] == "gibbs"
    # the method does not change the model: the factory's default parameterisation
    assert '"parameterisation": "noncentered"' in rec.fit_.attrs["bayesrec_config"]
    pred = rec.predict_ratings(data.test)
    assert np.isfinite(pred["mean"].values).all()


def test_bad_input_raises(data):
    pmf = build_model("pmf", data.train, n_factors=2)
    with pytest.raises(InputError, match=r"unknown option\(s\) \['sweeps'\] for method 'gibbs'"):
        fit(pmf, "gibbs", sweeps=10)
    with pytest.raises(InputError, match="hyper must be one of"):
        fit(pmf, "gibbs", hyper="slice")
    with pytest.raises(InputError, match="link='identity'"):
        fit(build_model("pmf", data.train, n_factors=2, link="logistic"), "gibbs")
    with pytest.raises(InputError, match="needs a model whose spec declares a factor structure"):
        fit(pm.do(pmf, {"sigma": 0.9}), "gibbs")  # an edited model: no spec, no structure


@pytest.mark.slow
def test_nuts_hyper_step_agrees_with_the_exact_one(gibbs_fit, data):
    """The Markov-blanket NUTS alternative for the hyperparameters (slow: it compiles)."""
    model = build_model("bpmf", data.train, n_factors=2, parameterisation="centered")
    other = fit(model, "gibbs", random_seed=4, draws=1500, tune=300, hyper="nuts", moves=False)
    for var in ("user", "item", "sigma", "bias_sd"):
        assert _agree(_norms(other)[var], _norms(gibbs_fit)[var]), var


def test_parallel_chains_get_one_blas_thread_each():
    """With chains in parallel processes (forked on Linux, where PyMC's own blas_cores limit
    does not apply), the Gibbs sampler caps BLAS at one thread while it samples; one
    chain or one core leaves BLAS alone."""
    from threadpoolctl import threadpool_info

    from bayesrec.inference.gibbs import _one_blas_thread_per_chain

    def blas_threads():
        return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]

    before = blas_threads()
    with _one_blas_thread_per_chain(2, 2):
        assert all(n == 1 for n in blas_threads())
    assert blas_threads() == before
    with _one_blas_thread_per_chain(1, 2):
        assert blas_threads() == before
