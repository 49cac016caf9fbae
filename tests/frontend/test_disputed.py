"""Where ONNX Runtime's answer differs from ONNX's reference, graphopt refuses in one line;
where TVM's build fails on a node ORT computes, the node falls back to ORT."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from graphopt.errors import UnsupportedOperatorError
from graphopt.frontend import prepare_model


def _model(nodes, inputs, outputs, initializers=(), opset: int = 18) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(*i) for i in inputs],
                              [helper.make_tensor_value_info(*o) for o in outputs], initializer=list(initializers))
    return helper.make_model(graph, ir_version=10, opset_imports=[helper.make_opsetid("", opset)])


def _dropout(training: np.ndarray | None, ratio: float) -> onnx.ModelProto:
    inits = [numpy_helper.from_array(np.array(ratio, dtype=np.float32), "r")]
    inputs = [("x", TensorProto.FLOAT, [2, 3])]
    if training is None:
        inputs.append(("t", TensorProto.BOOL, []))
    else:
        inits.append(numpy_helper.from_array(training, "t"))
    node = helper.make_node("Dropout", ["x", "r", "t"], ["y"])
    return _model([node], inputs, [("y", TensorProto.FLOAT, [2, 3])], inits)


def test_training_dropout_is_random_so_refused():
    with pytest.raises(UnsupportedOperatorError, match="Dropout node .*training-mode Dropout draws a random mask"):
        prepare_model(_dropout(None, 0.5))
    with pytest.raises(UnsupportedOperatorError, match="random mask"):
        prepare_model(_dropout(np.array(True), 0.5))


def test_dropout_known_to_be_off_or_of_ratio_0_is_not_disputed():
    prepare_model(_dropout(np.array(False), 0.5))
    prepare_model(_dropout(np.array(True), 0.0))


def _resize(out_hw: int) -> onnx.ModelProto:
    scales = numpy_helper.from_array(np.array([1, 1, out_hw / 4, out_hw / 4], dtype=np.float32), "s")
    node = helper.make_node("Resize", ["x", "", "s"], ["y"], mode="linear",
                            coordinate_transformation_mode="align_corners")
    return _model([node], [("x", TensorProto.FLOAT, [1, 1, 4, 4])], [("y", TensorProto.FLOAT, [1, 1, out_hw, out_hw])],
                  [scales])


def test_align_corners_downsampling_is_refused_and_upsampling_compiles():
    with pytest.raises(UnsupportedOperatorError, match="downsampling with coordinate_transformation_mode=align"):
        prepare_model(_resize(2))
    prepare_model(_resize(8))


def test_prelu_slope_that_does_not_broadcast_is_refused():
    node = helper.make_node("PRelu", ["x", "slope"], ["y"])
    slope = numpy_helper.from_array(np.full(3, 0.1, dtype=np.float32), "slope")
    model = _model([node], [("x", TensorProto.FLOAT, [2, 3, 4])], [("y", TensorProto.FLOAT, [2, 3, 4])], [slope],
                   opset=6)
    with pytest.raises(UnsupportedOperatorError, match="PRelu node .*slope does not broadcast"):
        prepare_model(model)


def test_integer_pow_runs_as_a_fallback_kernel_and_matches_onnx_runtime(tmp_path):
    """TVM's power takes floats only (its build failed); ONNX Runtime computes it exactly."""
    from tests.conftest import compile_run_check

    node = helper.make_node("Pow", ["x", "e"], ["y"])
    exponent = numpy_helper.from_array(np.array([0, 1, 2, 3], dtype=np.int32), "e")
    model = _model([node], [("x", TensorProto.INT32, [3, 4])], [("y", TensorProto.INT32, [3, 4])], [exponent])
    plan = compile_run_check(model, tmp_path, stock_bound=False)
    assert [k["op_type"] for k in plan["fallback"]["kernels"]] == ["Pow"]
