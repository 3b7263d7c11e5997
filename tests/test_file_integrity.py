"""A saved fit is what it says: every edit of what predictions use is refused on load.

Found before: changing the root attribute ``bayesrec_config`` (``n_factors`` 3 -> 4, or
``link`` -> "logistic") loaded and predicted, and poisoned the in-process model cache
so that the original file then failed; multiplying the posterior factors by 5, or
setting ``observed_data/rating`` to 1, was not caught either.  The model is rebuilt
from hashed content only, every array that predictions use is hashed, and the model
cache is keyed by the content itself.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from bayesrec import InputError
from bayesrec.data.simulate import simulate_ratings
from bayesrec.data.splits import holdout
from bayesrec.inference import fit, load_fit, predict, save_fit
from bayesrec.models import build_model


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    ratings, _ = simulate_ratings(n_users=30, n_items=20, n_ratings=300, seed=8)
    split = holdout(ratings, 0.2, seed=0)
    f = fit(build_model("pmf", split.train, n_factors=3), "advi", n=300, draws=30,
            random_seed=1)
    folder = tmp_path_factory.mktemp("fits")
    return split, f, save_fit(f, folder / "fit.nc"), folder


def _tamper(path, folder, name, edit):
    tree = xr.open_datatree(path, engine="h5netcdf").load()
    edit(tree)
    target = folder / name
    tree.to_netcdf(target, engine="h5netcdf")
    return target


def _config(tree, **changes):
    config = json.loads(tree["bayesrec"].attrs["config"])
    tree["bayesrec"].attrs["config"] = json.dumps({**config, **changes}, sort_keys=True)


def _root_config(tree, **changes):
    config = json.loads(tree.attrs["bayesrec_config"])
    tree.attrs["bayesrec_config"] = json.dumps({**config, **changes}, sort_keys=True)


def _scale_factors(tree):
    tree["posterior"]["user_factors"] = tree["posterior"]["user_factors"] * 5


def _ratings_to_one(tree):
    tree["observed_data"]["rating"] = xr.ones_like(tree["observed_data"]["rating"])


EDITS = {
    "root config n_factors": lambda t: _root_config(t, n_factors=4),
    "root config link": lambda t: _root_config(t, link="logistic"),
    "record config link": lambda t: _config(t, link="logistic"),
    "posterior factors x 5": _scale_factors,
    "observed ratings set to 1": _ratings_to_one,
}


@pytest.mark.parametrize("edit", list(EDITS))
def test_every_edit_is_refused(saved, edit):
    _, _, path, folder = saved
    tampered = _tamper(path, folder, f"{edit.replace(' ', '_')}.nc", EDITS[edit])
    with pytest.raises(InputError, match="does not match its recorded hash|differ from"):
        load_fit(tampered)


def test_an_edited_file_cannot_poison_the_original(saved):
    """Read without verification, an edited fit meets its own model (whatever that gives:
    with n_factors 4 the draws' 3 factors still fit the graph); the original file then
    predicts exactly as before (the model cache is keyed by content)."""
    split, _, path, folder = saved
    original = predict(load_fit(path), pairs=split.test, keep_draws=False)["mean"].values
    tampered = _tamper(path, folder, "n_factors.nc", lambda t: _config(t, n_factors=4))
    edited = load_fit(tampered, verify=False)
    from bayesrec.inference.record import FitRecord

    assert FitRecord(edited).config["n_factors"] == 4
    assert FitRecord(edited).model_key() != FitRecord(load_fit(path)).model_key()
    try:
        predict(edited, pairs=split.test, keep_draws=False)
    except Exception as err:  # noqa: BLE001 - a shape error is as good as a prediction
        assert any(w in str(err) for w in ("shape", "size", "broadcast", "dimension"))
    again = predict(load_fit(path), pairs=split.test, keep_draws=False)["mean"].values
    np.testing.assert_array_equal(again, original)


def test_in_memory_edits_meet_their_own_model(saved):
    """Two fits in one process with the same ids and config but other training data do
    not share a cached model."""
    split, f, _, _ = saved
    edited = f.copy()
    edited["observed_data"]["rating"] = xr.full_like(f["observed_data"]["rating"], 5.0)
    a = predict(f, pairs=split.test, keep_draws=False)
    b = predict(edited, pairs=split.test, keep_draws=False)
    np.testing.assert_array_equal(a["mean"].values, b["mean"].values)  # same draws: same mu
    from bayesrec.inference.record import FitRecord

    assert FitRecord(f).model_key() != FitRecord(edited).model_key()
    assert FitRecord(edited).ratings.rating.max() == 5.0


def test_a_thinned_save_is_smaller_keeps_every_kth_draw_and_loads(saved, tmp_path):
    split, f, path, _ = saved
    small = save_fit(f, tmp_path / "thin.nc", thin=3)
    loaded = load_fit(small)                                  # hashes recomputed: accepted
    assert loaded.attrs["thinned_by"] == 3
    kept = f["posterior"]["user_factors"].isel(draw=slice(None, None, 3))
    np.testing.assert_array_equal(loaded["posterior"]["user_factors"].values, kept.values)
    assert loaded["posterior"].sizes["draw"] == 10           # 30 draws, every third
    assert small.stat().st_size < path.stat().st_size
    # the thinned fit predicts like the full one, within the Monte Carlo error of 10 draws
    full, thin = (predict(x, pairs=split.test, random_seed=0)["mean"] for x in (f, loaded))
    sd = predict(f, pairs=split.test, random_seed=0)["sd"]
    assert float(np.max(np.abs(full - thin) / sd)) < 4 / np.sqrt(10) + 0.5
    with pytest.raises(InputError, match="positive integer"):
        save_fit(f, tmp_path / "bad.nc", thin=0)
    with pytest.raises(InputError, match="keep no draw"):
        save_fit(f, tmp_path / "bad.nc", thin=31)
