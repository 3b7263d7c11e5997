"""Folds and grids fanned out over dask.distributed give the numbers of a sequential run.

The cluster has two workers (threads of this process, so that the test does not pay
for starting interpreters and importing PyMC twice); tasks finish in any order, and
every task carries its own seed, so the tables must be equal apart from the timings.
A run on worker processes (``scheduler="local"``) is the slow-marked CLI test.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from bayesrec.cli import main
from bayesrec.data.simulate import simulate_ratings
from bayesrec.data.splits import holdout, kfold
from bayesrec.errors import InputError
from bayesrec.evaluation import FOLD_COLUMNS, evaluate, grid, param_grid

distributed = pytest.importorskip("distributed")

SCORES = [c for c in FOLD_COLUMNS if not c.endswith("_seconds")]  # timings differ


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        with distributed.Client(cluster) as c:
            yield c


@pytest.fixture(scope="module")
def ratings():
    return simulate_ratings(n_users=30, n_items=25, n_ratings=400, seed=8)[0]


def test_folds_on_dask_equal_the_sequential_run(client, ratings):
    splits = kfold(ratings, k=3, seed=0)
    # "uniform" draws its predictions from the seed: any seed mix-up would show
    sequential = evaluate("uniform", splits, seed=5)
    lines = []
    fanned = evaluate("uniform", splits, seed=5, scheduler=client, progress=lines.append)
    pd.testing.assert_frame_equal(fanned.folds[SCORES], sequential.folds[SCORES])
    assert list(fanned.folds["fold"]) == ["fold1", "fold2", "fold3"]  # split order
    assert fanned.scheduler == client.scheduler.address and sequential.scheduler is None
    assert sum("queued uniform/fit" in line for line in lines) == 3
    assert sum(" rmse " in line for line in lines) == 3
    other = evaluate("uniform", splits, seed=6, scheduler=client)
    assert not other.folds["rmse"].equals(sequential.folds["rmse"])


def test_grid_on_dask_equals_sequential_candidates(client, ratings):
    split = holdout(ratings, 0.25, seed=2)
    candidates = param_grid("pmf", "map", options={"n_factors": [1, 2]},
                            fit_options={"maxiter": 60}) + ["biases", {"model": "uniform"}]
    fanned = grid(candidates, [split], seed=3, scheduler=client, dataset="sim")
    sequential = [evaluate(c.model, [split], method=c.method, options=c.options,
                           fit_options=c.fit_options, seed=3)
                  for c in fanned.candidates]
    assert [c.label for c in fanned.candidates] == [
        "pmf/map n_factors=1 maxiter=60", "pmf/map n_factors=2 maxiter=60", "biases/fit",
        "uniform/fit"]
    for got, want in zip(fanned.results, sequential, strict=True):
        pd.testing.assert_frame_equal(got.folds[SCORES], want.folds[SCORES])
        assert got.options == want.options and got.fit_options == want.fit_options
    table = fanned.folds
    assert list(table["candidate"]) == [0, 1, 2, 3]
    summary = fanned.summary()
    assert list(summary["model"]) == ["pmf", "pmf", "biases", "uniform"]
    assert fanned.best("rmse") is fanned.results[int(summary["rmse_mean"].idxmin())]
    record = fanned.to_json()
    assert json.loads(json.dumps(record, allow_nan=False)) == record
    assert record["candidates"][0]["label"] == "pmf/map n_factors=1 maxiter=60"


def test_param_grid_and_bad_schedulers(ratings, capsys):
    labels = [c.label for c in param_grid("pmf", ["map", "advi"],
                                          options={"n_factors": [2, 3], "priors": {"bias_sd": 1}})]
    assert labels == ['pmf/map n_factors=2 priors={"bias_sd":1}',
                      'pmf/map n_factors=3 priors={"bias_sd":1}',
                      'pmf/advi n_factors=2 priors={"bias_sd":1}',
                      'pmf/advi n_factors=3 priors={"bias_sd":1}']
    split = holdout(ratings, 0.25, seed=2)
    with pytest.raises(InputError, match="scheduler must be None, 'local', a scheduler address"):
        evaluate("biases", [split], scheduler="nowhere")
    with pytest.raises(InputError, match="n_workers applies to scheduler='local' only"):
        evaluate("biases", [split], n_workers=2)
    with pytest.raises(InputError, match="unknown option"):  # checked before any work
        grid(param_grid("pmf", options={"n_factor": [1]}), [split], scheduler="local")
    assert main(["evaluate", "--model", "biases", "--dataset", "synthetic", "--dask",
                 "tcp://127.0.0.1:1", "--dask-workers", "2"]) == 2
    assert "--dask-workers applies to a local cluster only" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_dask_local_cluster_matches_sequential(tmp_path, capsys):
    args = ["evaluate", "--model", "uniform", "--dataset", "synthetic", "--kfold", "2",
            "--seed", "4"]
    assert main([*args, "--json", str(tmp_path / "seq.json")]) == 0
    assert main([*args, "--dask", "--dask-workers", "2", "--json", str(tmp_path / "dask.json")]) == 0
    seq = json.loads((tmp_path / "seq.json").read_text())
    par = json.loads((tmp_path / "dask.json").read_text())
    strip = [{k: v for k, v in f.items() if not k.endswith("_seconds")} for f in seq["folds"]]
    assert [{k: v for k, v in f.items() if not k.endswith("_seconds")}
            for f in par["folds"]] == strip
    assert par["scheduler"] == "local" and seq["scheduler"] is None
