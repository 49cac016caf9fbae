"""A graph output computed by ONNX Shape comes back as the int64 tensor ONNX defines.

TVM keeps a Shape's result as a shape value, not a tensor; the runtime converts it, including an
empty one (start past end), which must stay one output of shape (0,), not zero outputs."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import graphopt.runtime as rt
from graphopt.compiler import compile_model
from graphopt.options import CompileOptions


def _shape_model(**attrs) -> onnx.ModelProto:
    node = helper.make_node("Shape", ["x"], ["s"], **attrs)
    relu = helper.make_node("Relu", ["x"], ["y"])
    length = len(range(4)[slice(attrs.get("start"), attrs.get("end"))])
    graph = helper.make_graph([node, relu], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4, 5])],
                              [helper.make_tensor_value_info("s", TensorProto.INT64, [length]),
                               helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3, 4, 5])])
    return helper.make_model(graph, ir_version=10, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("attrs", [{}, {"start": 1, "end": 3}, {"start": 3, "end": 1}], ids=["all", "middle", "empty"])
def test_shape_output_is_an_int64_tensor(tmp_path, attrs) -> None:
    compile_model(_shape_model(**attrs), tmp_path / "art", CompileOptions())
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5)).astype(np.float32)
    out = rt.load(tmp_path / "art").run({"x": x})
    expected = np.array(x.shape[slice(attrs.get("start"), attrs.get("end"))], dtype=np.int64)
    assert out["s"].dtype == np.int64
    np.testing.assert_array_equal(out["s"], expected)
    np.testing.assert_array_equal(out["y"], np.maximum(x, 0))
