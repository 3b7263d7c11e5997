"""The block-Gibbs sampler on PMF and BPMF with implicit feedback (``implicit=``)."""

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

from bayesrec.data.simulate import simulate_ordinal_ratings, simulate_side_information
from bayesrec.errors import InputError
from bayesrec.inference import fit, predict
from bayesrec.inference.gibbs import ImplicitGibbs, gibbs_steps
from bayesrec.inference.gibbs.implicit import implicit_scan, prior_scan
from bayesrec.inference.gibbs.kernels import draw_rows, residuals
from bayesrec.models import build_model

PMF_PRIORS = {"bias_sd": 0.3, "user_factor_sd": 0.3, "item_factor_sd": 0.3, "implicit_sd": 0.3}


@pytest.fixture(scope="module")
def tiny():
    return simulate_side_information(30, 20, 300, seed=7)[0]


def _model(name, ratings, **options):
    extra = {"priors": PMF_PRIORS} if name == "pmf" else {"parameterisation": "centered"}
    return build_model(name, ratings, n_factors=2, **{**extra, **options})


@pytest.mark.parametrize("name", ["pmf", "bpmf"])
def test_rows_are_drawn_as_factors_plus_implicit_sum(tiny, name):
    """The rows drawn are ``U + s`` with the prior mean shifted by ``s``: their conditional
    mean minus ``s`` and their covariance are those of ``U`` under the model's density."""
    model = _model(name, tiny, implicit="both", user_features="auto")
    logp = model.compile_logp()
    point = random_point(model, np.random.default_rng(1))
    step = gibbs_steps(model)[0]
    lay = step.layout
    assert set(lay.implicit) == {"user", "item"}
    for side, other in (("user", "item"), ("item", "user")):
        inputs = step.side_inputs(point, side, lay.effective_factors(point, other),
                                  lay.bias_of(point, other), lay.offset(point), lay.sigma(point))
        n_rows, dim = lay.side(side).n_rows, 3
        mean = draw_rows(eps=np.zeros((n_rows, dim)), **inputs)
        basis = [draw_rows(eps=np.tile(e, (n_rows, 1)), **inputs) - mean for e in np.eye(dim)]
        shift = lay.implicit_sum(point, side)
        for row in (0, n_rows - 1):
            root = np.stack([b[row] for b in basis], axis=1)
            coords = [(f"{side}_factors", (row, 0)), (f"{side}_factors", (row, 1)),
                      (f"{side}_bias", row)]
            prec, centre = quadratic_fit(logp, point, coords)
            np.testing.assert_allclose(mean[row, :2] - shift[row], centre[:2], rtol=1e-6,
                                       atol=1e-8)
            np.testing.assert_allclose(mean[row, 2], centre[2], rtol=1e-6, atol=1e-8)
            np.testing.assert_allclose(root @ root.T, np.linalg.inv(prec), rtol=1e-6,
                                       atol=1e-10)


@pytest.mark.parametrize("implicit", ["user", "item"])
def test_implicit_scan_draws_each_factor_from_its_conditional(tiny, implicit):
    """The scan's first draw is ``y_0``'s conditional given the point, its second ``y_1``'s
    given the point with the new ``y_0`` (the residual moments kept current), both checked
    against the model's log-density (mean and covariance)."""
    model = _model("pmf", tiny, implicit=implicit)
    logp = model.compile_logp()
    point = random_point(model, np.random.default_rng(3))
    lay = gibbs_steps(model)[0].layout
    side = implicit
    other = "item" if side == "user" else "user"
    imp = lay.implicit[side]
    s, o = lay.side(side), lay.side(other)

    def scan(pt, eps):
        feats = lay.effective_factors(pt, other)
        resid = residuals(s.indptr, s.other, s.rating, lay.offset(pt), lay.bias_of(pt, side),
                          lay.bias_of(pt, other), lay.effective_factors(pt, side), feats)
        return implicit_scan(s.indptr, s.other, resid, feats, imp.weight, o.indptr, o.other,
                             pt[imp.key], 1 / imp.sd.of(pt)**2, 1 / lay.sigma(pt) ** 2, eps)

    y = np.asarray(point[imp.key])
    zero = scan(point, np.zeros_like(y))
    for j, at in ((0, point), (1, {**point, imp.key: np.vstack([zero[:1], y[1:]])})):
        coords = [(imp.key, (j, 0)), (imp.key, (j, 1))]
        prec, centre = quadratic_fit(logp, at, coords)
        np.testing.assert_allclose(zero[j], centre, rtol=1e-6, atol=1e-8)
        if j == 0:
            cols = []
            for a in range(2):
                eps = np.zeros_like(y)
                eps[0, a] = 1.0
                cols.append(scan(point, eps)[0] - zero[0])
            root = np.stack(cols, axis=1)
            np.testing.assert_allclose(root @ root.T, np.linalg.inv(prec), rtol=1e-6, atol=1e-10)


@pytest.mark.parametrize("name", ["pmf", "bpmf"])
def test_prior_scan_draws_from_the_conditional_given_the_effective_factors(tiny, name):
    """The interweaving scan: ``y_0`` given ``W = U + M y`` held fixed (``U`` moving with
    ``y``), checked against the model's log-density along that direction."""
    model = _model(name, tiny, implicit="user", user_features="auto")
    logp = model.compile_logp()
    point = random_point(model, np.random.default_rng(4))
    lay = gibbs_steps(model)[0].layout
    imp, o = lay.implicit["user"], lay.item
    effective = lay.effective_factors(point, "user")

    def logp_w(pt):  # y moves, W stays: U = W - M y
        return logp({**pt, "user_factors": effective - imp.matrix @ pt[imp.key]})

    mean, chol = lay.side_prior(point, "user")
    mean = mean + lay.feature_mean(point, "user")
    prec = np.linalg.inv(chol @ chol.T)
    y = np.asarray(point[imp.key])

    def scan(eps):
        return prior_scan(lay.factors_of(point, "user") - mean, prec, imp.weight, o.indptr,
                          o.other, y, 1 / imp.sd.of(point)**2, eps)

    zero = scan(np.zeros_like(y))
    coords = [(imp.key, (0, 0)), (imp.key, (0, 1))]
    want_prec, centre = quadratic_fit(logp_w, point, coords)
    np.testing.assert_allclose(zero[0], centre, rtol=1e-6, atol=1e-8)
    cols = []
    for a in range(2):
        eps = np.zeros_like(y)
        eps[0, a] = 1.0
        cols.append(scan(eps)[0] - zero[0])
    root = np.stack(cols, axis=1)
    np.testing.assert_allclose(root @ root.T, np.linalg.inv(want_prec), rtol=1e-6, atol=1e-10)


def test_learned_implicit_scale_updates_follow_the_model(tiny):
    """BPMF's learned scale ``s_y``: the density of ``log s_y`` given ``y`` that the slice
    update uses, and the group move's density of ``c`` (``(s_y, y, U) -> (c s_y, c y,
    W - c M y)``, times ``c^n`` from its Jacobian and the Haar measure), are the model's
    log-density up to a constant."""
    model = _model("bpmf", tiny, implicit="both", user_features="auto")
    logp = model.compile_logp()
    point = random_point(model, np.random.default_rng(8))
    step = next(s for s in gibbs_steps(model) if isinstance(s, ImplicitGibbs))
    lay = step.layout
    for side in ("user", "item"):
        imp = lay.implicit[side]
        assert imp.sd.key == f"{'item' if side == 'user' else 'user'}_implicit_sd_log__"
        y = np.asarray(point[imp.key])
        assert_log_scale_density(logp, point, imp.sd.key, y, imp.sd.prior)
        mean, _ = lay.side_prior(point, side)
        features = lay.feature_mean(point, side)
        mean = mean + (0.0 if features is None else features)
        power, quad, lin = step.rescale_terms(point, side, mean)
        effective = lay.effective_factors(point, side)
        cs = np.array([0.5, 1.0, 1.6])

        # the model's density is in log s_y (its Jacobian adds log c): with c^n from the
        # move's Jacobian and 1/c from the Haar measure, (n - 1) log c
        model_c = [logp({**point, imp.key: c * y, imp.sd.key: np.log(c * imp.sd.of(point)),
                         lay.side(side).factors: effective - c * (imp.matrix @ y)})
                   + (y.size - 1) * np.log(c) for c in cs]
        ours = power * np.log(cs) - quad * cs**2 + lin * cs
        np.testing.assert_allclose(np.diff(model_c), np.diff(ours), rtol=1e-8, atol=1e-8)
    # the move keeps every expected rating
    mu = model.compile_fn(model.replace_rvs_by_values([model["mu"]])[0],
                          inputs=model.value_vars, on_unused_input="ignore")
    after = dict(point)
    step._rescale(after, "user", lay.side_prior(point, "user")[0]
                  + lay.feature_mean(point, "user"))
    assert after[lay.implicit["user"].sd.key] != point[lay.implicit["user"].sd.key]
    np.testing.assert_allclose(mu(after), mu(point), rtol=1e-10, atol=1e-10)


def test_sweep_order(tiny):
    """Implicit terms: rows, then the implicit factors, then the hyperparameters and the
    moves (which act on the effective factors); with features too, no moves (they assume
    a prior mean shared by every row)."""
    names = [type(s).__name__ for s in gibbs_steps(_model("bpmf", tiny, implicit="both"))]
    assert names == ["FactorGibbs", "ImplicitGibbs", "HyperGibbs", "ScaleMoves", "RidgeMoves"]
    names = [type(s).__name__ for s in gibbs_steps(_model("pmf", tiny, implicit="user",
                                                          user_features="auto"))]
    assert names == ["FactorGibbs", "ImplicitGibbs", "FeatureGibbs"]
    step = next(s for s in gibbs_steps(_model("pmf", tiny, implicit="both"))
                if isinstance(s, ImplicitGibbs))
    assert sorted(v.name for v in step.vars) == ["item_implicit", "user_implicit"]
    step = next(s for s in gibbs_steps(_model("bpmf", tiny, implicit="both"))
                if isinstance(s, ImplicitGibbs))  # BPMF learns the scales: the step draws them
    assert sorted(v.name for v in step.vars) == ["item_implicit", "item_implicit_sd_log__",
                                                 "user_implicit", "user_implicit_sd_log__"]


@pytest.mark.parametrize("name", ["pmf", "bpmf"])
def test_moves_keep_the_likelihood_where_they_should(tiny, name):
    """The balance move (U_k s, y_k s against V_k / s, x_k / s) leaves every expected
    rating as it was, implicit sums included; so does the shift of factor means against
    biases and offset.  (The other moves change the fit: the agreement tests check them.)"""
    model = _model(name, tiny, implicit="both")
    mu = model.compile_fn(model.replace_rvs_by_values([model["mu"]])[0],
                          inputs=model.value_vars, on_unused_input="ignore")
    steps = {type(s).__name__: s for s in gibbs_steps(model)}
    rng = np.random.default_rng(5)
    point = random_point(model, rng)
    for s in steps.values():
        s.rng = np.random.default_rng(6)
    before = np.array(mu(point))
    moved = dict(point)
    steps["ScaleMoves"]._balance(moved)
    assert not np.allclose(moved["item_implicit"], point["item_implicit"])
    np.testing.assert_allclose(mu(moved), before, rtol=1e-10, atol=1e-10)
    ridge = dict(point)  # biases against factor means (the effective ones) and the offset
    assert any(steps["RidgeMoves"]._shift(ridge) for _ in range(10))
    assert not np.allclose(ridge["offset"], point["offset"])
    np.testing.assert_allclose(mu(ridge), before, rtol=1e-8, atol=1e-8)


def test_refusals_that_remain(tiny):
    levels, _ = simulate_ordinal_ratings(30, 20, 300, seed=7)
    model = build_model("pmf", levels, n_factors=2, implicit="user", likelihood="ordered_probit")
    with pytest.raises(InputError, match="implicit with likelihood='ordered_probit'"):
        fit(model, "gibbs", draws=5, tune=5, chains=1, progressbar=False)
    model = build_model("bpmf", tiny, n_factors=2, implicit="user")
    with pytest.raises(InputError, match="centred twin"):
        gibbs_steps(model)


def test_training_log_likelihood_includes_the_implicit_sums(tiny):
    """The recorded log-likelihood is the model's, at each stored draw."""
    model = _model("pmf", tiny, implicit="both")
    f = fit(model, "gibbs", draws=5, tune=5, chains=1, random_seed=2, progressbar=False)
    assert_recorded_log_likelihood(model, f)


def test_gibbs_with_implicit_is_deterministic(tiny):
    """The same seed gives the same draws of BPMF (non-centred, sampled through its centred
    twin) with both implicit terms, and the implicit factors move."""
    model = build_model("bpmf", tiny, n_factors=2, implicit="both")
    a = fit(model, "gibbs", draws=30, tune=30, chains=1, random_seed=3, progressbar=False)
    b = fit(model, "gibbs", draws=30, tune=30, chains=1, random_seed=3, progressbar=False)
    for var in ("item_implicit", "user_implicit", "user_factors_std", "sigma"):
        np.testing.assert_array_equal(a["posterior"][var].values, b["posterior"][var].values)
    assert a["posterior"]["item_implicit"].std() > 0  # the implicit factors moved


@pytest.mark.agreement  # methods against each other: .ci/run's own step
@pytest.mark.parametrize("name", ["pmf", "bpmf"])
def test_gibbs_agrees_with_nuts(name):
    """PMF / BPMF with both implicit terms on a small data set: the posterior means of
    held-out predictions and of implicit sums, by Gibbs and by NUTS.

    Tolerance as in tests/test_gibbs_features.py: 4 combined Monte Carlo standard errors
    (ArviZ's ``mcse`` of each mean) plus a floor of 0.01 rating units for MCSE estimates
    from short chains.
    """
    ratings, _ = simulate_side_information(80, 60, 1200, seed=11)
    # BPMF's LKJ prior needs two factors; the sums' norms do not change when the factors
    # rotate or flip sign (directions the posterior does not identify)
    options = {"priors": PMF_PRIORS, "n_factors": 1} if name == "pmf" else {"n_factors": 2}
    model = build_model(name, ratings, implicit="both", **options)
    gibbs = fit(model, "gibbs", draws=800, tune=300, chains=2, random_seed=4, progressbar=False)
    nuts = fit(model, "nuts", draws=400, tune=400, chains=2, cores=1, random_seed=5,
               progressbar=False)
    rng = np.random.default_rng(0)
    users, items = rng.choice(ratings.users, 20), rng.choice(ratings.items, 20)
    quantities = {}
    for label, f in (("gibbs", gibbs), ("nuts", nuts)):
        post = f["posterior"]
        pred = predict(f, users, items, keep_draws=True, max_draws=None)["mu"]
        quantities[label] = {"prediction": pred, "sigma": post["sigma"],
                             "sum_norm": np.sqrt(np.square(post["user_implicit_sum"])
                                                 .sum("factor")).isel(user=slice(0, 10))}
    for key in quantities["gibbs"]:
        g, n = quantities["gibbs"][key], quantities["nuts"][key]
        mcse = np.sqrt(np.square(az.mcse(g).values) + np.square(az.mcse(n).values))
        diff = np.abs(g.mean(("chain", "draw")).values - n.mean(("chain", "draw")).values)
        assert np.all(diff < 4 * mcse + 0.01), (key, diff, mcse)
