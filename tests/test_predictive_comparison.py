"""PSIS-LOO / WAIC comparison of sampled fits (``bayesrec.diagnostics.predictive``).

* The ``log_likelihood`` group against the Gaussian log-density computed by hand.
* On data simulated with 3 factors, PMF with 3 factors predicts better than PMF
  with 1 (LOO elpd difference of more than 2 standard errors); LOO and WAIC agree.
* The validity rules: MAP fits, fits of other ratings and mixed likelihood kinds
  are refused with a message; ADVI fits warn.

Gibbs fits of a small PMF take about a second each, so the module runs in seconds.
"""

from __future__ import annotations

import warnings

import arviz as az
import numpy as np
import pytest
import xarray as xr
from scipy import stats

from bayesrec import InputError, Ratings
from bayesrec.data.simulate import simulate_ratings
from bayesrec.data.splits import holdout
from bayesrec.diagnostics import PARETO_K_THRESHOLD, add_log_likelihood, compare_fits
from bayesrec.inference import fit, ratings_from_fit
from bayesrec.models import build_model

GIBBS = dict(draws=300, tune=100, chains=2)


@pytest.fixture(scope="module")
def data():
    ratings, _ = simulate_ratings(n_users=50, n_items=40, n_ratings=1400, n_factors=3,
                                  noise_sd=0.5, scale=None, factor_sd=0.8, seed=4)
    return ratings, holdout(ratings, 0.2, seed=1)


@pytest.fixture(scope="module")
def fits(data):
    """PMF with the generating rank (3) and a misspecified one (1), on the same train."""
    _, split = data
    return {f"pmf_k{k}": fit(build_model("pmf", split.train, n_factors=k), "gibbs",
                             random_seed=k, **GIBBS)
            for k in (3, 1)}


# -------------------------------------------------------------------------------------------
# the pointwise log-likelihood
# -------------------------------------------------------------------------------------------
def test_log_likelihood_is_the_gaussian_density(fits):
    fit_ = fits["pmf_k3"]
    before = set(fit_.children)
    out = add_log_likelihood(fit_)
    assert set(fit_.children) == before, "the input fit was modified"
    assert set(out.children) == before | {"log_likelihood"}
    ll = out["log_likelihood"]["rating"]
    train = ratings_from_fit(fit_)
    assert ll.dims == ("chain", "draw", "obs")
    assert ll.shape == (2, GIBBS["draws"], train.n_ratings)
    post = fit_["posterior"].to_dataset()
    for chain, draw in [(0, 0), (1, 123)]:
        p = post.isel(chain=chain, draw=draw)
        u, i = train.user, train.item
        mu = (p["offset"].values + p["user_bias"].values[u] + p["item_bias"].values[i]
              + (p["user_factors"].values[u] * p["item_factors"].values[i]).sum(-1))
        by_hand = stats.norm.logpdf(train.rating, mu, p["sigma"].values)
        np.testing.assert_allclose(ll.isel(chain=chain, draw=draw).values, by_hand, rtol=1e-9)


def test_log_likelihood_thins_all_groups_alike(fits):
    out = add_log_likelihood(fits["pmf_k3"], max_draws=60)
    assert out["log_likelihood"].sizes["draw"] == 30
    assert out["posterior"].sizes["draw"] == out["sample_stats"].sizes["draw"] == 30
    assert fits["pmf_k3"]["posterior"].sizes["draw"] == GIBBS["draws"]
    np.testing.assert_array_equal(out["posterior"]["draw"].values,
                                  out["log_likelihood"]["draw"].values)


# -------------------------------------------------------------------------------------------
# the comparison
# -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tables(fits):
    with warnings.catch_warnings():  # a few high Pareto k values are allowed here
        warnings.simplefilter("ignore", UserWarning)
        return {ic: compare_fits(fits, ic=ic) for ic in ("loo", "waic")}


def test_true_rank_beats_misspecified_rank(tables):
    loo = tables["loo"]
    assert list(loo.index) == ["pmf_k3", "pmf_k1"]
    assert {"rank", "elpd", "se", "p", "elpd_diff", "dse", "weight", "n_high_k", "max_k",
            "inference"} <= set(loo.columns)
    diff, dse = -loo.loc["pmf_k1", "elpd_diff"], loo.loc["pmf_k1", "dse"]
    assert diff > 2 * dse, (diff, dse)
    assert loo.loc["pmf_k3", "weight"] > 0.9
    assert (loo["inference"] == "gibbs").all()
    assert loo.attrs["ic"] == "loo" and loo.attrs["units"] == "nats"
    # the diagnostic is reported, consistently (a factor model has a few parameters per
    # user and item, so some ratings are influential: k > 0.7 is expected for some)
    assert ((loo["n_high_k"] > 0) == (loo["max_k"] > PARETO_K_THRESHOLD)).all()
    assert (loo["n_high_k"] < 0.2 * 1120).all(), loo["n_high_k"]


def test_loo_and_waic_agree(tables):
    loo, waic = tables["loo"], tables["waic"]
    assert waic.attrs["ic"] == "waic" and "n_high_p" in waic.columns
    for name in loo.index:
        gap = abs(loo.loc[name, "elpd"] - waic.loc[name, "elpd"])
        assert gap < 2 * loo.loc[name, "se"], (name, gap, loo.loc[name, "se"])
        # WAIC is never above LOO by much: both estimate the same elpd
        assert loo.loc[name, "p"] == pytest.approx(waic.loc[name, "p"], rel=0.2)
    assert list(waic.index) == list(loo.index)


def test_waic_by_hand(fits, tables):
    ll = add_log_likelihood(fits["pmf_k1"])["log_likelihood"]["rating"].values
    ll = ll.reshape(-1, ll.shape[-1])
    lppd = np.log(np.exp(ll).mean(0))
    elpd_i = lppd - ll.var(0, ddof=1)
    assert tables["waic"].loc["pmf_k1", "elpd"] == pytest.approx(elpd_i.sum(), rel=1e-10)
    assert tables["waic"].loc["pmf_k1", "se"] == pytest.approx(
        np.sqrt(elpd_i.size * elpd_i.var()), rel=1e-10)


# -------------------------------------------------------------------------------------------
# validity rules
# -------------------------------------------------------------------------------------------
def test_map_fit_is_refused(data, fits):
    _, split = data
    map_fit = fit(build_model("pmf", split.train, n_factors=3), "map", random_seed=0,
                  maxiter=50)
    with pytest.raises(InputError, match="LOO/WAIC need posterior draws; a MAP fit has one"):
        compare_fits({"map": map_fit, "gibbs": fits["pmf_k3"]})
    one_draw = fits["pmf_k3"].copy()
    one_draw["posterior"] = xr.DataTree(one_draw["posterior"].to_dataset().isel(draw=[0]))
    one_draw.attrs = {**one_draw.attrs, "method": "nuts"}
    with pytest.raises(InputError, match="a MAP fit has one"):
        compare_fits({"one": one_draw}, ic="waic")


def test_fits_of_other_ratings_are_refused(data, fits):
    ratings, _ = data
    other_split = holdout(ratings, 0.2, seed=2)
    other = fit(build_model("pmf", other_split.train, n_factors=3), "gibbs", random_seed=0,
                draws=20, tune=10, chains=1)
    with pytest.raises(InputError, match="different training ratings"):
        compare_fits({"a": fits["pmf_k3"], "b": other})
    # a fit of all the ratings (train and test) is refused for its size
    everything = fit(build_model("pmf", ratings, n_factors=1), "gibbs", random_seed=0,
                     draws=20, tune=10, chains=1)
    with pytest.raises(InputError, match=r"different training ratings \(1120 and 1400"):
        compare_fits({"a": fits["pmf_k3"], "b": everything})


def test_changed_rating_values_and_mixed_likelihoods_are_refused(fits):
    changed = fits["pmf_k1"].copy()
    observed = changed["observed_data"].to_dataset()
    observed["rating"] = observed["rating"] + 0.5
    changed["observed_data"] = xr.DataTree(observed)
    with pytest.raises(InputError, match=r"different rating values"):
        compare_fits({"a": fits["pmf_k3"], "b": changed})
    categorical = fits["pmf_k1"].copy()
    observed = categorical["observed_data"].to_dataset()
    observed["rating"] = observed["rating"].round().astype(int)
    categorical["observed_data"] = xr.DataTree(observed)
    with pytest.raises(InputError, match="categorical likelihood .* cannot be compared"):
        compare_fits({"a": fits["pmf_k3"], "b": categorical})


def test_advi_fits_warn_and_bad_arguments_raise(fits):
    advi_like = fits["pmf_k1"].copy()
    advi_like.attrs = {**advi_like.attrs, "method": "advi"}
    with pytest.warns(UserWarning, match="only approximately valid"):
        table = compare_fits({"advi": advi_like, "gibbs": fits["pmf_k3"]}, max_draws=100)
    assert table.loc["advi", "inference"] == "advi"
    with pytest.raises(InputError, match="ic must be 'loo' or 'waic'"):
        compare_fits(fits, ic="aic")
    with pytest.raises(InputError, match="non-empty dict"):
        compare_fits({})
    with pytest.raises(InputError, match="expected a fit"):
        compare_fits({"x": fits["pmf_k1"]["posterior"].to_dataset()})
    with pytest.raises(InputError, match="max_draws must be a positive integer"):
        add_log_likelihood(fits["pmf_k1"], max_draws=0)


def test_high_pareto_k_is_counted_and_warned(data):
    """One gross outlier among the ratings: its Pareto k exceeds 0.7 and is counted."""
    _, split = data
    train = split.train
    values = train.rating.copy()
    values[0] += 20.0
    with_outlier = Ratings.from_arrays(train.user_ids, train.item_ids, values, scale=None)
    tree = fit(build_model("pmf", with_outlier, n_factors=3), "gibbs", random_seed=0, **GIBBS)
    with pytest.warns(UserWarning, match=r"have Pareto k > 0.7"):
        table = compare_fits({"outlier": tree})
    assert table.loc["outlier", "n_high_k"] >= 1
    assert table.loc["outlier", "max_k"] > PARETO_K_THRESHOLD
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        k = az.loo(add_log_likelihood(tree), pointwise=True).pareto_k.values
    # the outlier is among the highest k (ties at the top are common: k is an estimate
    # from a few hundred draws, and on so small a model many ratings are influential)
    assert k[0] > PARETO_K_THRESHOLD and k[0] >= np.quantile(k, 0.99)


def test_arviz_loo_and_compare_work_on_bayesrec_fits(fits):
    """ArviZ's own functions read the log_likelihood group bayesrec adds; a Gibbs fit's
    summed training log-likelihood is not mistaken for a pointwise one."""
    gibbs = fits["pmf_k3"]
    assert "log_likelihood" not in gibbs["sample_stats"].to_dataset()  # ArviZ would use it
    with pytest.raises(TypeError, match="log likelihood not found"):
        az.loo(gibbs)  # loud, not a one-point LOO of the summed log-likelihood
    tree = add_log_likelihood(gibbs, max_draws=100)
    loo = az.loo(tree, pointwise=True)
    assert loo.pareto_k.sizes == {"obs": gibbs["observed_data"].sizes["obs"]}
    table = az.compare({"k3": tree, "k1": add_log_likelihood(fits["pmf_k1"], max_draws=100)})
    assert set(table.index) == {"k3", "k1"}


def test_fit_can_add_the_log_likelihood_group(data):
    model = build_model("pmf", data[1].train, n_factors=1)
    f = fit(model, "advi", n=500, draws=50, random_seed=0, log_likelihood=True)
    ll = f["log_likelihood"]["rating"]
    assert ll.dims == ("chain", "draw", "obs") and ll.sizes["draw"] == 50
    assert np.isfinite(az.loo(f).elpd)
