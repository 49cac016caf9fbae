"""Sum nodes become Add chains: same numbers, and the residual add fuses into the
convolution that produces it instead of running as a stack + reduce kernel."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from graphopt.examples.models import IR_VERSION, OPSET
from tests.conftest import compile_run_check


def _residual_model() -> onnx.ModelProto:
    """x -> Conv -> Sum(conv, x) -> Relu, plus a 3-input Sum with broadcasting and
    a 1-input Sum (an identity)."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array((rng.standard_normal((8, 8, 3, 3)) * 0.2).astype(np.float32), "w")
    row = numpy_helper.from_array(rng.standard_normal((6,)).astype(np.float32), "row")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Sum", ["c", "x"], ["s"]),
             helper.make_node("Relu", ["s"], ["y"]),
             helper.make_node("Sum", ["a", "row", "b"], ["z"]),
             helper.make_node("Sum", ["z"], ["z1"])]
    graph = helper.make_graph(
        nodes, "residual",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 6, 6]),
         helper.make_tensor_value_info("a", TensorProto.FLOAT, [4, 6]),
         helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 6, 6]),
         helper.make_tensor_value_info("z1", TensorProto.FLOAT, [4, 6])], [w, row])
    return helper.make_model(graph, ir_version=IR_VERSION, opset_imports=[helper.make_opsetid("", OPSET)])


def test_sums_become_add_chains_in_order():
    from graphopt.frontend.sum_to_add import sums_to_adds

    result = sums_to_adds(_residual_model())
    rewritten, count = result.module, result.record["rewritten"]
    assert result.modified
    assert count == 3
    ops = [(n.op_type, list(n.input)) for n in rewritten.graph.node]
    assert ("Add", ["c", "x"]) in ops and ("Identity", ["z"]) in ops
    assert ("Add", ["a", "row"]) in ops and ("Add", ["z__sum_partial1", "b"]) in ops
    assert not any(op == "Sum" for op, _ in ops)
    onnx.checker.check_model(rewritten, full_check=True)
    again = sums_to_adds(rewritten)
    assert again.module is rewritten and not again.modified and again.record["rewritten"] == 0


def test_rewritten_model_matches_onnx_runtime_and_fuses_the_residual_add(tmp_path):
    compile_run_check(_residual_model(), tmp_path)
    plan = __import__("json").loads((tmp_path / "art" / "plan.json").read_text())
    kernels = [str(step) for step in plan["steps"]]
    assert not any("stack" in k for k in kernels), kernels
    assert any("conv2d" in k and "add" in k and "relu" in k for k in kernels), kernels
