"""Diagnostics: values against hand computations, real fits of every method, plots, storage."""

from __future__ import annotations

import json

import arviz as az
import matplotlib
import numpy as np
import pytest
import xarray as xr

matplotlib.use("Agg")

from matplotlib.figure import Figure  # noqa: E402

from bayesrec.data.ratings import Ratings  # noqa: E402
from bayesrec.data.scale import RatingScale  # noqa: E402
from bayesrec.data.simulate import simulate_ratings  # noqa: E402
from bayesrec.data.splits import holdout  # noqa: E402
from bayesrec.diagnostics import (  # noqa: E402
    RunningRMSE,
    add_diagnostics,
    calibration_table,
    compute_diagnostics,
    convergence_summary,
    frobenius_norms,
    get_diagnostics,
    interval_coverage,
    plot_advi_loss,
    plot_calibration,
    plot_method_comparison,
    plot_norm_traces,
    plot_rating_patterns,
    plot_rmse_trace,
    plot_user_predictive,
    rmse_trace,
    rmse_trace_from_draws,
)
from bayesrec.errors import InputError  # noqa: E402
from bayesrec.inference import fit, load_fit, predict, save_fit  # noqa: E402
from bayesrec.inference.draws import evaluate_draws, log_likelihood_draws  # noqa: E402
from bayesrec.models.registry import build_model  # noqa: E402
from bayesrec.predictions import from_draws, from_normal  # noqa: E402


# ---------------------------------------------------------------------------------------------
# hand-made DataTrees
# ---------------------------------------------------------------------------------------------
def _hand_made(seed=0, chain_scales=(1.0, 1.0), n_draw=200, diverging=None):
    rng = np.random.default_rng(seed)
    scales = np.asarray(chain_scales)[:, None, None, None]
    groups = {"posterior": {
        "user_factors": rng.normal(size=(len(chain_scales), n_draw, 4, 3)) * scales,
        "item_factors": rng.normal(size=(len(chain_scales), n_draw, 5, 3)),
        "user_factor_mean": rng.normal(size=(len(chain_scales), n_draw, 3)),  # no user dim
        "user_bias": rng.normal(size=(len(chain_scales), n_draw, 4)),  # no factor dim
    }}
    if diverging is not None:
        groups["sample_stats"] = {"diverging": diverging}
    return az.from_dict(
        groups,
        dims={"user_factors": ["user", "factor"], "item_factors": ["item", "factor"],
              "user_factor_mean": ["factor"], "user_bias": ["user"]},
        coords={"user": list("abcd"), "item": np.arange(5), "factor": np.arange(3)},
    )


def test_frobenius_norms_match_numpy():
    dt = _hand_made()
    norms = frobenius_norms(dt)
    assert sorted(norms.data_vars) == ["item_factors", "user_factors"]
    for name in ("user_factors", "item_factors"):
        values = dt["posterior"][name].values
        expected = np.sqrt((values**2).sum(axis=(2, 3)))
        assert norms[name].dims == ("chain", "draw")
        np.testing.assert_allclose(norms[name].values, expected, rtol=1e-12)
        np.testing.assert_allclose(norms[name].values[1, 7],
                                   np.linalg.norm(values[1, 7], "fro"), rtol=1e-12)


def test_frobenius_norms_needs_a_factor_matrix():
    dt = az.from_dict({"posterior": {"x": np.zeros((1, 3))}})
    with pytest.raises(InputError, match="no factor matrix"):
        frobenius_norms(dt)


def _constructed_mu():
    # (chain, draw, pair) on a 1..5 scale; true ratings (4, 2); 6 and 0 are clipped per draw
    return xr.DataArray(np.array([[[3, 2], [6, 2], [3, 5]],
                                  [[4, 1], [4, 3], [0, 2]]], dtype=float),
                        dims=("chain", "draw", "pair"))


def test_running_rmse_of_a_constructed_sequence():
    r = np.sqrt
    ds = rmse_trace_from_draws(_constructed_mu(), [4, 2], low=1, high=5)
    # per draw, clipped: chain 0 errors (-1,0), (1,0), (-1,3); chain 1 (0,-1), (0,1), (-3,0)
    np.testing.assert_allclose(ds["rmse"].sel(split="test").values,
                               [[r(.5), r(.5), r(5)], [r(.5), r(.5), r(4.5)]])
    # running means: chain 0 (3,2), (4.5,2), (4,3); chain 1 (4,1), (4,2), (8/3,2)
    np.testing.assert_allclose(ds["running_rmse"].sel(split="test").values,
                               [[r(.5), r(.125), r(.5)], [r(.5), 0.0, r(8 / 9)]])
    # pooled over chains: (3.5,1.5), (4.25,2), (20/6,15/6)
    pooled = [0.5, r(0.0625 / 2), r(((20 / 6 - 4) ** 2 + 0.25) / 2)]
    np.testing.assert_allclose(ds["pooled_running_rmse"].sel(split="test").values, pooled)


def test_running_rmse_in_blocks_equals_one_block():
    rng = np.random.default_rng(3)
    mu = rng.normal(3, 1.5, size=(3, 17, 40))
    y = rng.integers(1, 6, size=40)
    whole = RunningRMSE(y, 1, 5)
    whole.update(mu)
    blocks = RunningRMSE(y, 1, 5)
    for start in range(0, 17, 5):
        blocks.update(mu[:, start:start + 5])
    for key, value in whole.result().items():
        np.testing.assert_allclose(blocks.result()[key], value)


def test_rhat_flags_two_chains_that_disagree():
    bad = convergence_summary(_hand_made(chain_scales=(1.0, 1.6)))
    assert not bad.ok
    assert float(bad.stats["user_factors_norm"].sel(statistic="r_hat")) > 1.1
    assert any(f.startswith("R-hat of user factors norm") and "chains disagree" in f
               for f in bad.flags)
    assert not any("item factors norm" in f and "R-hat" in f for f in bad.flags)
    good = convergence_summary(_hand_made(chain_scales=(1.0, 1.0), n_draw=500))
    assert not any("R-hat" in f for f in good.flags), good.flags
    assert "user_factors_norm" in good.table.index and "r_hat" in good.table.columns


def test_divergences_flagged_with_their_share():
    diverging = np.zeros((2, 200), dtype=bool)
    diverging[1, :3] = True
    report = convergence_summary(_hand_made(n_draw=200, diverging=diverging))
    assert report.sampler["divergences"] == 3
    assert any("3 divergent transitions (0.8% of draws)" in f for f in report.flags)
    assert "3 divergent transitions" in report.to_text()
    assert "Problems" in report.to_markdown()


def _normal_test_set(n=20_000, seed=0):
    rng = np.random.default_rng(seed)
    mean = rng.normal(0, 2, size=n)
    sd = rng.uniform(0.5, 2.0, size=n)
    y = rng.normal(mean, sd)
    test = Ratings.from_arrays(np.arange(n), np.zeros(n, dtype=int), y,
                               scale=RatingScale.interval(-50, 50))
    return test, mean, sd, rng


def test_coverage_of_a_calibrated_predictive_is_nominal():
    test, mean, sd, rng = _normal_test_set()
    pred = from_normal(test.user_ids, test.item_ids, mean, sd, test.scale)
    cov = interval_coverage(pred, test)
    np.testing.assert_allclose(cov["coverage"].values, [0.5, 0.8, 0.9, 0.95], atol=0.012)
    # the same predictive as draws gives the fine calibration table
    draws = rng.normal(mean, sd, size=(1, 400, len(mean)))
    table = calibration_table(from_draws(test.user_ids, test.item_ids, draws, test.scale), test)
    assert table.attrs["source"] == "draws" and table.sizes["level"] >= 19
    np.testing.assert_allclose(table["coverage"].values, table["level"].values, atol=0.02)
    # an over-confident predictive (half the sd) covers far less than nominal
    narrow = interval_coverage(from_normal(test.user_ids, test.item_ids, mean, sd / 2,
                                           test.scale), test)
    assert (narrow["coverage"].values < np.array([0.5, 0.8, 0.9, 0.95]) - 0.1).all()


# ---------------------------------------------------------------------------------------------
# real fits on tiny simulated data
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def split():
    ratings, _ = simulate_ratings(n_users=60, n_items=50, n_ratings=1500, seed=4)
    return holdout(ratings, 0.2, seed=1)


@pytest.fixture(scope="module")
def pmf_model(split):
    return build_model("pmf", split.train, n_factors=2)


@pytest.fixture(scope="module")
def advi_fit(pmf_model):
    return fit(pmf_model, "advi", random_seed=2, n=1500, draws=60)


@pytest.fixture(scope="module")
def map_fit(pmf_model):
    return fit(pmf_model, "map", random_seed=3, restarts=2, maxiter=200, optimizer="L-BFGS-B")


@pytest.fixture(scope="module")
def nuts_fit(pmf_model):
    return fit(pmf_model, "nuts", random_seed=5, draws=60, tune=100, chains=2)


def _numpy_mu(posterior, chain, draw, ratings):
    p = posterior.isel(chain=chain, draw=draw)
    u, i = ratings.user, ratings.item
    return (float(p["offset"]) + p["user_bias"].values[u] + p["item_bias"].values[i]
            + (p["user_factors"].values[u] * p["item_factors"].values[i]).sum(-1))


def test_rmse_trace_equals_numpy_on_a_pmf_fit(nuts_fit, pmf_model, split):
    trace = rmse_trace(nuts_fit, split.train, split.test, model=pmf_model, max_elements=5_000)
    post = nuts_fit["posterior"].to_dataset()
    assert trace["rmse"].dims == ("split", "chain", "draw")
    assert trace.sizes["draw"] == 60 and list(trace["split"].values) == ["train", "test"]
    for name, ratings in (("train", split.train), ("test", split.test)):
        for chain, draw in ((0, 0), (1, 17), (0, 59)):
            mu = np.clip(_numpy_mu(post, chain, draw, ratings), 1, 5)
            expected = np.sqrt(np.mean((mu - ratings.rating) ** 2))
            assert float(trace["rmse"].sel(split=name).isel(chain=chain, draw=draw)) == \
                pytest.approx(expected, rel=1e-10)
        # the final pooled running RMSE is the RMSE of the clipped posterior mean
        mean = np.mean([_numpy_mu(post, c, d, ratings) for c in range(2) for d in range(60)], 0)
        assert float(trace["pooled_running_rmse"].sel(split=name).isel(draw=-1)) == \
            pytest.approx(np.sqrt(np.mean((np.clip(mean, 1, 5) - ratings.rating) ** 2)))


def test_evaluate_draws_and_log_likelihood_match_numpy(advi_fit, pmf_model, split):
    ev = evaluate_draws(advi_fit, split.test.user_ids, split.test.item_ids, model=pmf_model)
    post = advi_fit["posterior"].to_dataset()
    np.testing.assert_allclose(ev["mu"].isel(chain=0, draw=11).values,
                               _numpy_mu(post, 0, 11, split.test), rtol=1e-10)
    ll = log_likelihood_draws(advi_fit, model=pmf_model)
    p = post.isel(chain=0, draw=5)
    resid = split.train.rating - _numpy_mu(post, 0, 5, split.train)
    sigma = float(p["sigma"])
    expected = np.sum(-0.5 * (resid / sigma) ** 2 - np.log(sigma) - 0.5 * np.log(2 * np.pi))
    assert float(ll.isel(chain=0, draw=5)) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("which", ["map_fit", "advi_fit"])
def test_rmse_trace_and_convergence_for_point_and_advi_fits(which, request, pmf_model, split):
    f = request.getfixturevalue(which)
    trace = rmse_trace(f, None, split.test, model=pmf_model)
    n_chain, n_draw = f["posterior"].sizes["chain"], f["posterior"].sizes["draw"]
    assert trace.sizes == {"split": 2, "chain": n_chain, "draw": n_draw}
    pred = predict(f, pairs=split.test, model=pmf_model, max_draws=None, point_draws=2)
    if which == "advi_fit":  # the last pooled running RMSE is the RMSE of predict's mean
        expected = np.sqrt(np.mean((pred["mean"].values - split.test.rating) ** 2))
        assert float(trace["pooled_running_rmse"].sel(split="test")[-1]) == \
            pytest.approx(expected, rel=1e-8)
    else:  # MAP: each restart is a chain with one draw
        np.testing.assert_allclose(trace["rmse"].values, trace["running_rmse"].values)
    report = convergence_summary(f, pairs=split.test, model=pmf_model, n_pairs=20)
    assert report.quantities["mu"].sizes["pair"] == 20
    assert np.isfinite(report.quantities["log_likelihood"].values).all()
    if which == "map_fit":
        assert report.sampler["restarts"] == 2 and "restart_prediction_sd" in report.sampler
    else:
        assert report.sampler["iterations"] <= 1500 and "loss_rel_change_last10pct" in \
            report.sampler


def test_nuts_convergence_reads_sampler_stats(nuts_fit, pmf_model, split):
    report = convergence_summary(nuts_fit, pairs=split.test, model=pmf_model)
    for key in ("divergences", "max_treedepth_fraction", "step_size_per_chain"):
        assert key in report.sampler
    assert len(report.sampler["step_size_per_chain"]) == 2
    assert np.isfinite(report.stats["log_likelihood"].sel(statistic="r_hat"))
    # 60 draws per chain cannot reach the ESS target of 100 per chain for every quantity
    assert any("ESS" in f for f in report.flags)


def test_diagnostics_group_round_trips(tmp_path, map_fit, pmf_model, split):
    computed = compute_diagnostics(map_fit, None, split.test, model=pmf_model, n_pairs=10)
    norms, trace, report = computed["norms"], computed["rmse_trace"], computed["convergence"]
    xr.testing.assert_allclose(norms, frobenius_norms(map_fit))
    with_diag = add_diagnostics(map_fit, **computed)
    assert "diagnostics" not in map_fit.children  # the fit itself is unchanged
    path = save_fit(with_diag, tmp_path / "fit.nc")
    loaded = get_diagnostics(load_fit(path))
    assert sorted(loaded) == ["convergence", "norms", "rmse_trace"]
    xr.testing.assert_allclose(loaded["norms"], norms)
    np.testing.assert_allclose(loaded["rmse_trace"]["rmse"].values, trace["rmse"].values)
    assert json.loads(loaded["convergence"].attrs["flags"]) == report.flags


# ---------------------------------------------------------------------------------------------
# plots
# ---------------------------------------------------------------------------------------------
def _is_png(path) -> bool:
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plots_return_figures_and_save_png(tmp_path, advi_fit, pmf_model, split):
    trace = rmse_trace(advi_fit, None, split.test, model=pmf_model)
    pred = predict(advi_fit, pairs=split.test, model=pmf_model, random_seed=0, keep_draws=True)
    users = list(split.test.user_ids[:2])
    figures = {
        "norms": plot_norm_traces(frobenius_norms(advi_fit)),
        "trace": plot_rmse_trace(trace),
        "loss": plot_advi_loss(advi_fit["advi"].to_dataset()),
        "calibration": plot_calibration(calibration_table(pred, split.test)),
        "predictive": plot_user_predictive(pred, users, observed=split.test.rating),
        "predictive_quantiles": plot_user_predictive(pred.drop_vars(["rating", "mu"]), users),
        "comparison": plot_method_comparison(
            [{"label": "a", "test_rmse": 1.0, "train_rmse": 0.9},
             {"model": "pmf", "method": "map", "test_rmse": 0.95}]),
    }
    for name, figure in figures.items():
        assert isinstance(figure, Figure), name
        figure.savefig(tmp_path / f"{name}.png")
        assert _is_png(tmp_path / f"{name}.png")


def test_plots_take_fits_and_dicts_of_fits(tmp_path, advi_fit, map_fit, split):
    """What a user naturally has: the fit itself for the ADVI loss, and a dict of fits and
    predictions (with the test set) for the method comparison."""
    from bayesrec.diagnostics import comparison_table
    from bayesrec.metrics import rmse
    from bayesrec.recommenders import make_recommender

    loss = plot_advi_loss(advi_fit)
    np.testing.assert_array_equal(loss.axes[0].lines[0].get_ydata(),
                                  advi_fit["advi"]["loss"].values)
    assert isinstance(plot_advi_loss(advi_fit["advi"]), Figure)
    with pytest.raises(InputError, match="no 'advi' group"):
        plot_advi_loss(map_fit)

    pred = predict(map_fit, pairs=split.test)
    baseline = make_recommender("biases").fit(split.train)
    entries = {"advi": advi_fit, "map (prediction)": pred, "biases": baseline}
    table = comparison_table(entries, test=split.test, train=split.train).set_index("label")
    assert table.loc["map (prediction)", "test_rmse"] == rmse(split.test.rating, pred["mean"])
    assert np.isnan(table.loc["map (prediction)", "train_rmse"])  # it holds test pairs only
    assert table.loc["advi", "test_rmse"] == rmse(
        split.test.rating, predict(advi_fit, pairs=split.test)["mean"])
    assert np.isfinite(table.loc[["advi", "biases"], "train_rmse"]).all()
    figure = plot_method_comparison(entries, test=split.test)
    assert isinstance(figure, Figure)
    figure.savefig(tmp_path / "comparison.png")
    assert _is_png(tmp_path / "comparison.png")
    with pytest.raises(InputError, match="needs test="):
        plot_method_comparison({"advi": advi_fit})
    with pytest.raises(InputError, match="comparison entry 'x' is a str"):
        plot_method_comparison({"x": "nonsense"}, test=split.test)


def test_rating_pattern_heatmap_shows_expected_ratings():
    prob = np.zeros((2, 3, 2, 3, 5))  # chain, draw, user_group, item_group, rating_level
    prob[..., 0, :, 4] = 1.0  # user group 0 always rates 5
    prob[..., 1, :, :] = 0.2  # user group 1 is uniform over 1..5 (expected 3)
    da = xr.DataArray(prob, dims=("chain", "draw", "user_group", "item_group", "rating_level"),
                      coords={"rating_level": [1, 2, 3, 4, 5]})
    figure = plot_rating_patterns(da, per_level=True)
    assert isinstance(figure, Figure)
    shown = np.asarray(figure.axes[0].images[0].get_array())
    np.testing.assert_allclose(shown, [[5, 5, 5], [3, 3, 3]])
    with pytest.raises(InputError, match="no dim"):
        plot_rating_patterns(da.rename(user_group="g"))


# ---------------------------------------------------------------------------------------------
# the report command
# ---------------------------------------------------------------------------------------------
def test_report_command_writes_its_files(tmp_path, advi_fit, map_fit, split, capsys):
    from bayesrec.cli import main

    fit_path = save_fit(advi_fit, tmp_path / "advi.nc")
    test_csv = tmp_path / "test.csv"
    split.test.to_dataframe()[["user", "item", "rating"]].to_csv(test_csv, index=False)
    out = tmp_path / "report"
    map_path = save_fit(map_fit, tmp_path / "map.nc")
    rc = main(["report", str(fit_path), "--test", str(test_csv), "--out", str(out),
               "--users", f"{split.test.user_ids[0]}", "--max-draws", "40",
               "--compare", str(map_path)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    for name in ("report.md", "norms.png", "rmse_trace.png", "calibration.png",
                 "method_comparison.png", "user_predictive.png", "advi_loss.png",
                 "diagnostics.nc"):
        assert (out / name).is_file(), name
    assert _is_png(out / "rmse_trace.png")
    text = (out / "report.md").read_text()
    assert "## Convergence" in text and "## Calibration" in text and "biases (baseline)" in text
    assert "| pmf / advi (this fit) |" in text and "| pmf / map |" in text  # --compare
    stored = xr.open_datatree(out / "diagnostics.nc", engine="h5netcdf")
    assert {"rmse_trace", "convergence", "norms", "calibration"} <= set(stored.children)
    stored.close()


def test_report_command_rejects_a_bad_spec(tmp_path, advi_fit, capsys):
    from bayesrec.cli import main

    fit_path = save_fit(advi_fit, tmp_path / "advi.nc")
    assert main(["report", str(fit_path), "--test", "nonsense"]) == 2
    assert "DATASET:FOLD" in capsys.readouterr().err


def test_evaluate_save_fit_writes_loadable_fits(tmp_path, split, capsys):
    from bayesrec.cli import main

    csv = tmp_path / "ratings.csv"
    split.train.to_dataframe()[["user", "item", "rating"]].to_csv(csv, index=False)
    rc = main(["evaluate", "--model", "pmf", "--method", "map", "--dataset", str(csv),
               "--kfold", "2", "--fast", "--save-fit", str(tmp_path / "fits")])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    saved = sorted(p.name for p in (tmp_path / "fits").iterdir())
    # named after the run: <model>-<method>-<fold>-<run id>.nc (see tests/test_cli_outputs.py)
    run = saved[0].rsplit("-", 1)[1].removesuffix(".nc")
    assert saved == [f"pmf-map-fold1-{run}.nc", f"pmf-map-fold2-{run}.nc"] and len(run) == 10
    loaded = load_fit(tmp_path / "fits" / saved[1])
    assert loaded.attrs["bayesrec_model"] == "pmf" and loaded.attrs["method"] == "map"
    assert main(["evaluate", "--model", "biases", "--dataset", str(csv), "--save-fit",
                 str(tmp_path)]) == 2
    assert "--save-fit applies to Bayesian models only" in capsys.readouterr().err
