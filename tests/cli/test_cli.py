"""The command line: the happy path once, and every bad input as one clear line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from graphopt.cli import main
from graphopt.examples.models import EXAMPLES
from tests.conftest import onnx_runtime_outputs, random_feeds, relative_error


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> tuple[Path, Path, onnx.ModelProto]:
    work = tmp_path_factory.mktemp("cli")
    model = EXAMPLES["residual_branch_net"]()
    model_path = work / "model.onnx"
    onnx.save(model, model_path)
    assert main(["compile", str(model_path), "-o", str(work / "art"), "--time-limit", "2", "--quiet"]) == 0
    return model_path, work / "art", model


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: "), err
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


def test_run_writes_outputs_that_match_onnx_runtime(compiled, tmp_path, capsys):
    model_path, art, model = compiled
    feeds = random_feeds(model)
    args = ["run", str(art), "--output-dir", str(tmp_path)]
    for name, value in feeds.items():
        np.save(tmp_path / f"in_{name}.npy", value)
        args += ["--input", f"{name}={tmp_path / f'in_{name}.npy'}"]
    assert main(args) == 0
    assert "time:" in capsys.readouterr().out
    for name, expected in onnx_runtime_outputs(model_path, feeds).items():
        assert relative_error(np.load(tmp_path / f"{name}.npy"), expected) < 1e-4


def test_inspect_json_has_every_key_as_integers(compiled, tmp_path, capsys):
    _, art, _ = compiled
    assert main(["inspect", str(art), "--json", "--plot", str(tmp_path / "t.png")]) == 0
    data = json.loads(capsys.readouterr().out)
    for key in ("arena_bytes", "lower_bound_bytes", "naive_bytes", "tvm_stock_bytes", "pool_bytes", "params_bytes",
                "num_tensors", "num_steps"):
        assert isinstance(data[key], int) and not isinstance(data[key], bool), key
    assert data["valid"] is True and isinstance(data["planner"], str)
    assert data["lower_bound_bytes"] <= data["arena_bytes"] <= data["tvm_stock_bytes"]
    assert data["arena_bytes"] <= data["naive_bytes"]
    assert (tmp_path / "t.png").stat().st_size > 1000


@pytest.mark.parametrize("content", [b"", b"\x08\x07garbage-not-onnx" * 10])
def test_compile_rejects_garbage_model(tmp_path, capsys, content):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(content)
    assert main(["compile", str(bad), "-o", str(tmp_path / "art")]) == 2
    _one_line_error(capsys)
    assert not (tmp_path / "art").exists()


def test_compile_rejects_truncated_model(compiled, tmp_path, capsys):
    model_path, _, _ = compiled
    data = model_path.read_bytes()
    bad = tmp_path / "trunc.onnx"
    bad.write_bytes(data[: len(data) // 2])
    assert main(["compile", str(bad), "-o", str(tmp_path / "art")]) == 2
    _one_line_error(capsys)


def test_compile_names_unsupported_operators(tmp_path, capsys):
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    node = helper.make_node("Relu", ["x"], ["y"])
    node_bad = helper.make_node("MadeUpOp", ["x"], ["z"], domain="")
    graph = helper.make_graph([node, node_bad], "g", [x], [y])
    model = helper.make_model(graph, ir_version=10, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    assert main(["compile", str(path), "-o", str(tmp_path / "art")]) == 2
    assert "MadeUpOp" in _one_line_error(capsys)


def test_run_rejects_wrong_shape_dtype_and_missing_input(compiled, tmp_path, capsys):
    _, art, model = compiled
    name = next(iter(random_feeds(model)))
    good = random_feeds(model)[name]
    np.save(tmp_path / "shape.npy", good[..., :-1])
    np.save(tmp_path / "dtype.npy", good.astype(np.float64))
    for file in ("shape.npy", "dtype.npy"):
        assert main(["run", str(art), "--input", f"{name}={tmp_path / file}"]) == 2
        assert name in _one_line_error(capsys)
    assert main(["run", str(art)]) == 2
    assert "missing input" in _one_line_error(capsys)
    assert main(["run", str(art), "--input", f"{name}={tmp_path / 'nope.npy'}"]) == 2
    _one_line_error(capsys)


def test_run_refuses_corrupt_artifact(compiled, tmp_path, capsys):
    import shutil

    _, art, _ = compiled
    copy = tmp_path / "art"
    shutil.copytree(art, copy)
    with open(copy / "params.npz", "r+b") as f:
        f.seek(100)
        f.write(b"\xff\xfe")
    assert main(["inspect", str(copy), "--json"]) == 2
    assert "corrupt" in _one_line_error(capsys)
    assert main(["run", str(tmp_path / "nothing-here")]) == 2
    _one_line_error(capsys)


def test_compile_never_overwrites_a_foreign_directory(compiled, tmp_path, capsys):
    model_path, _, _ = compiled
    precious = tmp_path / "mine"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    assert main(["compile", str(model_path), "-o", str(precious), "--quiet"]) == 2
    _one_line_error(capsys)
    assert (precious / "notes.txt").read_text() == "keep me"


def test_entry_point_bad_arguments_exit_nonzero_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "graphopt.cli", "compile", "--input-shape", "x=1xA"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "error" in proc.stderr
    for command in ("compile", "run", "inspect"):
        help_text = subprocess.run([sys.executable, "-m", "graphopt.cli", command, "--help"],
                                   capture_output=True, text=True, check=False)
        assert help_text.returncode == 0 and "usage" in help_text.stdout
