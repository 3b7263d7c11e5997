"""Every registered Bayesian model through the JAX NUTS samplers (numpyro, blackjax).

A JAX fit must look like a nutpie fit of the same model: the same groups, the same
variables with the same dims, the same training data, the common sample statistics;
and it must predict finite ratings.  The chains are far too short to be compared by
value: this is about plumbing (custom Ops need JAX versions, see
``bayesrec.models._jax``).  Skipped when jax is not installed (``bayesrec[jax]``).
Every model but PMF is marked slow: ``pytest -m slow tests/test_jax_samplers.py``.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import xarray as xr

from bayesrec.data.simulate import simulate_ratings
from bayesrec.data.splits import holdout
from bayesrec.inference import fit, predict
from bayesrec.models import build_model, get_spec, list_models

pytest.importorskip("jax")

#: PMF runs by default; the other models (30 s to 90 s each on two cores, mostly JAX and
#: nutpie compilation) run with ``-m slow``.
BAYESIAN = [name if name == "pmf" else pytest.param(name, marks=pytest.mark.slow)
            for name in (s.name for s in list_models(kind="bayesian"))]
SHORT = {"draws": 10, "tune": 10, "chains": 2}
#: sample statistics every sampler reports (after fit's renaming of nutpie's names)
COMMON_STATS = {"diverging", "lp", "tree_depth", "acceptance_rate", "energy", "n_steps"}

pytestmark = [
    pytest.mark.filterwarnings("ignore:There are not enough devices to run parallel chains"),
    pytest.mark.filterwarnings("ignore:PyTensor could not link to a BLAS"),
]


@pytest.fixture(scope="module")
def split():
    ratings, _ = simulate_ratings(n_users=20, n_items=15, n_ratings=160, seed=21)
    return holdout(ratings, 0.2, seed=1)


@pytest.fixture(scope="module")
def nutpie_fits(split):
    """The reference fit of each model, made once (``{name: (model, fit)}``)."""
    cache = {}

    def get(name):
        if name not in cache:
            model = build_model(name, split.train, **get_spec(name).fast.options)
            cache[name] = model, fit(model, "nuts", random_seed=1, sampler="nutpie", **SHORT)
        return cache[name]

    return get


def _dims(dt, group):
    ds = dt[group].to_dataset()
    return {v: ds[v].dims for v in ds.data_vars}


@pytest.mark.parametrize("sampler", ["numpyro", "blackjax"])
@pytest.mark.parametrize("name", BAYESIAN)
def test_jax_sampler_fit_looks_like_nutpie(name, sampler, split, nutpie_fits):
    if importlib.util.find_spec(sampler) is None:
        pytest.skip(f"{sampler} is not installed")
    model, reference = nutpie_fits(name)
    dt = fit(model, "nuts", random_seed=1, sampler=sampler, **SHORT)

    assert set(dt.children) == set(reference.children)
    assert _dims(dt, "posterior") == _dims(reference, "posterior")
    assert dict(dt["posterior"].sizes) == dict(reference["posterior"].sizes)
    for group in ("observed_data", "constant_data", "bayesrec"):
        xr.testing.assert_equal(dt[group].to_dataset(), reference[group].to_dataset())
    stats = _dims(dt, "sample_stats")
    assert COMMON_STATS <= set(stats) and COMMON_STATS <= set(_dims(reference, "sample_stats"))
    assert all(d == ("chain", "draw") for v, d in stats.items() if v in COMMON_STATS)
    assert f'"sampler": "{sampler}"' in dt.attrs["method_options"]
    # the same model and data (the content hash also covers the draws, which differ)
    assert dt["bayesrec"].attrs["model_hash"] == reference["bayesrec"].attrs["model_hash"]

    pred = predict(dt, pairs=split.test, random_seed=0)
    for var in ("mean", "sd"):
        assert np.isfinite(pred[var].values).all(), var
