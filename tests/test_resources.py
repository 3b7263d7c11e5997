"""Memory estimates before a fit (inference/resources.py), checked by fit() itself."""

from __future__ import annotations

import pytest

from bayesrec import Ratings
from bayesrec.data.simulate import simulate_ratings
from bayesrec.errors import InputError
from bayesrec.inference import fit, method_options
from bayesrec.inference.resources import (
    MEMORY_SHARE,
    check_memory,
    estimate_memory,
    machine_memory,
    parse_bytes,
)
from bayesrec.models import build_model


@pytest.fixture(scope="module")
def ratings() -> Ratings:
    return simulate_ratings(30, 20, 240, seed=0)[0]


@pytest.mark.parametrize(("method", "copies", "draw_copies"),
                         [("map", 4, 1), ("nuts", 4, 2), ("gibbs", 1, 2), ("advi", 4, 1)])
def test_the_estimate_counts_shapes_by_hand(ratings, method, copies, draw_copies):
    k = 3
    model = build_model("pmf", ratings, n_factors=k)
    opts = method_options(method, model)
    est = estimate_memory(model, method, opts)
    n_units = ratings.n_users + ratings.n_items
    # factors and a bias per user and item, the offset and the noise sd
    assert est.parameters == n_units * (k + 1) + 2
    assert est.stored_per_draw == est.parameters  # mu (obs) is not stored
    draws = {"map": opts.get("restarts"), "nuts": opts.get("chains", 0) * opts.get("draws", 0),
             "gibbs": opts.get("chains", 0) * opts.get("draws", 0),
             "advi": opts.get("draws")}[method]
    assert est.stored_draws == draws
    assert est.draws_bytes == draw_copies * draws * est.parameters * 8
    # each rating gathers its user's and its item's factors and biases
    assert est.intermediate_bytes == copies * len(ratings) * (2 * k + 2) * 8
    assert est.total == est.draws_bytes + est.intermediate_bytes + est.working_bytes


def test_minibatch_and_fullrank_working_memory(ratings):
    model = build_model("pmf", ratings, n_factors=2)
    batch = estimate_memory(model, "minibatch_advi",
                            method_options("minibatch_advi", model, batch_size=10))
    assert batch.intermediate_bytes == 4 * 10 * 6 * 8
    full = estimate_memory(model, "fullrank_advi", method_options("fullrank_advi", model))
    p = full.parameters
    assert full.working_bytes >= 4 * p * (p + 1) // 2 * 8  # the Cholesky factor and Adam's


def test_a_fit_too_large_is_refused_before_any_work(ratings):
    """100,000 factors on a few hundred ratings: the gathered rows alone are gigabytes."""
    model = build_model("pmf", ratings, n_factors=100_000)
    with pytest.raises(InputError, match=r"this map fit would need at least [\d.]+ GB .*"
                       r"more than the 1.0 GB allowed \(max_memory=1.0 GB\).*max_memory=None "
                       r"to go ahead anyway"):
        fit(model, "map", max_memory="1G", random_seed=0)
    total = machine_memory()
    if total is not None and estimate_memory(model, "map", method_options(
            "map", model)).total > MEMORY_SHARE * total:
        with pytest.raises(InputError, match=r"of this machine's"):
            fit(model, "map", random_seed=0)  # the default limit: half the machine
    small = build_model("pmf", ratings, n_factors=2)
    assert check_memory(small, "map", method_options("map", small), None).total > 0
    with pytest.raises(InputError, match="max_memory must be 'auto', a number of bytes"):
        check_memory(small, "map", method_options("map", small), max_memory=[1])


@pytest.mark.parametrize(("text", "size"), [("8G", 8 * 2**30), ("512MB", 512 * 2**20),
                                            ("1.5 GiB", int(1.5 * 2**30)), ("2000", 2000)])
def test_parse_bytes(text, size):
    assert parse_bytes(text) == size


@pytest.mark.parametrize("text", ["", "G", "-1G", "0", "8X", "nan", "lots"])
def test_parse_bytes_refuses(text):
    with pytest.raises(InputError, match="a memory size must be a positive number"):
        parse_bytes(text)
