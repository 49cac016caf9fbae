"""Recompiling into the same artifact folder and loading it again in one process runs the new
kernels: the dynamic loader would hand back the library first loaded under that name."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper


def _unary(op: str):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])
    graph = helper.make_graph([helper.make_node(op, ["x"], ["y"])], op, [x], [y])
    return helper.make_model(graph, ir_version=10, opset_imports=[helper.make_opsetid("", 17)])


def test_second_compile_into_the_same_folder_is_what_runs(tmp_path):
    from graphopt.compiler import CompileOptions, compile_model
    from graphopt.runtime import load

    x = np.array([[-1.0, 2.0, -3.0], [4.0, -5.0, 6.0]], np.float32)
    art = tmp_path / "art"
    outputs = {}
    for op in ("Relu", "Neg", "Relu"):  # same signature each time: a stale library would run silently
        compile_model(_unary(op), art, CompileOptions())
        outputs.setdefault(op, []).append(load(art).run({"x": x})["y"])
    np.testing.assert_array_equal(outputs["Neg"][0], -x)
    for got in outputs["Relu"]:
        np.testing.assert_array_equal(got, np.maximum(x, 0))
