"""A MAP point whose factors collapsed is said in plain words; the defaults do not collapse.

On ``simulate_ratings(200, 150, 6000)`` the registry's old MAP setting (PMF with the
stronger factor shrinkage, now the ``point_estimate`` preset) collapsed every restart to
factor norms of about 0.002 (test RMSE 1.020, worse than the biases baseline) while the
convergence summary said "No problems found".
"""

from __future__ import annotations

import warnings

import numpy as np
import pymc as pm
import pytest

from bayesrec import FitWarning
from bayesrec.data.simulate import simulate_ratings
from bayesrec.diagnostics import convergence_summary
from bayesrec.inference import fit
from bayesrec.models import build_model


@pytest.fixture(scope="module")
def ratings():
    return simulate_ratings(200, 150, 6000, seed=0)[0]


def test_a_collapsed_map_warns_and_is_flagged(ratings):
    model = build_model("pmf", ratings, n_factors=3, preset="point_estimate")
    with pytest.warns(FitWarning, match="MAP collapsed: at the optimum the factor matrices"):
        f = fit(model, "map", restarts=3, random_seed=3)
    report = f["optimizer_result"].to_dataset()
    assert (report["factor_rmse_gain"].values < 1e-3).all()
    assert (report["factor_rms"].values < 0.01).all()
    summary = convergence_summary(f)
    assert any("collapsed" in flag for flag in summary.flags), summary.flags


@pytest.mark.parametrize("seed", [0, *(pytest.param(s, marks=pytest.mark.agreement)
                                       for s in (1, 2, 3))])
def test_the_default_prior_does_not_collapse(ratings, seed):
    model = build_model("pmf", ratings, n_factors=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FitWarning)
        f = fit(model, "map", restarts=3, random_seed=seed)
    gain = f["optimizer_result"]["factor_rmse_gain"].values
    assert (gain > 0.05).all(), gain  # the factors lower the training RMSE clearly
    assert not any("collapsed" in flag for flag in convergence_summary(f).flags)


def test_pymc_find_map_from_the_model_alone_leaves_the_saddle(ratings):
    """All-zero factors are a saddle point: the factories start elsewhere, so PyMC's own
    tools work on the model as built."""
    model = build_model("pmf", ratings, n_factors=3)
    start = model.initial_point()
    assert np.abs(start["user_factors"]).min() > 0
    with model:
        point = pm.find_MAP(progressbar=False, return_inferencedata=False, jitter=False,
                            maxiter=2000)
    assert np.linalg.norm(point["user_factors"]) > 1.0
    # the same model twice starts from the same point (no global random state)
    again = build_model("pmf", ratings, n_factors=3).initial_point()
    np.testing.assert_array_equal(again["user_factors"], start["user_factors"])
