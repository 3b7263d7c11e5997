"""The MovieLens figures we publish, recomputed: the README's table (generated from
``benchmarks/results/pmf_bpmf.json``) and the committed outputs of notebooks 2 and 3.

The cheap figures of fold u1 are rerun with today's code, by the calls the benchmark and
the notebooks make: the baselines, PMF's MAP and BPMF by Gibbs.  Tolerances:

* baselines: closed-form numpy, 1e-9 relative against the record; the notebooks print
  four decimals, so 0.6e-4 against them;
* PMF MAP: converged to the optimiser's tolerance, which another CPU's BLAS moves in the
  sixth decimal; the README quotes three decimals: 1e-3;
* BPMF Gibbs: a Markov chain amplifies any last-digit difference, so another machine
  gives another chain: 4 sqrt(2) times the RMSE's Monte Carlo standard error
  (:func:`~bayesrec.diagnostics.rmse_monte_carlo_error`), 4 sd of the difference of two
  independent chains' RMSEs, plus the notebooks' rounding.

Needs MovieLens 100K (``movielens``) and takes a few minutes (``agreement``: run by
``.ci/run`` as its own step).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest

from bayesrec.diagnostics import rmse_monte_carlo_error
from bayesrec.evaluation import evaluate, example_split
from bayesrec.inference import fit, predict
from bayesrec.metrics import score
from bayesrec.models import build_model

pytestmark = [pytest.mark.movielens, pytest.mark.agreement]

ROOT = Path(__file__).resolve().parents[1]
RECORD = ROOT / "benchmarks" / "results" / "pmf_bpmf.json"
NOTEBOOKS = ROOT / "notebooks"
PRINTED = 0.6e-4  # a figure printed to four decimals


def recorded_rmse(row: str) -> float:
    """The u1 test RMSE of ``row`` (e.g. ``"pmf/map"``) in the benchmark's record."""
    record = json.loads(RECORD.read_text())
    folds = {f["fold"]: f for f in record["results"][row]["folds"]}
    return folds["u1"]["rmse"]


def notebook_rmse(notebook: str, label: str) -> float:
    """The first number after the row label ``label`` in a table the notebook printed
    (every table there starts with the RMSE column), from its committed outputs."""
    nb = nbformat.read(NOTEBOOKS / f"{notebook}.ipynb", as_version=4)
    texts = [out.get("data", {}).get("text/plain", "") or out.get("text", "")
             for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]
    if not any("full mode" in t for t in texts):
        pytest.fail(f"{notebook}.ipynb was not executed in full mode (MovieLens): run "
                    f"python notebooks/build.py --execute {notebook}")
    row = re.compile(rf"^{re.escape(label)}\s+(-?\d+\.\d+)", re.MULTILINE)
    for text in texts:
        match = row.search(text)
        if match:
            return float(match.group(1))
    pytest.fail(f"no table row {label!r} in the outputs of {notebook}.ipynb")


@pytest.fixture(scope="module")
def u1(movielens_home):
    return example_split(False, data_home=movielens_home)


@pytest.mark.parametrize("name", ["global_mean", "mean_of_means", "biases"])
def test_baselines(u1, name):
    rmse = evaluate(name, [u1], seed=0).summary().loc["rmse", "mean"]
    assert rmse == pytest.approx(recorded_rmse(f"{name}/fit"), rel=1e-9)
    assert rmse == pytest.approx(notebook_rmse("02_pmf", name), abs=PRINTED)


def test_pmf_map(u1):
    rmse = evaluate("pmf", [u1], method="map", options={"n_factors": 10},
                    seed=0).summary().loc["rmse", "mean"]
    assert rmse == pytest.approx(recorded_rmse("pmf/map"), abs=1e-3)
    assert rmse == pytest.approx(notebook_rmse("02_pmf", "pmf map"), abs=1e-3)
    preset = fit(build_model("pmf", u1.train, n_factors=10, preset="point_estimate"), "map",
                 random_seed=0)
    rmse = score(predict(preset, pairs=u1.test, random_seed=0), u1.test)["rmse"]
    assert rmse == pytest.approx(notebook_rmse("03_bpmf", "PMF MAP"), abs=1e-3)
    assert rmse == pytest.approx(notebook_rmse("02_pmf", "pmf map point_estimate"), abs=1e-3)


def test_bpmf_gibbs(u1):
    f = fit(build_model("bpmf", u1.train, n_factors=10), "gibbs", random_seed=0)
    rmse, mcse = rmse_monte_carlo_error(f, u1.test)
    tolerance = 4 * np.sqrt(2) * mcse
    assert 0 < tolerance < 0.01  # a tolerance that can fail
    assert rmse == pytest.approx(recorded_rmse("bpmf/gibbs"), abs=tolerance)
    assert rmse == pytest.approx(notebook_rmse("03_bpmf", "BPMF Gibbs"), abs=tolerance + PRINTED)
