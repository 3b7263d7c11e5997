"""MPMA: the factory against PMF and a hand computation, the clusters, responsibilities.

What is not here: recovery of the mixture weights and noise scales from simulated
data.  Neither MAP nor NUTS recovers them yet on the small simulations we tried
(see the MPMA issue's closing note), and a test that is made to pass is worse
than none.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from bayesrec import InputError
from bayesrec.inference import fit, predict
from bayesrec.models import build_model
from bayesrec.models.mpma_tools import kmeans, mpma_clusters, responsibilities, simulate_mpma


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
    pred = predict(posterior, users=ratings.users[:4], items=ratings.items[:4], random_seed=1)
    assert pred["rating"].dims == ("chain", "draw", "pair")
    assert list(pred["user"].values) == list(ratings.users[:4])
    assert np.isfinite(pred["mean"].values).all()
