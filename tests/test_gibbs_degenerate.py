"""Gibbs on ratings the model fits exactly: refused clearly, never a division by zero."""

from __future__ import annotations

import numpy as np
import pytest

import bayesrec.inference.gibbs.steps as steps
from bayesrec import Ratings
from bayesrec.data.simulate import simulate_ratings
from bayesrec.errors import FitError, InputError
from bayesrec.inference import fit
from bayesrec.models import build_model


@pytest.fixture(scope="module")
def ratings() -> Ratings:
    return simulate_ratings(30, 20, 240, seed=0)[0]


# ---------------------------------------------------------------------------------------------
def _constant_ratings(value=4.0) -> Ratings:
    rng = np.random.default_rng(0)
    pairs = {(int(u), int(i)) for u, i in zip(rng.integers(0, 30, 400), rng.integers(0, 25, 400),
                                              strict=True)}
    users, items = zip(*sorted(pairs), strict=True)
    return Ratings.from_arrays(list(users), list(items), np.full(len(users), value),
                               scale="1-5")


@pytest.mark.parametrize("name", ["pmf", "bpmf"])
def test_gibbs_refuses_ratings_that_all_have_one_value(name):
    """All-identical ratings used to run until the noise sd reached 0.0 and then divide by
    it (ZeroDivisionError); now the sampler refuses them up front."""
    model = build_model(name, _constant_ratings(), n_factors=2)
    with pytest.raises(InputError, match=r"every training rating equals 4: the noise sd .* "
                       r"cannot run; fit on ratings that vary"):
        fit(model, "gibbs", draws=20, tune=10, chains=1, random_seed=0, progressbar=False)


def test_a_noise_sd_that_collapses_mid_run_is_a_fit_error(ratings, monkeypatch):
    """A noise draw of exactly zero (what the independence MH step proposes once the sum of
    squares is zero) is reported as a failed fit, not divided by."""
    monkeypatch.setattr(steps, "scale_independence_mh",
                        lambda rng, current, n, sse, scale: (0.0, True))
    model = build_model("pmf", ratings, n_factors=2)
    with pytest.raises(FitError, match=r"the noise sd collapsed to 0 during Gibbs sampling"):
        fit(model, "gibbs", draws=5, tune=0, chains=1, random_seed=0, progressbar=False)
    with pytest.raises(FitError, match="bias sd collapsed"):
        steps.require_scale(float(np.exp(-800.0)), "bias sd")
    assert steps.require_scale(0.5, "noise sd") == 0.5
