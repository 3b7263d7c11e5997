"""Paths that keep a fit's and a prediction's memory bounded: the training check takes the
training pairs a block at a time, level probabilities read thinned draws in place, and
the content hash reads the posterior's buffers without copying them.  Each test checks
what is evaluated or copied (and that the numbers are those of the one-pass computation),
not a measured peak (``benchmarks/memory.py`` measures that)."""

from __future__ import annotations

import hashlib
import importlib

import numpy as np
import pytest
import xarray as xr

from bayesrec.data.simulate import simulate_ratings
from bayesrec.data.splits import holdout
from bayesrec.inference import checks, fit, predict
from bayesrec.inference.draws import draw_evaluator, iter_draw_blocks
from bayesrec.inference.record import FitRecord, content_hash, posterior_of, thin_index
from bayesrec.models import build_model

# the module (the package's ``predict`` attribute is the function)
predict_module = importlib.import_module("bayesrec.inference.predict")


@pytest.fixture(scope="module")
def split():
    ratings, _ = simulate_ratings(n_users=40, n_items=30, n_ratings=700, seed=4)
    return holdout(ratings, 0.2, seed=1)


@pytest.fixture(scope="module")
def bpmf_fit(split):
    return fit(build_model("bpmf", split.train, n_factors=2), "gibbs", draws=60, tune=10,
               random_seed=1, progressbar=False)


def _one_pass_check(fit_, model):
    """The training check as one pass over every training pair (what blocks must equal)."""
    evaluator = draw_evaluator(model, ("mu",))
    posterior = posterior_of(fit_)
    idx = thin_index(posterior.sizes["chain"], posterior.sizes["draw"], checks.MAX_CHECK_DRAWS)
    posterior = posterior if idx is None else posterior.isel(draw=idx)
    n = len(model["user_idx"].get_value())
    total, count = np.zeros(n), 0
    for _, out in iter_draw_blocks(posterior[evaluator.inputs], evaluator, n_pairs=n):
        mu = out["mu"].reshape(-1, n)
        total += mu.sum(0)
        count += mu.shape[0]
    return total / count


def test_training_check_takes_the_pairs_a_block_at_a_time(bpmf_fit, monkeypatch):
    """MMSBM's graph forms pairs x groups x levels per sample: the check of 10 restarts on
    80,000 ratings took 500 MB in one block.  Blocks of pairs bound it; the numbers are
    those of one pass, to the last bit."""
    model = FitRecord(bpmf_fit).model()
    expected = _one_pass_check(bpmf_fit, model)
    rating = np.asarray(FitRecord(bpmf_fit).ratings.rating, dtype=float)
    clipped = FitRecord(bpmf_fit).ratings.scale.clip(expected)
    one_pass = float(np.sqrt(np.mean((clipped - rating) ** 2)))

    seen = []
    evaluator = draw_evaluator(model, ("mu",))
    original = type(evaluator).__call__

    def spy(self, values):
        out = original(self, values)
        seen.append(out["mu"].size)  # samples x pairs of this call
        return out

    monkeypatch.setattr(type(evaluator), "__call__", spy)
    monkeypatch.setattr(checks, "CHECK_BLOCK_ELEMENTS", 2000)
    got = checks.training_check(bpmf_fit, model)
    width = 2  # n_factors: the widest row gathered per pair
    assert len(seen) > 3 and max(seen) * width <= 2000
    assert got["training_rmse"] == one_pass
    n = len(rating)
    assert len(model["user_idx"].get_value()) == n  # the model's own pairs are back


def test_level_probabilities_read_thinned_draws_in_place(bpmf_fit, split, monkeypatch):
    """A continuous likelihood's level masses average LEVEL_PROB_DRAWS thinned draws: they
    are read from the fit's arrays a block at a time, not copied out by ``isel`` first,
    and give the numbers of the copy."""
    monkeypatch.setattr(predict_module, "LEVEL_PROB_DRAWS", 30)
    model = FitRecord(bpmf_fit).model()
    draws = predict_module._Draws(bpmf_fit["posterior"].to_dataset(), 1000)
    evaluator = predict_module._prob_evaluator(model, FitRecord(bpmf_fit).ratings.scale)
    posterior, positions = predict_module._prob_posterior(model, evaluator, draws)
    assert positions is not None and len(positions) == 15  # 30 draws over 2 chains
    name = evaluator.inputs[0]
    assert np.shares_memory(posterior[name].values, bpmf_fit["posterior"][name].values)
    with _test_pairs(model, bpmf_fit, split):
        in_place = predict_module._posterior_mean(evaluator, "prob", (posterior, positions),
                                                  split.test.n_ratings)
        by_copy = predict_module._posterior_mean(
            evaluator, "prob", (posterior.isel(draw=positions), None), split.test.n_ratings)
    np.testing.assert_array_equal(in_place, by_copy)
    assert predict(bpmf_fit, pairs=split.test)["prob"].shape == by_copy.shape


def _test_pairs(model, fit_, split):
    train = FitRecord(fit_).ratings
    return predict_module.swapped_pairs(model, train.user_codes_of(split.test.user_ids),
                                        train.item_codes_of(split.test.item_ids))


def test_content_hash_reads_the_buffers_as_their_bytes():
    """The hash feeds each array's buffer (no ``tobytes`` copy of a posterior of hundreds
    of MB) and is the hash of its bytes, as before, for any layout and dtype."""
    a = np.arange(24.0).reshape(2, 3, 4).transpose(0, 2, 1)  # not C-contiguous
    b = np.array([[1, 0], [0, 1]], dtype=bool)
    fit_ = xr.DataTree.from_dict({
        "posterior": xr.Dataset({"a": (("chain", "draw", "x"), a), "b": (("chain", "x2"), b)}),
        "bayesrec": xr.Dataset(attrs={"model_hash": "m"})})
    h = hashlib.sha256(b"m")
    for name, arr in (("a", a), ("b", b)):
        dims = fit_["posterior"][name].dims
        h.update(f"\x1d{name}\x1f{dims}\x1f{arr.shape}".encode())
        h.update(arr.dtype.str.encode())
        h.update(np.ascontiguousarray(arr).tobytes())
    assert content_hash(fit_) == h.hexdigest()


def test_draw_blocks_read_a_sampled_fit_in_place(bpmf_fit):
    """Prediction's blocks of draws are views of the posterior, one chain at a time: all
    chains at once copied every input (the whole posterior of BPMF by Gibbs on MovieLens
    u1, 210 MB, when one block held every draw).  The outputs are those of evaluating every
    draw on its own, to the last bit."""
    record = FitRecord(bpmf_fit)
    model = record.model()
    evaluator = draw_evaluator(model, ("mu",))
    posterior = posterior_of(bpmf_fit)[evaluator.inputs]
    arrays = {n: posterior[n].transpose("chain", "draw", ...).values for n in evaluator.inputs}
    seen = []

    class Watching:
        inputs, outputs = evaluator.inputs, evaluator.outputs

        def __call__(self, values):
            seen.append(all(np.shares_memory(values[n], arrays[n]) for n in values))
            return evaluator(values)

    n = len(model["user_idx"].get_value())
    # blocks of 10 draws: a run of draws of every chain at once is not contiguous
    budget = 10 * posterior.sizes["chain"] * n * posterior.sizes["factor"]
    blocks = list(iter_draw_blocks(posterior, Watching(), n_pairs=n, max_elements=budget))
    assert len(blocks) > 1 and all(seen), "a block of draws was copied out of the posterior"
    mu = np.concatenate([out["mu"] for _, out in blocks], axis=1)
    assert mu.shape[:2] == (posterior.sizes["chain"], posterior.sizes["draw"])
    one = evaluator({name: a[1, 7:8] for name, a in arrays.items()})["mu"][0]
    np.testing.assert_array_equal(mu[1, 7], one)


def test_a_pairs_row_is_a_variable_over_its_user_or_item_dim():
    """MPMA's local item factors (user_cluster, item, factor) give a pair 4 x 10 numbers,
    not 1682 x 10: counted as the latter, MPMA's ADVI training check on u1 took its
    80,000 pairs one at a time (an hour)."""
    from bayesrec.inference.draws import row_width

    def var(*dims_sizes):
        dims = ("chain", "draw", *(d for d, _ in dims_sizes))
        return xr.DataArray(np.zeros((1, 2, *(n for _, n in dims_sizes))), dims=dims)

    post = xr.Dataset({"local_item": var(("user_cluster", 4), ("item", 1682), ("factor", 10)),
                       "user_factors": var(("user", 943), ("factor", 10)),
                       "user_bias": var(("user", 943)),
                       "weights": var(("component", 5))})
    assert row_width(post, ["local_item"]) == 40
    assert row_width(post, ["user_factors", "user_bias"]) == 10
    assert row_width(post, ["user_bias"]) == 1
    assert row_width(post, ["weights", "user_factors"]) == 10
    # read once per draw, not per pair: coefficients (user_feature, factor), a packed
    # Cholesky factor, cutpoints do not widen a pair's row
    post["user_feature_coef_std"] = var(("user_feature", 24), ("factor", 10))
    post["user_factors_chol"] = var(("user_factors_chol_dim_0", 55))
    assert row_width(post, ["user_feature_coef_std", "user_factors_chol", "user_bias"]) == 1
    assert row_width(post, ["user_feature_coef_std", "user_factors"]) == 10
    assert row_width(post, []) == 1
