"""Ordinal likelihoods: the ordered-probit Gibbs sampler, recovery, scales, prediction.

* The sampler's pieces against exact values: level log-probabilities against the
  model's graph (``ordinal_log_probs``), the truncated-normal latent draws against
  SciPy's truncated normal, the cutpoint step against its conditional by quadrature
  (one cutpoint), the bias-cutpoint translation keeping the likelihood,
  the ``training_log_likelihood`` statistic against ``pm.compute_log_likelihood``.
* Recovery from :func:`~bayesrec.data.simulate.simulate_ordinal_ratings` (MAP; NUTS
  in the agreement group); Gibbs against NUTS on posterior means of the cutpoints and
  of predicted level probabilities, within Monte Carlo standard errors (agreement).
* Same seed same draws; the ordered logit refused by Gibbs; half-star and 1..10
  scales; ``predict`` and ``metrics.score`` on an ordinal fit.
"""

from __future__ import annotations

import arviz as az
import numpy as np
import pymc as pm
import pytest
import xarray as xr
from scipy import special, stats

from bayesrec import InputError, Ratings
from bayesrec.data.simulate import simulate_ordinal_ratings, true_level_probs
from bayesrec.data.splits import holdout
from bayesrec.inference import fit, fold_in, predict, ratings_from_fit
from bayesrec.inference.gibbs import gibbs_steps, layout_of
from bayesrec.inference.gibbs.kernels import probit_level_log_probs
from bayesrec.inference.gibbs.ordinal import OrdinalProbit, draw_latent
from bayesrec.metrics import score
from bayesrec.models import build_model
from bayesrec.models._blocks import ordinal_log_probs


@pytest.fixture(scope="module")
def small():
    """400 ratings: for the exact checks and the short chains."""
    ratings, truth = simulate_ordinal_ratings(30, 25, 400, n_factors=1, seed=3)
    return ratings, truth


@pytest.fixture(scope="module")
def medium():
    """3,000 ratings held out 20 %: recovery and agreement."""
    ratings, truth = simulate_ordinal_ratings(100, 80, 3000, n_factors=2, seed=1)
    return holdout(ratings, 0.2, seed=2), truth


def _true_probs(truth, ratings):
    """True level probabilities of ``ratings``' pairs (simulated ids are codes + 1)."""
    users = np.asarray(ratings.users)[ratings.user] - 1
    items = np.asarray(ratings.items)[ratings.item] - 1
    return true_level_probs(truth, users, items)


# -------------------------------------------------------------------------------------------
# the pieces against exact values
# -------------------------------------------------------------------------------------------
def test_level_log_probs_match_the_models_graph():
    rng = np.random.default_rng(0)
    cut = np.array([-1.2, -0.3, 0.4, 1.9])
    eta = np.concatenate([rng.normal(0, 2, 200), [-30.0, 30.0, 8.0, -8.0, 3.0]])
    code = np.concatenate([rng.integers(0, 5, 200), [4, 0, 1, 3, 4]])
    got = probit_level_log_probs(eta, code, cut)
    bounds = np.r_[-np.inf, cut, np.inf]
    upper, lower = bounds[code + 1] - eta, bounds[code] - eta
    # SciPy, on the side where the difference does not cancel
    flip = lower > 0
    exact = np.log(np.where(flip, special.ndtr(-lower) - special.ndtr(-upper),
                            special.ndtr(upper) - special.ndtr(lower)))
    np.testing.assert_allclose(got, exact, rtol=1e-12, atol=1e-13)
    assert np.all(np.isfinite(got))  # 30 sd out stays finite (no cancellation)
    # the model's graph (PyMC's log_diff_normal_cdf is accurate to about 1e-8)
    graph = ordinal_log_probs(eta, cut, "ordered_probit").eval()[np.arange(len(eta)), code]
    np.testing.assert_allclose(got, graph, rtol=1e-6)


@pytest.mark.parametrize("lower, upper", [(-np.inf, -1.0), (0.5, 1.5), (3.0, np.inf),
                                          (6.0, 6.5), (-9.0, -8.0), (-0.2, 0.1)])
def test_latent_draws_are_the_truncated_normal(lower, upper):
    eta = 0.3
    z = draw_latent(np.random.default_rng(1), np.full(4000, eta), np.full(4000, lower),
                    np.full(4000, upper))
    assert np.all((z >= lower) & (z <= upper))
    law = stats.truncnorm(lower - eta, upper - eta, loc=eta)
    assert stats.kstest(z, law.cdf).pvalue > 1e-3


def test_cutpoint_step_exact_on_one_cutpoint():
    """Two levels, one cutpoint: the chain's mean and sd against quadrature exactly."""
    ratings, _ = simulate_ordinal_ratings(30, 25, 400, n_factors=1, scale=[1, 2],
                                          cutpoints=[0.2], seed=6)
    model = build_model("pmf", ratings, n_factors=1, likelihood="ordered_probit")
    layout = layout_of(model)
    step = OrdinalProbit([model.rvs_to_values[model["cutpoints"]]], layout, model=model,
                         rng=np.random.default_rng(7))
    eta = np.random.default_rng(8).normal(0, 0.5, ratings.n_ratings)
    cut, draws = np.array([0.0]), []
    for _ in range(8000):
        cut, _ = step._update_cutpoints(eta, cut)
        draws.append(cut[0])
    draws = np.array(draws[500:])
    grid = np.linspace(-2, 2, 8001)
    logp = np.array([probit_level_log_probs(eta, layout.level_code, np.array([g])).sum()
                     for g in grid])
    logp += -((grid - layout.priors["cutpoint_mean"][0]) ** 2) / (
        2 * layout.priors["cutpoint_sd"][0] ** 2)
    w = np.exp(logp - logp.max())
    w /= w.sum()
    q_mean = (w * grid).sum()
    q_sd = np.sqrt((w * (grid - q_mean) ** 2).sum())
    se = float(az.mcse(draws[None, :], method="mean"))
    assert abs(draws.mean() - q_mean) < 4 * se, (draws.mean(), q_mean, se)
    assert draws.std() == pytest.approx(q_sd, rel=0.1)


# -------------------------------------------------------------------------------------------
# Gibbs: statistics, determinism, refusals
# -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def gibbs_small(small):
    ratings, _ = small
    model = build_model("bpmf", ratings, n_factors=2, likelihood="ordered_probit")
    return fit(model, "gibbs", random_seed=2, draws=60, tune=30, chains=1)


def test_gibbs_posterior_has_every_free_variable_and_the_statistics(gibbs_small, small):
    ratings, _ = small
    model = build_model("bpmf", ratings, n_factors=2, likelihood="ordered_probit")
    post = gibbs_small["posterior"].to_dataset()
    assert {rv.name for rv in model.free_RVs} <= set(post.data_vars)
    assert "offset" not in post and "sigma" not in post
    assert post["cutpoints"].dims == ("chain", "draw", "cutpoint")
    assert list(post["cutpoint"].values) == ["1|2", "2|3", "3|4", "4|5"]
    assert np.all(post["cutpoints"].diff("cutpoint") > 0)
    acc = gibbs_small["sample_stats"]["cutpoint_acceptance"]
    assert 0.15 < float(acc.mean()) < 0.8


def test_log_likelihood_statistic_is_the_ordinal_one(gibbs_small, small):
    sub = gibbs_small["posterior"].to_dataset().isel(draw=slice(0, 3))
    model = build_model("bpmf", ratings_from_fit(gibbs_small), n_factors=2,
                        likelihood="ordered_probit", parameterisation="centered")
    ll = pm.compute_log_likelihood(xr.DataTree.from_dict({"posterior": sub}), model=model,
                                   extend_inferencedata=False, progressbar=False)
    ds = ll["log_likelihood"].to_dataset() if isinstance(ll, xr.DataTree) else ll
    total = ds["rating"].sum("obs").values
    stat = gibbs_small["sample_stats"]["training_log_likelihood"].isel(draw=slice(0, 3)).values
    np.testing.assert_allclose(stat, total, rtol=1e-7)  # the graph's probit: ~1e-8


def test_same_seed_same_draws(small):
    ratings, _ = small
    model = build_model("pmf", ratings, n_factors=1, likelihood="ordered_probit")
    a = fit(model, "gibbs", random_seed=7, draws=20, tune=10, chains=1)
    b = fit(model, "gibbs", random_seed=7, draws=20, tune=10, chains=1)
    xr.testing.assert_equal(a["posterior"].to_dataset(), b["posterior"].to_dataset())
    c = fit(model, "gibbs", random_seed=8, draws=20, tune=10, chains=1)
    assert not a["posterior"]["cutpoints"].equals(c["posterior"]["cutpoints"])


@pytest.mark.parametrize("name", ["pmf", "bpmf"])
def test_ordered_logit_is_refused_by_gibbs(small, name):
    ratings, _ = small
    model = build_model(name, ratings, n_factors=2, likelihood="ordered_logit")
    with pytest.raises(InputError, match=r"ordered_logit.*nuts', 'advi' or 'map'"):
        fit(model, "gibbs", draws=5, tune=5)
    with pytest.raises(InputError, match="ordered_logit"):
        gibbs_steps(model)


def test_fold_in_refuses_an_ordinal_fit(gibbs_small, small):
    ratings, _ = small
    newcomer = Ratings.from_arrays(["new", "new"], ratings.items[:2].to_numpy(), [1, 5],
                                   scale=ratings.scale)
    with pytest.raises(InputError, match="fold-in does not support likelihood='ordered_probit'"):
        fold_in(gibbs_small, newcomer)


def test_the_translation_keeps_every_cutpoint_minus_eta(small):
    ratings, _ = small
    model = build_model("pmf", ratings, n_factors=1, likelihood="ordered_probit")
    layout = layout_of(model)
    step = OrdinalProbit([model.rvs_to_values[model["cutpoints"]]], layout, model=model,
                         rng=np.random.default_rng(0))
    rng = np.random.default_rng(1)
    point = {k: rng.normal(0, 0.5, np.shape(v)) for k, v in model.initial_point().items()}
    from bayesrec.inference.gibbs.steps import ordinal_eta

    before = layout.cutpoints(point)[None, :] - ordinal_eta(layout, point)[:, None]
    cut = step._translate(point, layout.cutpoints(point))
    after = cut[None, :] - ordinal_eta(layout, point)[:, None]
    np.testing.assert_allclose(after, before, atol=1e-12)
    assert not np.allclose(cut, layout.cutpoints(point))


# -------------------------------------------------------------------------------------------
# recovery, scales, prediction (MAP: fast)
# -------------------------------------------------------------------------------------------
def test_map_recovers_cutpoints_and_level_probabilities(medium):
    split, truth = medium
    model = build_model("pmf", split.train, n_factors=2, likelihood="ordered_probit")
    dt = fit(model, "map", random_seed=0)
    cut = dt["posterior"]["cutpoints"].values.ravel()
    np.testing.assert_allclose(cut, truth["cutpoints"].values, atol=0.2)
    pred = predict(dt, pairs=split.test, random_seed=0)
    true_prob = _true_probs(truth, split.test)
    got = pred["prob"].transpose("pair", "rating_level").values
    assert np.abs(got - true_prob).mean() < 0.07
    # better than the marginal level frequencies (0.095 here; MAP's plug-in overfits)
    marginal = np.bincount(split.train.level_codes, minlength=5) / split.train.n_ratings
    assert np.abs(got - true_prob).mean() < 0.75 * np.abs(marginal - true_prob).mean()


@pytest.mark.parametrize("scale", [list(np.arange(1, 11)), list(np.arange(0.5, 5.01, 0.5))],
                         ids=["1..10", "half stars"])
def test_other_scales_by_map(scale):
    n_cut = len(scale) - 1
    ratings, truth = simulate_ordinal_ratings(80, 60, 2500, n_factors=1, scale=scale,
                                              cutpoints=np.linspace(-1.8, 1.8, n_cut), seed=4)
    split = holdout(ratings, 0.2, seed=0)
    model = build_model("pmf", split.train, n_factors=1, likelihood="ordered_probit")
    assert len(model.coords["rating_level"]) == len(scale)
    dt = fit(model, "map", random_seed=0)
    cut = dt["posterior"]["cutpoints"].values.ravel()
    assert np.all(np.diff(cut) > 0)
    np.testing.assert_allclose(cut, truth["cutpoints"].values, atol=0.35)
    pred = predict(dt, pairs=split.test, random_seed=0)
    np.testing.assert_allclose(pred["prob"].sum("rating_level").values, 1.0, atol=1e-9)
    np.testing.assert_allclose(pred["rating_level"].values, scale)
    assert np.isfinite(score(pred, split.test)["lpd"])


def test_predict_prob_and_lpd_on_a_gibbs_fit(medium):
    split, truth = medium
    model = build_model("bpmf", split.train, n_factors=2, likelihood="ordered_probit")
    dt = fit(model, "gibbs", random_seed=0, draws=100, tune=100, chains=1)
    pred = predict(dt, pairs=split.test, random_seed=0)
    prob = pred["prob"].transpose("pair", "rating_level").values
    np.testing.assert_allclose(prob.sum(axis=1), 1.0, atol=1e-9)
    scores = score(pred, split.test)
    assert np.isfinite(scores["lpd"])
    # better than predicting the training frequencies for every pair
    freq = np.bincount(split.train.level_codes, minlength=5) / split.train.n_ratings
    assert scores["lpd"] > np.log(freq[split.test.level_codes]).mean() + 0.05
    true_prob = _true_probs(truth, split.test)
    assert np.abs(prob - true_prob).mean() < 0.06


# -------------------------------------------------------------------------------------------
# agreement with NUTS (long)
# -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def nuts_medium(medium):
    split, _ = medium
    return fit(build_model("bpmf", split.train, n_factors=2, likelihood="ordered_probit"),
               "nuts", random_seed=3, draws=500, tune=500, chains=2)


@pytest.fixture(scope="module")
def gibbs_medium(medium):
    split, _ = medium
    return fit(build_model("bpmf", split.train, n_factors=2, likelihood="ordered_probit"),
               "gibbs", random_seed=3, draws=1500, tune=300, chains=2)


@pytest.mark.agreement
def test_nuts_recovers_the_cutpoints(nuts_medium, medium):
    _, truth = medium
    post = nuts_medium["posterior"]["cutpoints"]
    lo, hi = post.quantile([0.005, 0.995], dim=("chain", "draw")).values
    true = truth["cutpoints"].values
    assert np.all((lo - 0.1 < true) & (true < hi + 0.1)), (lo, hi, true)


@pytest.mark.agreement
def test_gibbs_agrees_with_nuts(nuts_medium, gibbs_medium, medium):
    split, _ = medium
    n_cut, g_cut = nuts_medium["posterior"]["cutpoints"], gibbs_medium["posterior"]["cutpoints"]
    se = np.hypot(az.mcse(n_cut, method="mean").values, az.mcse(g_cut, method="mean").values)
    diff = np.abs(n_cut.mean(("chain", "draw")).values - g_cut.mean(("chain", "draw")).values)
    assert np.all(diff < 4 * se), (diff, se)
    np.testing.assert_allclose(g_cut.std(("chain", "draw")).values,
                               n_cut.std(("chain", "draw")).values, rtol=0.3)
    # predicted level probabilities of held-out pairs: per-draw values through the model
    test = split.test.subset(np.arange(60))
    per_fit = []
    for dt in (nuts_medium, gibbs_medium):
        model = build_model("bpmf", split.train, n_factors=2, likelihood="ordered_probit")
        with model:
            pm.set_data({"user_idx": test.user, "item_idx": test.item},
                        coords={"obs": np.arange(test.n_ratings)})
            per_fit.append(pm.compute_deterministics(
                dt["posterior"].to_dataset(), var_names=["prob"], progressbar=False)["prob"])
    p_n, p_g = per_fit
    se = np.hypot(az.mcse(p_n, method="mean").values, az.mcse(p_g, method="mean").values)
    diff = np.abs(p_n.mean(("chain", "draw")).values - p_g.mean(("chain", "draw")).values)
    assert np.mean(diff < 4 * se) > 0.95, np.sort((diff / se).ravel())[-10:]
