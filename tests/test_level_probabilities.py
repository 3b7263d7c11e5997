"""Every prediction on a discrete scale carries level probabilities ``prob``, and
``metrics.score`` gives the log predictive density (``lpd``) of the true levels.

For a continuous likelihood the probability of a level is the predictive mass of its
interval between the midpoints of adjacent levels (the ends take the tails): checked
here against the Normal (and for MPMA, the Normal mixture) computed by hand from the
posterior, so a test can fail on a wrong edge, a wrong scale or a missing tail.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from bayesrec import Ratings
from bayesrec.data.scale import RatingScale
from bayesrec.data.simulate import simulate_ratings
from bayesrec.data.splits import holdout
from bayesrec.inference import fit, predict
from bayesrec.inference.draws import evaluate_draws
from bayesrec.metrics import log_predictive_density, score
from bayesrec.models import build_model, list_models
from bayesrec.predictions import from_probabilities, normal_level_probabilities
from bayesrec.recommenders import make_recommender


@pytest.fixture(scope="module")
def split():
    ratings, _ = simulate_ratings(n_users=40, n_items=30, n_ratings=700, seed=3)
    return holdout(ratings, 0.2, seed=1)


def test_scale_edges_are_midpoints():
    np.testing.assert_allclose(RatingScale.integers(1, 5).edges, [1.5, 2.5, 3.5, 4.5])
    np.testing.assert_allclose(RatingScale.stars(0.5, 2.0).edges, [0.75, 1.25, 1.75])


def test_normal_level_probabilities_are_interval_masses():
    scale = RatingScale.integers(1, 5)
    prob = normal_level_probabilities([3.2, 5.6, 1.0], [0.7, 0.3, 0.0], scale)
    edges = np.array([-np.inf, 1.5, 2.5, 3.5, 4.5, np.inf])
    want = np.diff(stats.norm.cdf(edges, 3.2, 0.7))
    np.testing.assert_allclose(prob[0], want, rtol=1e-12)
    assert prob[1].argmax() == 4 and prob[1, 4] > 0.99  # above the top: the top level
    np.testing.assert_array_equal(prob[2], [1, 0, 0, 0, 0])  # sd 0: the level of the mean
    np.testing.assert_allclose(prob.sum(1), 1.0)


@pytest.mark.parametrize("name", [
    pytest.param(s.name, marks=pytest.mark.agreement) if s.name == "mpma" else s.name
    for s in list_models()])  # MPMA's fast MAP takes 30-90 s; its mass is checked below
def test_every_registered_model_predicts_level_probabilities(split, name):
    """Baselines and Bayesian models alike: ``prob`` sums to one on every pair, the mode
    is its most probable level, and ``lpd`` is finite and better than guessing."""
    rec = make_recommender(name, fast=True, random_seed=1).fit(split.train)
    pred = rec.predict(split.test.user_ids, split.test.item_ids)
    prob = pred["prob"].transpose("pair", "rating_level").values
    np.testing.assert_allclose(prob.sum(1), 1.0, atol=1e-9)
    assert (prob >= 0).all()
    if name != "uniform":  # its point prediction is a random draw, by design
        np.testing.assert_array_equal(pred["mode"].values,
                                      np.asarray(split.test.scale.levels)[prob.argmax(1)])
    lpd = score(pred, split.test)["lpd"]
    assert np.isfinite(lpd)
    if name not in ("uniform",):
        assert lpd > np.log(1 / 5), (name, lpd)


def test_gaussian_fit_probabilities_are_the_normal_mass_given_each_draw(split):
    """A MAP point fit: ``prob`` is exactly the plug-in Normal(mu, sigma)'s interval mass."""
    f = fit(build_model("pmf", split.train, n_factors=2), "map", random_seed=2)
    pred = predict(f, pairs=split.test)
    mu = evaluate_draws(f, split.test.user_ids, split.test.item_ids)["mu"]
    mu = mu.isel(chain=0, draw=0).values
    sigma = float(f["posterior"]["sigma"].isel(chain=0, draw=0))
    want = normal_level_probabilities(mu, sigma, split.test.scale)
    np.testing.assert_allclose(pred["prob"].values, want, rtol=1e-6, atol=1e-9)  # PyTensor's erfcx: ~1e-7 relative


def test_posterior_probabilities_average_the_mass_of_every_draw(split):
    f = fit(build_model("pmf", split.train, n_factors=2), "advi", n=400, draws=50,
            random_seed=2)
    users, items = split.test.user_ids[:20], split.test.item_ids[:20]
    pred = predict(f, users=users, items=items)
    mu = evaluate_draws(f, users, items)["mu"].stack(s=("chain", "draw"))
    sigma = f["posterior"]["sigma"].stack(s=("chain", "draw")).values
    want = np.mean([normal_level_probabilities(mu.values[:, s], sigma[s], split.test.scale)
                    for s in range(len(sigma))], axis=0)
    np.testing.assert_allclose(pred["prob"].values, want, rtol=1e-6, atol=1e-9)  # PyTensor's erfcx: ~1e-7 relative


def test_mpma_probabilities_are_the_mixture_mass(split):
    f = fit(build_model("mpma", split.train, n_factors=2), "map", random_seed=2)
    users, items = split.test.user_ids[:15], split.test.item_ids[:15]
    pred = predict(f, users=users, items=items)
    out = evaluate_draws(f, users, items, var_names=("component_mu",))["component_mu"]
    comp = out.isel(chain=0, draw=0).values  # (pair, component)
    post = f["posterior"].isel(chain=0, draw=0)
    w, s = post["weights"].values, post["sigma"].values
    edges = np.r_[-np.inf, split.test.scale.edges, np.inf]
    cdf = (w * stats.norm.cdf(edges[:, None, None], comp, s)).sum(-1)  # (edge, pair)
    np.testing.assert_allclose(pred["prob"].values, np.diff(cdf, axis=0).T, rtol=1e-6,
                               atol=1e-9)


def test_log_predictive_density_is_the_mean_log_probability_of_the_true_level():
    scale = RatingScale.integers(1, 3)
    test = Ratings.from_arrays([1, 2], [1, 1], [1, 3], scale=scale)
    prob = np.array([[0.5, 0.25, 0.25], [0.1, 0.1, 0.8]])
    pred = from_probabilities(test.user_ids, test.item_ids, prob, scale)
    assert log_predictive_density(pred, test) == pytest.approx(np.mean(np.log([0.5, 0.8])))
    assert score(pred, test)["accuracy"] == pytest.approx(1.0)


def test_a_continuous_scale_has_no_level_probabilities():
    ratings, _ = simulate_ratings(n_users=20, n_items=15, n_ratings=200, seed=1, scale=None)
    rec = make_recommender("biases").fit(ratings)
    pred = rec.predict(ratings.user_ids[:5], ratings.item_ids[:5])
    assert "prob" not in pred
    assert np.isnan(log_predictive_density(pred, ratings.subset(np.arange(5))))


def test_levels_far_in_a_tail_keep_their_tiny_probability():
    """Found before: PMF MAP on MovieLens u1 scored lpd -inf, since a level far in the
    upper tail got 1 - 1 = 0; masses above the centre come from the survival function."""
    scale = RatingScale.integers(1, 5)
    prob = normal_level_probabilities([1.5], [0.2], scale)[0]
    want = [stats.norm.sf(3.5, 1.5, 0.2) - stats.norm.sf(4.5, 1.5, 0.2),
            stats.norm.sf(4.5, 1.5, 0.2)]
    np.testing.assert_allclose(prob[3:], want, rtol=1e-9)
    assert (prob > 0).all()


def _forecast(prob, seed=0):
    """Test ratings drawn from the level probabilities ``prob (pair, level)``, and the
    prediction that states exactly those probabilities."""
    rng = np.random.default_rng(seed)
    scale = RatingScale.integers(1, 5)
    levels = np.asarray(scale.levels, dtype=float)
    cum = np.cumsum(prob, axis=1)
    rating = levels[(rng.random(len(prob))[:, None] > cum).sum(1)]
    users, items = np.arange(len(prob)), np.zeros(len(prob), dtype=int)
    test = Ratings.from_arrays(users, items, rating, scale=scale)
    return from_probabilities(users, items, prob, scale), test


def test_level_reliability_of_calibrated_and_overconfident_probabilities():
    from bayesrec.diagnostics import level_reliability, plot_level_reliability

    rng = np.random.default_rng(4)
    prob = rng.dirichlet(np.full(5, 0.7), size=20_000)
    honest, test = _forecast(prob)
    table = level_reliability(honest, test)
    keep = table["count"].values > 0
    z = (table["observed"] - table["predicted"]).values[keep] / table["se"].values[keep]
    assert np.all(np.abs(z) < 4), z                       # calibrated: within noise per bin
    assert table.attrs["ece"] < 0.01
    assert table["count"].sum() == prob.size              # every (rating, level) counted once
    # The same ratings told with sharpened probabilities: confident levels come true
    # less often than stated.
    sharp = prob ** 3 / (prob ** 3).sum(1, keepdims=True)
    over, _ = _forecast(sharp)
    over_table = level_reliability(over, test)
    top = over_table.sel(bin=0.95)
    assert top["observed"] < top["predicted"] - 4 * top["se"]
    assert over_table.attrs["ece"] > 0.05
    fig = plot_level_reliability({"honest": table, "sharpened": over_table})
    assert "ECE" in fig.axes[0].get_legend().get_texts()[1].get_text()


def test_level_reliability_needs_level_probabilities(split):
    from bayesrec.diagnostics import level_reliability
    from bayesrec.errors import InputError

    pred = make_recommender("uniform").fit(split.train).predict_ratings(split.test)
    table = level_reliability(pred, split.test, bins=8)   # 1/8 and 1/4: the scale's ends
    assert table["count"].sum() == 5 * len(split.test)   # take half a middle level's mass
    with pytest.raises(InputError, match="level probabilities"):
        level_reliability(pred.drop_vars("prob"), split.test)
