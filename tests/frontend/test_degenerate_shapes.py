"""Negative dims after shape inference are refused, naming the node; empty tensors are not."""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

from graphopt.cli import main
from graphopt.errors import ShapeError
from graphopt.frontend import prepare_model
from graphopt.frontend.degenerate import check_dims
from graphopt.frontend.shapes import infer_shapes

# ONNX Runtime's errors share no base class but Exception
ORT_ERRORS = (ort_state.Fail, ort_state.InvalidArgument, ort_state.InvalidGraph, ort_state.NotImplemented)


def _model(nodes, x_shape, initializers=()) -> onnx.ModelProto:
    """x -> nodes -> y; y's dims left symbolic for inference to fill in (the checker wants a shape)."""
    y_shape = [f"d{i}" for i in range(len(x_shape))]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)],
                              initializer=list(initializers))
    return helper.make_model(graph, ir_version=10, opset_imports=[helper.make_opsetid("", 17)])


def _pool(kernel: int, pads: int = 0, x: int = 3, output: str = "y") -> onnx.NodeProto:
    return helper.make_node("MaxPool", ["x"], [output], name="pool", kernel_shape=[kernel, kernel],
                            pads=[pads] * 4)


def _conv(kernel: int) -> list:
    weight = numpy_helper.from_array(np.ones((1, 1, kernel, kernel), np.float32), "w")
    return [helper.make_node("Conv", ["x", "w"], ["y"], name="conv")], [weight]


def _ort_run_fails(model: onnx.ModelProto, x_shape) -> bool:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 4
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    try:
        session.run(None, {"x": np.ones(x_shape, np.float32)})
    except ORT_ERRORS:
        return True
    return False


@pytest.mark.parametrize("fold", [True, False])
def test_a_pool_kernel_larger_than_its_input_is_refused(fold: bool) -> None:
    """It compiled and returned NaN; ONNX Runtime refuses it when it runs the node."""
    model = _model([_pool(5)], [1, 1, 3, 3])
    assert _ort_run_fails(model, (1, 1, 3, 3))
    with pytest.raises(ShapeError, match=r"node 'pool' \(MaxPool\) gives y the shape 1x1x-1x-1: a negative dim"):
        prepare_model(model, fold=fold)


def test_a_convolution_kernel_larger_than_its_input_is_refused() -> None:
    nodes, weights = _conv(5)
    model = _model(nodes, [1, 1, 3, 3], weights)
    assert _ort_run_fails(model, (1, 1, 3, 3))
    with pytest.raises(ShapeError, match=r"node 'conv' \(Conv\) gives y the shape 1x1x-1x-1"):
        prepare_model(model, fold=False)


def test_the_first_node_with_a_negative_dim_is_named() -> None:
    """The cause, not the tensors downstream of it."""
    model = _model([_pool(5, output="p"), helper.make_node("Relu", ["p"], ["y"], name="relu")], [1, 1, 3, 3])
    with pytest.raises(ShapeError, match=r"node 'pool'"):
        prepare_model(model, fold=False)


def test_padding_that_makes_the_kernel_fit_is_accepted() -> None:
    prepared = prepare_model(_model([_pool(5, pads=1)], [1, 1, 3, 3]), fold=False)
    assert prepared.outputs[0].shape == (1, 1, 1, 1)


def test_zero_size_dims_are_legal() -> None:
    """A kernel one larger than its input gives an empty tensor: legal ONNX (ORT returns it)."""
    model = _model([_pool(4)], [1, 1, 3, 3])
    assert not _ort_run_fails(model, (1, 1, 3, 3))
    inferred = infer_shapes(model)
    check_dims(inferred)
    assert [d.dim_value for d in inferred.graph.output[0].type.tensor_type.shape.dim] == [1, 1, 0, 0]


def test_a_reshape_that_changes_the_element_count_is_refused() -> None:
    """Shape inference takes the target shape as given; ONNX Runtime refuses the node when it runs."""
    shape = numpy_helper.from_array(np.array([1, 6], dtype=np.int64), "shape")
    model = _model([helper.make_node("Reshape", ["x", "shape"], ["y"], name="reshape")], [79, 6], [shape])
    assert _ort_run_fails(model, (79, 6))
    with pytest.raises(ShapeError, match=r"node 'reshape' \(Reshape\) reshapes 79x6 \(474 elements\) to 1x6 \(6\)"):
        prepare_model(model, fold=False)
    model.graph.initializer[0].CopyFrom(numpy_helper.from_array(np.array([6, 79], dtype=np.int64), "shape"))
    assert prepare_model(model, fold=False).outputs[0].shape == (6, 79)


def test_an_output_declared_with_minus_one_is_dynamic_not_degenerate() -> None:
    """Exporters write -1 for a dynamic dim (PP-OCR's classifier: -1x2); ONNX Runtime runs such models."""
    model = _model([helper.make_node("Relu", ["x"], ["y"])], [2, 3])
    model.graph.output[0].CopyFrom(helper.make_tensor_value_info("y", TensorProto.FLOAT, [-1, 3]))
    assert not _ort_run_fails(model, (2, 3))
    assert prepare_model(model, fold=False).outputs[0].shape == (2, 3)


def test_a_weight_with_a_negative_dim_is_refused() -> None:
    weight = onnx.TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[-1])
    model = _model([helper.make_node("Identity", ["x"], ["y"])], [2], [weight])
    with pytest.raises(ShapeError, match=r"initializer w has a negative dim \[-1\]"):
        check_dims(model)


def test_cli_refuses_in_one_line(tmp_path: Path, capfd) -> None:
    path = tmp_path / "m.onnx"
    onnx.save(_model([_pool(5)], [1, 1, 3, 3]), path)
    assert main(["compile", str(path), "-o", str(tmp_path / "art"), "--quiet"]) == 2
    gc.collect()
    err = [ln for ln in capfd.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and err[0].startswith("error: node 'pool' (MaxPool)"), err
    assert "ONNX Runtime refuses this model" in err[0]
    assert not (tmp_path / "art").exists()
