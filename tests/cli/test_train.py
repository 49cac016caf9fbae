"""The training commands end to end through `graphopt.cli.main`: compile under a budget,
train, inspect's swap fields, and one-line errors for bad planner names and budgets."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from graphopt.cli import main
from graphopt.train.models import mlp


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli_train") / "mlp.onnx"
    onnx.save(mlp(batch=64, hidden=(64, 64, 64, 64)), path)
    return path


def test_compile_train_inspect(model_file, tmp_path, capsys) -> None:
    art = tmp_path / "art"
    assert main(["compile", str(model_file), "--train", "--memory-budget", "80%", "--swap-planner", "capuchin",
                 "--optimizer", "sgd:lr=0.1", "--quiet", "-o", str(art)]) == 0
    rng = np.random.default_rng(0)
    data = tmp_path / "data.npz"
    np.savez(data, x=rng.standard_normal((3, 64, 16)).astype(np.float32),
             target=rng.integers(0, 4, size=(3, 64)).astype(np.int64))
    capsys.readouterr()
    assert main(["train", str(art), "--data", str(data), "--steps", "6"]) == 0
    losses = [float(line.split("loss ")[1].split()[0]) for line in capsys.readouterr().out.splitlines()]
    assert len(losses) == 6 and losses[-1] < losses[0]
    assert main(["inspect", str(art), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["peak_bytes"] <= info["budget_bytes"]
    assert info["swapped_bytes"] + info["recomputed_bytes"] > 0
    assert info["predicted_step_seconds"] >= info["predicted_noswap_step_seconds"] > 0


@pytest.mark.parametrize("args, message", [
    (["--swap-planner", "nope"], "unknown swap planner"),
    (["--memory-budget", "lots"], "--memory-budget"),
    (["--memory-budget", "1%"], "error:"),
])
def test_bad_training_options_are_one_line_errors(model_file, tmp_path, capsys, args, message) -> None:
    code = main(["compile", str(model_file), "--train", "--quiet", "-o", str(tmp_path / "art"), *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0]
    assert not (tmp_path / "art").exists()
