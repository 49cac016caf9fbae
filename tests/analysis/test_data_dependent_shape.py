"""A tensor whose size follows from input values is refused in one line that says so.

Input shapes are all static by the time memory is planned (the frontend refuses a dynamic
one), so pointing at --input-shape there sent users after the wrong fix."""

from __future__ import annotations

import onnx
import pytest
from onnx import TensorProto, helper

from graphopt.errors import ShapeError


def test_tile_with_repeats_fed_at_run_time_is_refused_as_data_dependent(tmp_path):
    from graphopt.compiler import CompileOptions, compile_model

    graph = helper.make_graph(
        [helper.make_node("Tile", ["x", "repeats"], ["y"])], "tile",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3]),
         helper.make_tensor_value_info("repeats", TensorProto.INT64, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 3])])
    model = helper.make_model(graph, ir_version=10, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    with pytest.raises(ShapeError, match="depends on input values") as err:
        compile_model(model, tmp_path / "art", CompileOptions(time_limit=1.0))
    assert "\n" not in str(err.value) and "--input-shape" not in str(err.value)
