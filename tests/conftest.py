"""Shared fixtures.  Keep this small: fixtures used by one file live in that file."""

from __future__ import annotations

import os
from pathlib import Path

import pytensor
import pytest

from bayesrec.data.simulate import load_synthetic

REPO_ROOT = Path(__file__).resolve().parents[1]


def find_movielens_home() -> Path | None:
    """A data home holding MovieLens 100K: ``$BAYESREC_DATA``, else ``../shared/data``."""
    candidates = [Path(p) for p in (os.environ.get("BAYESREC_DATA"),) if p]
    candidates.append(REPO_ROOT.parent / "shared" / "data")
    for home in candidates:
        if (
            (home / "ml-100k" / "u.data").is_file()
            or (home / "ml-100k.zip").is_file()
            or (home / "u.data").is_file()
        ):
            return home
    return None


@pytest.fixture(scope="session")
def movielens_home() -> Path:
    """The real MovieLens 100K data home; the test is skipped when it is absent."""
    home = find_movielens_home()
    if home is None:
        pytest.skip("MovieLens 100K not found: set BAYESREC_DATA to a folder holding ml-100k/")
    return home


@pytest.fixture(scope="session")
def small_synthetic():
    """(ratings, truth): 80 users x 120 items x 1500 ratings on 1..5, seed 0, with timestamps."""
    return load_synthetic(n_users=80, n_items=120, n_ratings=1500)


@pytest.fixture(autouse=True)
def pytensor_settings_unchanged():
    """Fail the test that leaves PyTensor's process-global settings changed (a later
    test would compile in another mode; see tests/test_thread_safety.py)."""
    before = (pytensor.config.mode, pytensor.config.linker, pytensor.config.numba__fastmath)
    yield
    after = (pytensor.config.mode, pytensor.config.linker, pytensor.config.numba__fastmath)
    assert after == before, f"PyTensor settings changed by this test: {before} -> {after}"
