"""The command line: exit codes, output, JSON records and error messages."""

from __future__ import annotations

import json

import numpy as np
import pytest

import bayesrec.cli as cli
from bayesrec.cli import main, parse_option
from bayesrec.errors import InputError
from bayesrec.models import list_models, model_table


@pytest.fixture
def csv_file(tmp_path):
    rng = np.random.default_rng(0)
    lines = ["user,item,rating"]
    for u in range(15):
        for i in rng.choice(10, size=6, replace=False):
            lines.append(f"u{u},i{i},{rng.integers(1, 6)}")
    path = tmp_path / "ratings.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_models_lists_the_registry(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 100  # fits a terminal
    for spec in list_models():
        block = out.split(f"\n{spec.name} ")[-1] if not out.startswith(spec.name) else out
        assert spec.title in block
        assert "methods: " in block
    assert "nuts, advi" in out and "gibbs (default)" in out  # BPMF's default method
    assert main(["models", "--markdown"]) == 0
    assert capsys.readouterr().out.strip() == model_table()


def test_evaluate_csv_writes_json(csv_file, tmp_path, capsys):
    target = tmp_path / "out" / "result.json"
    rc = main(["evaluate", "--model", "biases", "--dataset", str(csv_file), "--kfold", "2",
               "--seed", "4", "--option", "n_iter=3", "--option", "reg_item=2.5",
               "--json", str(target)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "[fold1] fitting biases/fit on 45 ratings ..." in captured.err
    assert "mean ± sd" in captured.out and "fold2" in captured.out
    record = json.loads(target.read_text())
    assert record["model"] == "biases" and record["method"] == "fit"
    assert record["dataset"] == "ratings.csv (2-fold, seed 4)"
    assert record["seed"] == 4
    assert record["options"] == {"reg_user": 15.0, "reg_item": 2.5, "n_iter": 3}
    assert len(record["folds"]) == 2
    assert {"rmse", "mae", "accuracy", "fit_seconds", "predict_seconds", "n_train",
            "n_test"} <= set(record["folds"][0])
    assert record["mean"]["rmse"] == pytest.approx(np.mean([f["rmse"] for f in record["folds"]]))
    assert {"numpy", "pymc", "pytensor", "arviz", "bayesrec", "python"} <= set(record["versions"])


def test_evaluate_synthetic_kfold(tmp_path, capsys):
    target = tmp_path / "synthetic.json"
    rc = main(["evaluate", "--model", "mean_of_means", "--dataset", "synthetic", "--kfold", "2",
               "--json", str(target)])
    assert rc == 0, capsys.readouterr().err
    record = json.loads(target.read_text())
    assert record["dataset"] == "synthetic (2-fold, seed 0)"
    assert [f["n_test"] for f in record["folds"]] == [50_000, 50_000]
    assert 0.8 < record["mean"]["rmse"] < 1.3


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--model", "nope"], "unknown model 'nope'; registered models are: biases"),
        (["--model", "biases", "--method", "nuts"],
         "unknown method 'nuts' for model 'biases'; valid methods are: fit"),
        (["--model", "biases", "--folds", "u1,u2"], "apply only to ml-100k"),
        (["--model", "biases", "--option", "n_iter"], "--option must look like KEY=VALUE"),
        (["--model", "biases", "--option", "lambda=3"], "unknown option(s) ['lambda']"),
        (["--model", "biases", "--draws", "100"], "--draws apply to Bayesian models only"),
    ],
)
def test_evaluate_bad_input_exits_2(csv_file, capsys, argv, message):
    rc = main(["evaluate", "--dataset", str(csv_file), *argv])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("bayesrec: error: ")
    assert message in err
    assert "Traceback" not in err


def test_missing_file_and_movielens_exit_2(tmp_path, capsys):
    rc = main(["evaluate", "--model", "biases", "--dataset", str(tmp_path / "no.csv")])
    assert rc == 2
    assert "bayesrec: error: unknown dataset" in capsys.readouterr().err
    rc = main(["evaluate", "--model", "biases", "--dataset", "ml-100k",
               "--data-home", str(tmp_path)])
    assert rc == 2
    assert "bayesrec: error: MovieLens 100K not found" in capsys.readouterr().err


def test_argparse_errors_return_2(capsys):
    assert main(["evaluate", "--model", "biases"]) == 2  # --dataset missing
    assert "required: --dataset" in capsys.readouterr().err
    assert main(["evaluate", "--model", "biases", "--dataset", "x", "--folds", "u1",
                 "--kfold", "2"]) == 2
    assert "not allowed with" in capsys.readouterr().err
    assert main([]) == 2


def test_parse_option_values():
    assert parse_option("n_factors=10") == ("n_factors", 10)
    assert parse_option("prior=normal") == ("prior", "normal")
    assert parse_option("sizes=[1, 2]") == ("sizes", [1, 2])
    assert parse_option("flag=true") == ("flag", True)
    with pytest.raises(InputError, match="KEY=VALUE"):
        parse_option("=3")


def test_demo_on_baselines(monkeypatch, tmp_path, capsys):
    # the full demo also runs every Bayesian model; the unit test keeps to the baselines
    monkeypatch.setattr(cli, "list_models", lambda: list_models(kind="baseline"))
    target = tmp_path / "demo.json"
    assert main(["demo", "--seed", "1", "--json", str(target)]) == 0
    out = capsys.readouterr().out
    assert "truth (noise floor)" in out
    for name in ("uniform", "global_mean", "mean_of_means", "biases"):
        assert name in out
    record = json.loads(target.read_text())
    assert record["failed"] == []
    rmses = {m["model"]: m["mean"]["rmse"] for m in record["models"]}
    floor = record["noise_floor_rmse"]
    # the truth beats every baseline, and the baselines keep their usual order
    assert floor < rmses["biases"] < rmses["mean_of_means"] < rmses["global_mean"]
    assert rmses["global_mean"] < rmses["uniform"]


def test_a_failed_fit_exits_1_with_its_message(csv_file, monkeypatch, capsys):
    """A fit that fails (FitError, e.g. a diverged variational fit) is reported in one
    line with exit status 1, not as a traceback."""
    from bayesrec.errors import FitError

    def failing(*args, **kwargs):
        raise FitError("fullrank_advi diverged after 399 iterations")

    monkeypatch.setattr(cli, "evaluate", failing)
    rc = main(["evaluate", "--model", "pmf", "--method", "fullrank_advi", "--dataset",
               str(csv_file), "--kfold", "2"])
    err = capsys.readouterr().err
    assert rc == 1
    assert "bayesrec: the fit failed: fullrank_advi diverged" in err
    assert "Traceback" not in err
