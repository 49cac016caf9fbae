"""Swish (opset 24) compiles natively: neither TVM's importer nor ONNX Runtime has it."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper


def test_swish_matches_its_definition_in_float64(tmp_path):
    from graphopt.compiler import CompileOptions, compile_model
    from graphopt.runtime import load

    node = helper.make_node("Swish", ["x"], ["y"], alpha=0.75)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 5])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 5])])
    model = helper.make_model(graph, ir_version=10, opset_imports=[helper.make_opsetid("", 24)])
    result = compile_model(model, tmp_path / "art", CompileOptions(fallback=False))
    x = np.random.default_rng(0).standard_normal((3, 5)).astype(np.float32) * 4
    got = load(tmp_path / "art").run({"x": x})["y"]
    wide = x.astype(np.float64)
    expected = wide / (1.0 + np.exp(-0.75 * wide))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert result.plan["arena_bytes"] >= result.plan["lower_bound_bytes"]
