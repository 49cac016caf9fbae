"""Input shapes: parsing the flag, pinning dims, and refusing every ambiguous case."""

from __future__ import annotations

import hashlib

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from graphopt.errors import InputError, ShapeError
from graphopt.frontend import prepare, prepare_model
from graphopt.frontend.shapes import (
    fix_input_shapes,
    graph_input_names,
    parse_input_shape,
)


def _dynamic_model(dims=("N", 3, "H", "W")) -> onnx.ModelProto:
    """Relu then a Reshape whose target shape is computed from Shape(x): needs folding."""
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Shape", ["r"], ["s"]),
        helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "zero_axes"], ["n1"]),
        helper.make_node("Concat", ["n1", "minus_one"], ["target"], axis=0),
        helper.make_node("Reshape", ["r", "target"], ["y"]),
    ]
    inits = [
        numpy_helper.from_array(np.array(0, np.int64), "zero"),
        numpy_helper.from_array(np.array([0], np.int64), "zero_axes"),
        numpy_helper.from_array(np.array([-1], np.int64), "minus_one"),
    ]
    graph = helper.make_graph(
        nodes, "dyn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(dims))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", "M"])], initializer=inits)
    return helper.make_model(graph, ir_version=10, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("spec, expected", [
    ("x=1x3x224x224", ("x", (1, 3, 224, 224))),
    ("x=1,3,8", ("x", (1, 3, 8))),
    (" gpu_0/data_0 = 2x3 ", ("gpu_0/data_0", (2, 3))),
    ("input:0=7", ("input:0", (7,))),
])
def test_parse_input_shape(spec, expected):
    assert parse_input_shape(spec) == expected


@pytest.mark.parametrize("spec", ["x", "x=", "=1x2", "x=1xa", "x=0x3", "x=1x-3", "x=1x", "x==1"])
def test_parse_input_shape_rejects(spec):
    with pytest.raises(InputError) as err:
        parse_input_shape(spec)
    assert "NAME=" in str(err.value) or "positive" in str(err.value)


def test_fix_sets_dims_and_infers_everything():
    fixed = fix_input_shapes(_dynamic_model(), {"x": (2, 3, 4, 5)})
    dims = [d.dim_value for d in fixed.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [2, 3, 4, 5]
    out = fixed.graph.output[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in out] == [2, 60]  # data propagation folds Shape->Reshape


def test_fix_does_not_touch_the_original():
    model = _dynamic_model()
    fix_input_shapes(model, {"x": (2, 3, 4, 5)})
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "N"


def test_unknown_input_lists_the_real_names():
    with pytest.raises(InputError) as err:
        fix_input_shapes(_dynamic_model(), {"images": (1, 3, 4, 4)})
    assert "images" in str(err.value) and "x" in str(err.value)
    assert "zero" not in str(err.value)  # initializers are not inputs


def test_rank_mismatch():
    with pytest.raises(ShapeError, match="rank 4"):
        fix_input_shapes(_dynamic_model(), {"x": (1, 3, 4)})


def test_conflict_with_fixed_dim():
    with pytest.raises(ShapeError, match="dim 1 is fixed to 3"):
        fix_input_shapes(_dynamic_model(), {"x": (1, 4, 4, 4)})


def test_minus_one_dim_is_dynamic_not_fixed():
    model = _dynamic_model(dims=(-1, 3, 4, 4))
    fixed = fix_input_shapes(model, {"x": (2, 3, 4, 4)})
    assert fixed.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 2


def test_dynamic_dim_left_is_an_error_naming_it():
    with pytest.raises(ShapeError) as err:
        fix_input_shapes(_dynamic_model(), {})
    message = str(err.value)
    assert "x dim 0 (N)" in message and "--input-shape x=" in message


def test_unknown_rank_is_an_error():
    model = _dynamic_model()
    model.graph.input[0].type.tensor_type.ClearField("shape")
    with pytest.raises(ShapeError, match="unknown rank"):
        fix_input_shapes(model, {})


def test_initializers_listed_as_inputs_are_not_inputs():
    model = _dynamic_model(dims=(1, 3, 2, 2))
    model.graph.input.extend([helper.make_tensor_value_info("zero", TensorProto.INT64, [])])
    assert graph_input_names(model) == ["x"]
    fix_input_shapes(model, {})


def test_prepare_folds_and_records_signatures(tmp_path):
    path = tmp_path / "dyn.onnx"
    onnx.save(_dynamic_model(), path)
    prepared = prepare(path, {"x": (2, 3, 4, 5)})
    assert prepared.source_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert [tuple(s) for s in prepared.inputs] == [("x", (2, 3, 4, 5), "float32")]
    assert [tuple(s) for s in prepared.outputs] == [("y", (2, 60), "float32")]
    ops = {n.op_type for n in prepared.model.graph.node}
    assert "Shape" not in ops and "Gather" not in ops  # shape arithmetic folded


def test_prepare_without_folding_keeps_the_graph():
    prepared = prepare_model(_dynamic_model(), {"x": (2, 3, 4, 5)}, fold=False)
    assert [n.op_type for n in prepared.model.graph.node][:2] == ["Relu", "Shape"]


def test_declared_zero_dim_is_an_empty_tensor_not_a_dynamic_one():
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "empty",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [0, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [0, 3])])
    model = helper.make_model(graph, ir_version=10, opset_imports=[helper.make_opsetid("", 17)])
    fixed = fix_input_shapes(model, {})
    assert [d.dim_value for d in fixed.graph.output[0].type.tensor_type.shape.dim] == [0, 3]


def _empty_input_model(op: str) -> onnx.ModelProto:
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3]),
              helper.make_tensor_value_info("e", TensorProto.DOUBLE, [0])]
    node = helper.make_node("CastLike", ["x", "e"], ["y"]) if op == "CastLike" else \
        helper.make_node("ReduceSum", ["e"], ["y"], keepdims=0)
    out_type, out_dims = (TensorProto.DOUBLE, [2, 3]) if op == "CastLike" else (TensorProto.DOUBLE, [])
    graph = helper.make_graph([node], "empty", inputs, [helper.make_tensor_value_info("y", out_type, out_dims)])
    return helper.make_model(graph, ir_version=10, opset_imports=[helper.make_opsetid("", 17)])


def test_empty_input_whose_data_is_read_is_refused_without_folding():
    """TVM's reductions never initialize over an empty axis: a wrong answer, so a refusal."""
    with pytest.raises(ShapeError, match="input e dim 0 is 0 \\(an empty tensor\\)"):
        prepare_model(_empty_input_model("ReduceSum"), fold=False)


def test_empty_input_read_by_a_reduction_is_folded_to_its_only_value(tmp_path):
    """An empty tensor has one value, so folding computes what reads it (ReduceSum over nothing
    is 0, ReduceMax is -inf...) with ONNX Runtime's own kernels; the input is still taken."""
    from tests.conftest import compile_run_check

    inputs = [helper.make_tensor_value_info("x", TensorProto.DOUBLE, [2, 3]),
              helper.make_tensor_value_info("e", TensorProto.DOUBLE, [2, 0])]
    nodes = [helper.make_node("ReduceSum", ["e", "axes"], ["s"], keepdims=1),
             helper.make_node("Add", ["x", "s"], ["y"])]
    axes = numpy_helper.from_array(np.array([1], dtype=np.int64), "axes")
    graph = helper.make_graph(nodes, "empty_sum", inputs, [helper.make_tensor_value_info("y", TensorProto.DOUBLE,
                                                                                         [2, 3])],
                              initializer=[axes])
    model = helper.make_model(graph, ir_version=10, opset_imports=[helper.make_opsetid("", 18)])
    compile_run_check(model, tmp_path, stock_bound=False)
    prepared = prepare_model(model)
    assert [(s.name, s.shape) for s in prepared.inputs] == [("x", (2, 3)), ("e", (2, 0))]
    assert all("e" not in node.input for node in prepared.model.graph.node)


def test_empty_input_read_for_its_type_only_passes():
    prepared = prepare_model(_empty_input_model("CastLike"))
    assert [(s.name, s.shape) for s in prepared.inputs] == [("x", (2, 3)), ("e", (0,))]
