"""Folding with onnxslim keeps what the source model promises: old IR/opset models fold,
inputs nothing reads stay inputs, and shapes are ONNX's, not onnxslim's guesses."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from graphopt.frontend import prepare_model


def _model(nodes, inputs, outputs, inits=(), opset=17, ir_version=10) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "m", inputs, outputs, list(inits))
    model = helper.make_model(graph, ir_version=ir_version, opset_imports=[helper.make_opsetid("", opset)])
    onnx.checker.check_model(model)
    return model


def _vi(name, dims, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, dims)


def test_ir3_opset6_model_folds():
    """IR 3 lists every initializer among the inputs; onnxslim's own shape inference gives up
    below opset 7 (it returned None and the fold crashed on it)."""
    weight = numpy_helper.from_array(np.ones((2, 3), np.float32), "w")
    model = _model([helper.make_node("Add", ["x", "w"], ["y"])], [_vi("x", [2, 3]), _vi("w", [2, 3])],
                   [_vi("y", [2, 3])], [weight], opset=6, ir_version=3)
    prepared = prepare_model(model)
    assert [s.name for s in prepared.inputs] == ["x"]  # the weight is no input a caller feeds
    assert prepared.model.ir_version == 4  # initializers apart from the inputs: IR 4's rule
    onnx.checker.check_model(prepared.model)


def test_an_input_nothing_reads_stays_an_input():
    model = _model([helper.make_node("Relu", ["x"], ["y"])], [_vi("x", [2]), _vi("unused", [3])],
                   [_vi("y", [2])])
    prepared = prepare_model(model)
    assert [(s.name, s.shape) for s in prepared.inputs] == [("x", (2,)), ("unused", (3,))]
    assert [vi.name for vi in prepared.model.graph.input] == ["x", "unused"]


def test_uneven_split_keeps_onnx_shapes():
    """Split into 4 of 7: ONNX says 2, 2, 2, 1; onnxslim's inference wrote 1, 1, 1, 1."""
    outs = [f"o{i}" for i in range(4)]
    model = _model([helper.make_node("Split", ["x"], outs, num_outputs=4)], [_vi("x", [7])],
                   [_vi(name, [2 if i < 3 else 1]) for i, name in enumerate(outs)], opset=18)
    prepared = prepare_model(model)
    assert [s.shape for s in prepared.outputs] == [(2,), (2,), (2,), (1,)]
