"""MPMA: the factory against PMF and a hand computation, the clusters, responsibilities,
and recovery of the mixture weights and noise scales from simulated data.

Recovery is tested given the component means (the simulation's factor matrices held
at their true values with :func:`pymc.do`; the weights, noise scales, biases and
offset are fitted).  Joint recovery with the factors learned is not tested because
no fit achieves it: on 100 x 80 dense simulated ratings (K = 1, sigmas 0.15 / 0.3 /
0.6) the MAP started at the truth stays there (weights 0.49 / 0.30 / 0.21, sigmas
0.14 / 0.27 / 0.53, log posterior -6,918), but the best of 24 MAP restarts from prior
draws reaches -8,515 with the components' roles exchanged, and ADVI and NUTS from the
prior also settle in such modes (a local component takes the global ratings, or one
stays switched off).  See ``benchmarks/README.md``.
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytest
from scipy.stats import norm

from bayesrec import InputError
from bayesrec.data.simulate import simulate_mpma
from bayesrec.diagnostics.mpma import responsibilities
from bayesrec.inference import fit, predict
from bayesrec.models import build_model
from bayesrec.models.mpma_clusters import kmeans, mpma_clusters


@pytest.fixture(scope="module")
def sim():
    return simulate_mpma(30, 24, 400, n_factors=2, seed=3)


def _random_point(model, rng):
    return {k: rng.normal(0.0, 0.4, np.shape(v)) for k, v in model.initial_point().items()}


def test_one_global_component_is_pmf(sim):
    ratings, _ = sim
    mpma = build_model("mpma", ratings, n_factors=2, components=("global",),
                       noise_prior="halfnormal")
    pmf = build_model("pmf", ratings, n_factors=2)
    assert set(mpma.initial_point()) == set(pmf.initial_point())
    rng = np.random.default_rng(0)
    lp_mpma, lp_pmf = mpma.compile_logp(), pmf.compile_logp()
    for _ in range(3):
        point = _random_point(pmf, rng)
        as_mpma = {**point, "sigma_log__": np.reshape(point["sigma_log__"], (1,))}  # dim component
        np.testing.assert_allclose(lp_mpma(as_mpma), lp_pmf(point), rtol=1e-10)


def test_mixture_logp_matches_a_hand_computation(sim):
    ratings, truth = sim
    model = build_model("mpma", ratings, n_factors=2, n_user_clusters=2, n_item_clusters=2,
                        user_clusters=truth["user_clusters"],
                        item_clusters=truth["item_clusters"])
    point = _random_point(model, np.random.default_rng(1))
    outs = model.replace_rvs_by_values([model["component_mu"], model["weights"], model["sigma"]])
    mu, weights, sigma = model.compile_fn(outs, inputs=model.value_vars, on_unused_input="ignore",
                                          point_fn=False)(*[point[v.name] for v in model.value_vars])
    by_hand = np.log((weights * norm.pdf(ratings.rating[:, None], mu, sigma)).sum(1)).sum()
    logp = model.compile_logp(vars=[model["rating"]], jacobian=False)(point)
    np.testing.assert_allclose(logp, by_hand, rtol=1e-9, err_msg=f"{weights} {sigma}")


def test_model_has_labelled_dims(sim):
    ratings, truth = sim
    model = build_model("mpma", ratings, n_factors=2, n_user_clusters=2, n_item_clusters=2)
    assert list(model.coords["component"]) == ["global", "user_local", "item_local"]
    assert model.named_vars_to_dims["user_local_item_factors"] == (
        "user_cluster", "item", "factor")
    assert model.named_vars_to_dims["item_local_user_factors"] == (
        "item_cluster", "user", "factor")
    assert list(model.coords["user"]) == list(ratings.users)


def test_clusters_are_deterministic_and_use_every_label(sim):
    ratings, _ = sim
    a = mpma_clusters(ratings, 3, 2, seed=5)
    b = mpma_clusters(ratings, 3, 2, seed=5)
    for x, y, k in zip(a, b, (3, 2), strict=True):
        np.testing.assert_array_equal(x, y)
        sizes = np.bincount(x, minlength=k)
        assert (sizes > 0).all() and (np.diff(sizes) <= 0).all()


def test_kmeans_finds_separated_blobs():
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [5.0, 5.0], [-5.0, 5.0]])
    truth = np.repeat([0, 1, 2], [30, 20, 10])
    x = centres[truth] + rng.normal(0, 0.3, (60, 2))
    labels = kmeans(x, 3, seed=1)
    np.testing.assert_array_equal(labels, truth)  # labels numbered by decreasing size


def test_bad_clusters_are_named(sim):
    ratings, _ = sim
    with pytest.raises(InputError, match="user_clusters must lie in"):
        build_model("mpma", ratings, n_user_clusters=2, n_item_clusters=2,
                    user_clusters=np.full(ratings.n_users, 2),
                    item_clusters=np.zeros(ratings.n_items, int))
    with pytest.raises(InputError, match="give both"):
        build_model("mpma", ratings, user_clusters=np.zeros(ratings.n_users, int))
    with pytest.raises(InputError, match="components must be"):
        build_model("mpma", ratings, components=("global", "nonsense"))


def test_responsibilities_sum_to_one_and_predictions_are_labelled(sim):
    ratings, truth = sim
    model = build_model("mpma", ratings, n_factors=2, n_user_clusters=2, n_item_clusters=2,
                        user_clusters=truth["user_clusters"],
                        item_clusters=truth["item_clusters"])
    posterior = fit(model, "map", random_seed=0, maxiter=200)
    resp = responsibilities(posterior)
    assert resp.dims == ("pair", "component")
    np.testing.assert_allclose(resp.sum("component").values, 1.0, rtol=1e-9)
    pred = predict(posterior, users=ratings.users[:4], items=ratings.items[:4], random_seed=1,
                   keep_draws=True)
    assert pred["rating"].dims == ("chain", "draw", "pair")
    assert list(pred["user"].values) == list(ratings.users[:4])
    assert np.isfinite(pred["mean"].values).all()


@pytest.fixture(scope="module")
def mixture():
    """Three separated components (60 x 50 users x items, 2,500 ratings, K = 2), the
    model given the true clusters and the true factor matrices."""
    ratings, truth = simulate_mpma(60, 50, 2500, n_factors=2, factor_sd=1.0,
                                   weights=(0.5, 0.3, 0.2), sigmas=(0.2, 0.5, 1.0), seed=1)
    model = build_model("mpma", ratings, n_factors=2, n_user_clusters=2, n_item_clusters=2,
                        user_clusters=truth["user_clusters"],
                        item_clusters=truth["item_clusters"])
    factors = {model[k]: v for k, v in truth["params"].items() if k.endswith("_factors")}
    assert len(factors) == 6
    return pm.do(model, factors), truth


@pytest.mark.parametrize("method, options", [
    ("map", {"init": "initial_point"}),
    pytest.param("nuts", {"draws": 300, "tune": 300, "chains": 2}, marks=pytest.mark.agreement),
])
def test_weights_and_scales_are_recovered_given_the_component_means(mixture, method, options):
    """Tolerances: weights within 0.04 (the components' shares of 2,500 ratings have a
    binomial sd of about 0.01), noise scales within 12 % (the MAP's are biased low by
    the 110 bias parameters it fits, about 8 % for the smallest); for NUTS also the
    truth within four posterior sds."""
    model, truth = mixture
    post = fit(model, method, random_seed=0, **options)["posterior"].to_dataset()
    w, s = post["weights"], post["sigma"]
    assert w.dims[-1] == s.dims[-1] == "component"
    np.testing.assert_allclose(w.mean(("chain", "draw")).values, truth["weights"], atol=0.04)
    np.testing.assert_allclose(s.mean(("chain", "draw")).values, truth["sigmas"], rtol=0.12)
    if method == "nuts":
        for est, true in ((w, truth["weights"]), (s, truth["sigmas"])):
            z = (est.mean(("chain", "draw")).values - true) / est.std(("chain", "draw")).values
            assert np.all(np.abs(z) < 4), z
