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


def test_split_sized_by_an_input_keeps_the_declared_output_shapes(tmp_path):
    """Split's sizes from a non-constant input: onnxslim wrote equal parts (3, 3) over the model's
    declared 2 and 4, and the plan held the wrong sizes. The declared shapes are the contract: data
    that keeps it runs and matches ONNX Runtime, data that breaks it fails in one line."""
    import pytest

    from graphopt.compiler import CompileOptions, compile_model
    from graphopt.errors import KernelError
    from graphopt.runtime import load

    model = _model([helper.make_node("Split", ["x", "split"], ["a", "b"], axis=0)],
                   [_vi("x", [6]), _vi("split", [2], TensorProto.INT64)], [_vi("a", [2]), _vi("b", [4])], opset=18)
    assert [s.shape for s in prepare_model(model).outputs] == [(2,), (4,)]
    compile_model(model, tmp_path / "art", CompileOptions())
    session = load(tmp_path / "art")
    x = np.arange(1, 7, dtype=np.float32)
    got = session.run({"x": x, "split": np.array([2, 4], dtype=np.int64)})
    np.testing.assert_array_equal(got["a"], x[:2])
    np.testing.assert_array_equal(got["b"], x[2:])
    with pytest.raises(KernelError, match="onnxruntime returned float32\\[3\\], the plan holds float32\\[2\\]"):
        session.run({"x": x, "split": np.array([3, 3], dtype=np.int64)})
