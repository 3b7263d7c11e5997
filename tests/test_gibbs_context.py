"""The block-Gibbs sampler on PMF and BPMF with the day of each rating as context."""

from __future__ import annotations

import arviz as az
import numpy as np
import pytest
from conditionals import (
    assert_log_scale_density,
    assert_recorded_log_likelihood,
    quadratic_fit,
    random_point,
)

from bayesrec.data.ratings import Ratings
from bayesrec.data.simulate import simulate_ordinal_ratings, simulate_side_information
from bayesrec.errors import InputError
from bayesrec.inference import fit, predict
from bayesrec.inference.gibbs import DayGibbs, gibbs_steps
from bayesrec.inference.gibbs.kernels import draw_rows
from bayesrec.models import build_model

PMF_PRIORS = {"bias_sd": 0.3, "user_factor_sd": 0.3, "item_factor_sd": 0.3, "implicit_sd": 0.3,
              "day_bias_sd": 0.3, "day_factor_sd": 0.3}
T0 = 874_724_710


def _with_days(ratings: Ratings, n_days: int, seed: int) -> Ratings:
    """The ratings on ``n_days`` random days (no planted effect: the conditionals and the
    agreement between samplers hold whatever the data)."""
    day = np.random.default_rng(seed).integers(0, n_days, ratings.n_ratings)
    return Ratings(user=ratings.user, item=ratings.item, rating=ratings.rating,
                   users=ratings.users, items=ratings.items, scale=ratings.scale,
                   timestamp=T0 + 86_400 * day, user_info=ratings.user_info,
                   item_info=ratings.item_info)


@pytest.fixture(scope="module")
def tiny():
    return _with_days(simulate_side_information(30, 20, 300, seed=7)[0], 6, 0)


def _model(name, ratings, **options):
    extra = {"priors": PMF_PRIORS} if name == "pmf" else {"parameterisation": "centered"}
    return build_model(name, ratings, n_factors=2, context="day", **{**extra, **options})


def _basis(inputs, n_rows, dim):
    mean = draw_rows(eps=np.zeros((n_rows, dim)), **inputs)
    return mean, [draw_rows(eps=np.tile(e, (n_rows, 1)), **inputs) - mean for e in np.eye(dim)]


def _check_rows(logp, point, mean, basis, row, coords, shift=None):
    """Row ``row``'s conditional mean and covariance (from the kernel) against the density."""
    root = np.stack([b[row] for b in basis], axis=1)
    prec, centre = quadratic_fit(logp, point, coords)
    got = mean[row].copy()
    if shift is not None:
        got[:len(shift)] -= shift
    np.testing.assert_allclose(got, centre, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(root @ root.T, np.linalg.inv(prec), rtol=1e-6, atol=1e-10)


@pytest.mark.parametrize("name", ["pmf", "bpmf"])
def test_day_rows_are_drawn_from_their_conditional(tiny, name):
    """Each day's ``(D_d, e_d)`` (the unseen day's too: its prior) against the model's
    log-density, with implicit sums in the users' and items' factors."""
    model = _model(name, tiny, implicit="both")
    logp = model.compile_logp()
    point = random_point(model, np.random.default_rng(1))
    step = next(s for s in gibbs_steps(model) if isinstance(s, DayGibbs))
    n_days = step.layout.context.n_days
    assert n_days == 7  # six days and the unseen slot
    mean, basis = _basis(step.inputs(point), n_days, 3)
    for day in (0, n_days - 1):
        _check_rows(logp, point, mean, basis, day, [("day_factors", (day, 0)),
                                                    ("day_factors", (day, 1)),
                                                    ("day_bias", day)])


@pytest.mark.parametrize("name", ["pmf", "bpmf"])
def test_user_and_item_rows_see_the_days(tiny, name):
    """The users' and items' rows (effective factors ``U + s``) against the density of a
    model with a day context: each rating's other row is ``Z_i + D_d``."""
    model = _model(name, tiny, implicit="user")
    logp = model.compile_logp()
    point = random_point(model, np.random.default_rng(2))
    step = gibbs_steps(model)[0]
    lay = step.layout
    for side, other in (("user", "item"), ("item", "user")):
        inputs = step.side_inputs(point, side, lay.effective_factors(point, other),
                                  lay.bias_of(point, other), lay.offset(point), lay.sigma(point))
        n_rows = lay.side(side).n_rows
        mean, basis = _basis(inputs, n_rows, 3)
        shift = lay.implicit_sum(point, side)
        for row in (0, n_rows - 1):
            _check_rows(logp, point, mean, basis, row,
                        [(f"{side}_factors", (row, 0)), (f"{side}_factors", (row, 1)),
                         (f"{side}_bias", row)],
                        None if shift is None else shift[row])


def test_bpmf_learns_the_day_scales(tiny):
    """BPMF's day sds are learned (Gamma priors): DayGibbs draws them, given the days, from
    the model's conditional; PMF's stay fixed."""
    model = _model("bpmf", tiny)
    assert {"day_factor_sd", "day_bias_sd"} <= {rv.name for rv in model.free_RVs}
    assert "day_factor_sd" not in _model("pmf", tiny).named_vars
    logp = model.compile_logp()
    point = random_point(model, np.random.default_rng(9))
    step = next(s for s in gibbs_steps(model) if isinstance(s, DayGibbs))
    ctx = step.layout.context
    assert sorted(v.name for v in step.vars) == ["day_bias", "day_bias_sd_log__",
                                                 "day_factor_sd_log__", "day_factors"]
    for key, scale in ((ctx.factors, ctx.factor_sd), (ctx.bias, ctx.bias_sd)):
        assert_log_scale_density(logp, point, scale.key, point[key], scale.prior)
    step.rng = np.random.default_rng(3)
    after, _ = step.step(point)
    assert after[ctx.factor_sd.key] != point[ctx.factor_sd.key]


def test_sweep_order_and_refusals(tiny):
    names = [type(s).__name__ for s in gibbs_steps(_model("bpmf", tiny, implicit="both"))]
    # the moves rescale U and V, which would change (U + V) . D: off with a day context
    assert names == ["FactorGibbs", "ImplicitGibbs", "DayGibbs", "HyperGibbs"]
    levels, _ = simulate_ordinal_ratings(30, 20, 300, seed=7)
    model = build_model("pmf", _with_days(levels, 4, 1), n_factors=2, context="day",
                        likelihood="ordered_probit")
    with pytest.raises(InputError, match="context='day' with likelihood='ordered_probit'"):
        fit(model, "gibbs", draws=5, tune=5, chains=1, progressbar=False)
    with pytest.raises(InputError, match="centred twin"):
        gibbs_steps(build_model("bpmf", tiny, n_factors=2, context="day"))


@pytest.mark.parametrize("name", ["pmf", "bpmf"])
def test_translations_keep_every_mean(tiny, name):
    """The offset against the rated days' biases, the users' and the items': every
    expected rating stays, and the offset moves."""
    model = _model(name, tiny, implicit="both", user_features="auto")
    mu = model.compile_fn(model.replace_rvs_by_values([model["mu"]])[0],
                          inputs=model.value_vars, on_unused_input="ignore")
    step = next(s for s in gibbs_steps(model) if isinstance(s, DayGibbs))
    step.rng = np.random.default_rng(3)
    point = random_point(model, np.random.default_rng(4))
    moved = dict(point)
    step.translate(moved)
    assert abs(float(moved["offset"]) - float(point["offset"])) > 1e-3
    assert moved["day_bias"][-1] == point["day_bias"][-1]  # the unseen day has no rating
    np.testing.assert_allclose(mu(moved), mu(point), rtol=1e-10, atol=1e-10)


def test_training_log_likelihood_includes_the_days(tiny):
    model = _model("pmf", tiny, implicit="item")
    f = fit(model, "gibbs", draws=5, tune=5, chains=1, random_seed=2, progressbar=False)
    assert_recorded_log_likelihood(model, f)


def test_gibbs_with_days_is_deterministic(tiny):
    model = build_model("bpmf", tiny, n_factors=2, context="day")
    a = fit(model, "gibbs", draws=20, tune=20, chains=1, random_seed=3, progressbar=False)
    b = fit(model, "gibbs", draws=20, tune=20, chains=1, random_seed=3, progressbar=False)
    for var in ("day_factors", "day_bias", "user_factors_std", "sigma"):
        np.testing.assert_array_equal(a["posterior"][var].values, b["posterior"][var].values)
    assert a["posterior"]["day_factors"].std() > 0


@pytest.mark.agreement  # methods against each other: .ci/run's own step
@pytest.mark.parametrize("name", ["pmf", "bpmf"])
def test_gibbs_agrees_with_nuts(name):
    """PMF / BPMF with a day context and both implicit terms: the posterior means of
    held-out predictions (on known days and on the unseen day) and of ``sigma``, by Gibbs
    and by NUTS, within 4 combined MCSEs plus 0.01 (as in tests/test_gibbs_implicit.py)."""
    ratings = _with_days(simulate_side_information(80, 60, 1200, seed=11)[0], 10, 2)
    options = {"priors": PMF_PRIORS, "n_factors": 1} if name == "pmf" else {"n_factors": 2}
    model = build_model(name, ratings, implicit="both", context="day", **options)
    gibbs = fit(model, "gibbs", draws=800, tune=300, chains=2, random_seed=4, progressbar=False)
    nuts = fit(model, "nuts", draws=400, tune=400, chains=2, cores=1, random_seed=5,
               progressbar=False)
    rng = np.random.default_rng(0)
    users, items = rng.choice(ratings.users, 20), rng.choice(ratings.items, 20)
    times = T0 + 86_400 * rng.integers(0, 11, 20)  # day 10 is not in training: the unseen day
    quantities = {}
    for label, f in (("gibbs", gibbs), ("nuts", nuts)):
        with pytest.warns(UserWarning, match="not seen"):
            pred = predict(f, users, items, timestamps=times, keep_draws=True, max_draws=None)
        quantities[label] = {"prediction": pred["mu"], "sigma": f["posterior"]["sigma"]}
    for key in quantities["gibbs"]:
        g, n = quantities["gibbs"][key], quantities["nuts"][key]
        mcse = np.sqrt(np.square(az.mcse(g).values) + np.square(az.mcse(n).values))
        diff = np.abs(g.mean(("chain", "draw")).values - n.mean(("chain", "draw")).values)
        assert np.all(diff < 4 * mcse + 0.01), (key, diff, mcse)
