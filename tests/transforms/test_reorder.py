"""Reordering inside `graphopt compile`: the peak goes down, the numbers stay."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tests.conftest import compile_run_check


def breadth_first_branches() -> onnx.ModelProto:
    """Two branches, each a wide 3x3 conv then a narrow 1x1 conv, listed breadth-first:
    TVM keeps ONNX's order, so both wide tensors are live at once until reordered."""
    rng = np.random.default_rng(0)

    def weight(name, shape):
        fan_in = int(np.prod(shape[1:]))
        return numpy_helper.from_array((rng.standard_normal(shape) * np.sqrt(2 / fan_in)).astype(np.float32), name)

    nodes = [
        helper.make_node("Conv", ["x", "wa1"], ["a1"], pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["x", "wb1"], ["b1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["a1"], ["a1r"]),
        helper.make_node("Relu", ["b1"], ["b1r"]),
        helper.make_node("Conv", ["a1r", "wa2"], ["a2"]),
        helper.make_node("Conv", ["b1r", "wb2"], ["b2"]),
        helper.make_node("Concat", ["a2", "b2"], ["y"], axis=1),
    ]
    inits = [weight("wa1", (64, 8, 3, 3)), weight("wb1", (64, 8, 3, 3)),
             weight("wa2", (4, 64, 1, 1)), weight("wb2", (4, 64, 1, 1))]
    graph = helper.make_graph(nodes, "breadth_first", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 16, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 16, 16])], inits)
    return helper.make_model(graph, ir_version=10, opset_imports=[helper.make_opsetid("", 17)])


def test_reorder_lowers_the_lower_bound_and_keeps_outputs(tmp_path):
    plan = compile_run_check(breadth_first_branches(), tmp_path / "on")
    record = plan["reorder"]
    assert record["method"] == "exact"
    assert record["lower_bound_after"] < record["lower_bound_before"]
    assert plan["lower_bound_bytes"] == record["lower_bound_after"]
    wide = 64 * 16 * 16 * 4
    assert record["lower_bound_before"] >= 2 * wide > plan["lower_bound_bytes"]


def test_no_reorder_keeps_tvm_order(tmp_path):
    from graphopt.compiler import CompileOptions, compile_model

    onnx.save(breadth_first_branches(), tmp_path / "m.onnx")
    result = compile_model(tmp_path / "m.onnx", tmp_path / "art", CompileOptions(reorder=False, time_limit=1))
    assert result.plan["reorder"] == {"method": "off"}
    assert result.plan["lower_bound_bytes"] >= 2 * 64 * 16 * 16 * 4
