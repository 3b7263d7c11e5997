"""The block-Gibbs sampler on PMF and BPMF with side features (user_features/item_features)."""

from __future__ import annotations

import arviz as az
import numpy as np
import pytest
from conditionals import quadratic_fit, random_point

from bayesrec.data.simulate import simulate_side_information
from bayesrec.errors import InputError
from bayesrec.inference import fit, predict
from bayesrec.inference.gibbs import FeatureGibbs, gibbs_steps
from bayesrec.inference.gibbs.features import (
    centred_scale_density,
    coef_conditional,
    scale_terms,
)
from bayesrec.inference.gibbs.kernels import draw_rows
from bayesrec.models import build_model

# the planted biases and factors are about 0.3 (see tests/test_side_information.py)
PMF_PRIORS = {"bias_sd": 0.3, "user_factor_sd": 0.3, "item_factor_sd": 0.3}
FEATURES = {"user_features": "auto", "item_features": "auto"}
# identified bias-coefficient contrasts: the one-hot gender levels sum to 1 (a ridge with
# the offset), so only their difference is identified
USER_CONTRASTS = {"age": {"age": 1.0}, "student": {"student": 1.0},
                  "F-M": {"gender=F": 1.0, "gender=M": -1.0}}


@pytest.fixture(scope="module")
def tiny():
    return simulate_side_information(30, 20, 300, seed=7)[0]


@pytest.fixture(scope="module")
def small():  # the data of tests/test_side_information.py
    return simulate_side_information(300, 200, 4000, seed=0)


def _model(name, ratings, **options):
    extra = {"priors": PMF_PRIORS} if name == "pmf" else {"parameterisation": "centered"}
    return build_model(name, ratings, n_factors=2, **FEATURES, **{**extra, **options})


# -------------------------------------------------------------------------------------------
# (a) the conditionals against the model's log-density
# -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["pmf", "bpmf"])
def test_row_conditionals_with_feature_means_match_the_log_density(tiny, name):
    model = _model(name, tiny)
    logp = model.compile_logp()
    point = random_point(model, np.random.default_rng(1))
    step = gibbs_steps(model)[0]
    lay = step.layout
    assert set(lay.features) == {"user", "item"}
    for side, other in (("user", "item"), ("item", "user")):
        inputs = step.side_inputs(point, side, lay.factors_of(point, other),
                                  lay.bias_of(point, other), lay.offset(point), lay.sigma(point))
        assert inputs["prior_h"].shape == (lay.side(side).n_rows, 3)  # a mean per row
        n_rows, dim = lay.side(side).n_rows, 3
        mean = draw_rows(eps=np.zeros((n_rows, dim)), **inputs)
        basis = [draw_rows(eps=np.tile(e, (n_rows, 1)), **inputs) - mean for e in np.eye(dim)]
        for row in (0, n_rows - 1):
            root = np.stack([b[row] for b in basis], axis=1)
            coords = [(f"{side}_factors", (row, 0)), (f"{side}_factors", (row, 1)),
                      (f"{side}_bias", row)]
            prec, centre = quadratic_fit(logp, point, coords)
            np.testing.assert_allclose(mean[row], centre, rtol=1e-6, atol=1e-8)
            np.testing.assert_allclose(root @ root.T, np.linalg.inv(prec), rtol=1e-6,
                                       atol=1e-10)


def _feature_step(model):
    steps = gibbs_steps(model)
    return next(s for s in steps if isinstance(s, FeatureGibbs))


@pytest.mark.parametrize("name", ["pmf", "bpmf"])
def test_coefficient_conditionals_match_the_log_density(tiny, name):
    """Step 1 (Gaussian ``Z | lambda``) exactly; steps 2 and 3 (the scale, given ``Z`` and
    given ``B = lambda Z``) as log-density differences along the scale."""
    model = _model(name, tiny)
    logp = model.compile_logp()
    point = random_point(model, np.random.default_rng(2))
    step = _feature_step(model)
    lay = step.layout
    regressions = step.regressions(point)
    assert [r[0] for r in regressions] == ["user_feature", "user_bias_feature", "item_feature",
                                           "item_bias_feature"]
    for name_, x, y, prec_rows in regressions:
        key, sd_key = f"{name_}_coef_std", lay.value_names[f"{name_}_sd"]
        shape = np.shape(point[key])
        scale = float(np.exp(point[sd_key]))
        prec, h = coef_conditional(x, y, prec_rows, scale)
        coords = [(key, np.unravel_index(j, shape)) for j in range(min(prec.shape[0], 4))]
        want_prec, _ = quadratic_fit(logp, point, coords)
        np.testing.assert_allclose(prec[:len(coords), :len(coords)], want_prec, rtol=1e-6,
                                   atol=1e-8)
        # the full conditional mean: the gradient of logp vanishes there
        mean = np.linalg.solve(prec, h).reshape(shape)
        at_mean = {**point, key: mean}
        _, centre = quadratic_fit(logp, at_mean, coords)
        np.testing.assert_allclose(centre, mean.ravel()[:len(coords)], rtol=1e-6, atol=1e-8)
        # step 2: lambda | Z; PyMC's value is log lambda, whose Jacobian adds log lambda
        prior = lay.priors[f"{name_}_sd_prior"]
        power, quad, lin = scale_terms(x, y, prec_rows, np.asarray(point[key]), prior)
        ts = np.log(scale) + np.array([-0.7, 0.4, 1.1])

        def own(t, power=power, quad=quad, lin=lin):
            lam = np.exp(t)
            return power * t - quad * lam**2 + lin * lam + t

        got = [logp({**point, sd_key: np.asarray(t)}) for t in ts]
        base = logp({**point, sd_key: np.asarray(np.log(scale))})
        np.testing.assert_allclose(np.subtract(got, base),
                                   [own(t) - own(np.log(scale)) for t in ts], rtol=1e-7)
        # step 3: lambda | B; Z = B / lambda has Jacobian lambda^-size
        coefs = scale * np.asarray(point[key])
        logf = centred_scale_density(coefs, prior)

        def model_at(t, key=key, sd_key=sd_key, coefs=coefs):
            return (logp({**point, sd_key: np.asarray(t), key: coefs / np.exp(t)})
                    - coefs.size * t)

        np.testing.assert_allclose([model_at(t) - model_at(np.log(scale)) for t in ts],
                                   [logf(t) - logf(np.log(scale)) for t in ts], rtol=1e-7)


def test_hyper_updates_use_the_feature_residuals(tiny):
    """BPMF's mean update given ``U``: its conditional mean from ``U - X B``."""
    model = _model("bpmf", tiny)
    point = random_point(model, np.random.default_rng(3))
    lay = gibbs_steps(model)[0].layout
    logp = model.compile_logp()
    k = lay.n_factors
    prec, centre = quadratic_fit(logp, point, [("user_factor_mean", j) for j in range(k)])
    mean, chol = lay.side_prior(point, "user")
    cov_inv = np.linalg.inv(chol @ chol.T)
    resid = lay.factors_of(point, "user") - lay.feature_mean(point, "user")
    want = np.eye(k) / lay.priors["user_mean_sd"] ** 2 + len(resid) * cov_inv
    np.testing.assert_allclose(prec, want, rtol=1e-6)
    np.testing.assert_allclose(centre, np.linalg.solve(want, cov_inv @ resid.sum(0)),
                               rtol=1e-6, atol=1e-9)


# -------------------------------------------------------------------------------------------
# (b) recovery, (d) determinism
# -------------------------------------------------------------------------------------------
def _effects(posterior, side):
    """Posterior mean of each feature's effect on a row's mean rating: its bias coefficient
    plus its factor coefficients dotted with the other side's mean factor row.  BPMF's
    factor means make ``x B mu_V`` act as a bias term, so the bias coefficients alone sit on
    a weakly identified ridge (their split with ``B``); this sum is identified."""
    other = "item" if side == "user" else "user"
    mean_other = posterior[f"{other}_factors"].mean(other)
    effect = (posterior[f"{side}_bias_feature_coef"]
              + (posterior[f"{side}_feature_coef"] * mean_other).sum("factor"))
    return effect.mean(("chain", "draw"))


def _true_effects(truth, side):
    other = "item" if side == "user" else "user"
    return (truth[f"{side}_bias_coef"]
            + truth[f"{side}_feature_coef"] @ truth[f"{other}_factors"].mean(axis=0))


def _contrasts(posterior, truth):
    """Posterior means and truth of the identified feature effects (contrasts for users)."""
    out = {}
    user, user_true = _effects(posterior, "user"), _true_effects(truth, "user")
    for label, weights in USER_CONTRASTS.items():
        out[f"user {label}"] = (sum(w * float(user.sel(user_feature=f))
                                    for f, w in weights.items()),
                                sum(w * user_true[f] for f, w in weights.items()))
    item, item_true = _effects(posterior, "item"), _true_effects(truth, "item")
    for f in item_true.index:
        out[f"item {f}"] = (float(item.sel(item_feature=f)), item_true[f])
    return out


def _interaction(posterior, truth):
    """Correlation of the posterior mean of ``x_u B_U B_V^T x_i`` over all pairs with the
    planted one (rotation-invariant, unlike ``B`` itself)."""
    bu = posterior["user_feature_coef"].stack(s=("chain", "draw")).transpose("s", ...).values
    bv = posterior["item_feature_coef"].stack(s=("chain", "draw")).transpose("s", ...).values
    xu, xi = truth["user_features"], truth["item_features"]
    fitted = np.einsum("up,spk,sqk,iq->ui", xu, bu, bv, xi, optimize=True) / len(bu)
    planted = xu @ truth["user_feature_coef"].to_numpy() @ truth["item_feature_coef"].to_numpy(
    ).T @ xi.T
    return float(np.corrcoef(fitted.ravel(), planted.ravel())[0, 1])


@pytest.mark.parametrize("name", ["pmf", "bpmf"])
def test_gibbs_recovers_planted_effects(small, name):
    ratings, truth = small
    model = build_model(name, ratings, n_factors=2, **FEATURES,
                        **({"priors": PMF_PRIORS} if name == "pmf" else {}))
    f = fit(model, "gibbs", draws=200, tune=200, chains=1, random_seed=1, progressbar=False)
    for label, (got, want) in _contrasts(f["posterior"], truth).items():
        assert abs(got - want) < 0.1, (label, got, want)
    assert _interaction(f["posterior"], truth) > 0.95
    if name == "bpmf":  # non-centred: z = L^-1 (U - mu - X B) maps back to the same U
        post = f["posterior"].isel(chain=0, draw=-1)
        z = post["user_factors_std"].values
        chol = np.zeros((2, 2))
        chol[np.tril_indices(2)] = post["user_factor_chol"].values
        rebuilt = (post["user_factor_mean"].values + truth["user_features"]
                   @ post["user_feature_coef"].values + z @ chol.T)
        np.testing.assert_allclose(rebuilt, post["user_factors"].values, atol=1e-8)


def test_gibbs_with_features_is_deterministic(tiny):
    model = _model("bpmf", tiny, parameterisation="noncentered")
    a, b = (fit(model, "gibbs", draws=5, tune=5, chains=1, random_seed=3, progressbar=False)
            for _ in range(2))
    for var in ("user_bias_feature_coef", "item_feature_coef", "user_factors_std", "sigma"):
        np.testing.assert_array_equal(a["posterior"][var].values, b["posterior"][var].values)


def test_sweep_order_and_hyper_nuts(tiny):
    """Features: factors, then coefficients, then hyperparameters; no moves (they assume a
    shared prior mean).  ``hyper="nuts"`` leaves the coefficients to FeatureGibbs."""
    model = _model("bpmf", tiny)
    assert [type(s).__name__ for s in gibbs_steps(model)] == ["FactorGibbs", "FeatureGibbs",
                                                              "HyperGibbs"]
    names = [type(s).__name__ for s in gibbs_steps(model, hyper="nuts")]
    assert names == ["NUTS", "FactorGibbs", "FeatureGibbs"]


def test_refusals_that_remain(tiny):
    model = build_model("bpmf", tiny, n_factors=2, user_features="auto")
    with pytest.raises(InputError, match="centred twin"):
        gibbs_steps(model)


# -------------------------------------------------------------------------------------------
# (c) agreement with NUTS
# -------------------------------------------------------------------------------------------
@pytest.mark.agreement  # methods against each other: .ci/run's own step
def test_gibbs_agrees_with_nuts():
    """PMF with features on a small data set: the posterior means of the bias-coefficient
    contrasts and of held-out predictions, by Gibbs and by NUTS.

    Tolerance: both estimates carry Monte Carlo error; their difference has sd
    ``sqrt(mcse_g^2 + mcse_n^2)`` (ArviZ's ``mcse`` of the mean, from the effective sample
    size), and 4 of those bound it with probability about 1 - 6e-5 per quantity (a
    Gaussian tail) over the ~25 checked, so a false failure is rare; the floor of 0.01
    (rating units, well under the posterior sds of about 0.05-0.1) covers MCSE estimates
    that come out too small from short chains.
    """
    ratings, _ = simulate_side_information(80, 60, 1200, seed=11)
    model = build_model("pmf", ratings, n_factors=1, priors=PMF_PRIORS, user_features="auto")
    gibbs = fit(model, "gibbs", draws=600, tune=200, chains=2, random_seed=4, progressbar=False)
    nuts = fit(model, "nuts", draws=300, tune=300, chains=2, cores=1, random_seed=5,
               progressbar=False)
    rng = np.random.default_rng(0)  # 20 user-item pairs, nearly all unrated
    users, items = rng.choice(ratings.users, 20), rng.choice(ratings.items, 20)
    quantities = {}
    for label, f in (("gibbs", gibbs), ("nuts", nuts)):
        post = f["posterior"]
        coef = post["user_bias_feature_coef"]
        gender = coef.sel(user_feature="gender=F") - coef.sel(user_feature="gender=M")
        pred = predict(f, users, items, keep_draws=True, max_draws=None)["mu"]
        quantities[label] = {
            "age": coef.sel(user_feature="age"), "student": coef.sel(user_feature="student"),
            "F-M": gender, "prediction": pred}
    for key in quantities["gibbs"]:
        g, n = quantities["gibbs"][key], quantities["nuts"][key]
        mcse = np.sqrt(np.square(az.mcse(g).values) + np.square(az.mcse(n).values))
        diff = np.abs(g.mean(("chain", "draw")).values - n.mean(("chain", "draw")).values)
        assert np.all(diff < 4 * mcse + 0.01), (key, diff, mcse)
