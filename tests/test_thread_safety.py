"""PyTensor's settings are process-global: fits in threads must leave them as they were.

A scoped PyTensor setting is saved and restored by each thread on its own, so two
threads compiling at once restore each other's values.  Seen in this suite: MMSBM's
EM restarts (threads) each compiled its Dirichlet concentrations, and the process was
left in PyTensor's ``FAST_COMPILE`` mode, whose Python linker then failed on a BPMF
log-density with more than 32 terms.
"""

from __future__ import annotations

import threading

import pytensor
import pytest

from bayesrec.data.simulate import simulate_mmsbm
from bayesrec.inference import fit
from bayesrec.inference.numerics import reproducible
from bayesrec.models import build_model


@pytest.fixture
def compiles_in_threads(monkeypatch):
    """The threads (other than the main one) in which PyTensor compiled a function."""
    seen = []
    original = pytensor.config.change_flags

    def spy(*args, **kwargs):
        if "mode" in kwargs and threading.current_thread() is not threading.main_thread():
            seen.append(threading.current_thread().name)
        return original(*args, **kwargs)

    monkeypatch.setattr(pytensor.config, "change_flags", spy)
    return seen


def test_em_restarts_compile_nothing_in_their_threads(compiles_in_threads, monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 4)  # threads even on a one-core machine
    ratings = simulate_mmsbm(n_users=20, n_items=15, n_ratings=200, n_user_groups=2,
                             n_item_groups=2, seed=0)[0]
    model = build_model("mmsbm", ratings, n_user_groups=2, n_item_groups=2)
    mode = pytensor.config.mode
    dt = fit(model, "map", random_seed=0, restarts=4, maxiter=30)
    assert dt.posterior.sizes["chain"] == 4
    assert compiles_in_threads == []
    assert pytensor.config.mode == mode


def test_compiling_blocks_take_turns_across_threads():
    """A second thread waits at :func:`reproducible` until the first leaves it, and the
    settings are the process's own afterwards."""
    fastmath, mode = pytensor.config.numba__fastmath, pytensor.config.mode
    inside, release, order = threading.Event(), threading.Event(), []

    def first():
        with reproducible():
            inside.set()
            release.wait(10)
            order.append("first leaves")

    def second():
        inside.wait(10)
        with reproducible():
            order.append("second enters")
            assert pytensor.config.numba__fastmath is False

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    inside.wait(10)
    threads[1].join(0.3)  # blocked while the first thread is inside
    assert threads[1].is_alive() and order == []
    release.set()
    for t in threads:
        t.join(10)
    assert order == ["first leaves", "second enters"]
    assert (pytensor.config.numba__fastmath, pytensor.config.mode) == (fastmath, mode)


def test_the_block_nests_in_one_thread():
    with reproducible(), reproducible():
        assert pytensor.config.numba__fastmath is False
