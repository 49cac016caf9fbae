"""Tiny compiled variants shared by the serve tests (each compiles in about a second)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from graphopt.cli import main
from graphopt.compiler import CompileOptions, compile_model
from graphopt.serve.slicing import SliceSpec, export_width, initial_weights

SERVE_BATCH = 4


def dynamic_cnn(seed: int = 0) -> onnx.ModelProto:
    """conv-relu-global-mean-linear with symbolic N, H, W: one model, any input resolution."""
    rng = np.random.default_rng(seed)
    inits = [numpy_helper.from_array(rng.normal(0, 0.5, (4, 3, 3, 3)).astype(np.float32), "wc"),
             numpy_helper.from_array(np.zeros(4, np.float32), "bc"),
             numpy_helper.from_array(rng.normal(0, 0.5, (4, 5)).astype(np.float32), "wl")]
    nodes = [helper.make_node("Conv", ["x", "wc", "bc"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("ReduceMean", ["r"], ["m"], axes=[2, 3], keepdims=0),
             helper.make_node("MatMul", ["m", "wl"], ["logits"])]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", "W"])
    out = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 5])
    graph = helper.make_graph(nodes, "dynamic_cnn", [x], [out], initializer=inits)
    return helper.make_model(graph, ir_version=10, opset_imports=[helper.make_opsetid("", 17)])


@pytest.fixture(scope="session")
def mlp_variants(tmp_path_factory) -> dict[str, Path]:
    """Two widths (8 and 32) of one untrained sliced MLP, batch 4: name -> artifact."""
    root = tmp_path_factory.mktemp("mlp-variants")
    weights = initial_weights(SliceSpec(hidden=32, widths=(8, 32)))
    arts = {}
    for width in (8, 32):
        model = root / f"w{width}.onnx"
        onnx.save(export_width(weights, width, SERVE_BATCH), str(model))
        arts[f"w{width}"] = compile_model(model, root / f"w{width}", CompileOptions(time_limit=1.0)).artifact
    return arts


@pytest.fixture(scope="session")
def cnn_variants(tmp_path_factory) -> dict[str, Path]:
    """The same CNN compiled at 8x8 and 4x4 input (resolution variants), batch 2, by the CLI:
    `graphopt compile cnn.onnx --input-shape x=2x3xSxS`."""
    root = tmp_path_factory.mktemp("cnn-variants")
    model = root / "cnn.onnx"
    onnx.save(dynamic_cnn(), str(model))
    arts = {}
    for size in (8, 4):
        arts[f"r{size}"] = root / f"r{size}"
        argv = ["compile", str(model), "-o", str(arts[f"r{size}"]), "--input-shape", f"x=2x3x{size}x{size}",
                "--time-limit", "1", "--quiet"]
        assert main(argv) == 0
    return arts


@pytest.fixture(scope="session")
def range_mlp(tmp_path_factory) -> tuple[Path, Path]:
    """(model.onnx, artifact): graphopt.examples.range_models.batch_mlp compiled by the CLI for a
    variable batch, `graphopt compile mlp.onnx --input-shape x=1..8x64`."""
    from graphopt.examples.range_models import batch_mlp

    root = tmp_path_factory.mktemp("range-mlp")
    model, art = root / "mlp.onnx", root / "art"
    onnx.save(batch_mlp(), str(model))
    argv = ["compile", str(model), "-o", str(art), "--input-shape", "x=1..8x64", "--time-limit", "1", "--quiet"]
    assert main(argv) == 0
    return model, art
