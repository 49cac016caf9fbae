"""A LayerNorm written in primitives becomes one LayerNormalization (graphopt.frontend.layer_norm_fusion): where
it matches (affine tail or not, Mul or Pow, axes as attribute or input), where it must not (another use of an
intermediate, another axis, an opset without LayerNormalization), the same numbers as ONNX Runtime on the
original graph, and a compiled model that stays exact on rows with a large mean (a one-pass variance would not)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from graphopt.examples.models import IR_VERSION
from graphopt.frontend.layer_norm_fusion import fuse_layer_norms

SHAPE = [2, 6, 32]


def decomposed(affine: bool = True, square: str = "Mul", opset: int = 17, axes: list[int] | None = None,
               centred_output: bool = False) -> onnx.ModelProto:
    """x -> LayerNorm over the last axis, spelled out -> Relu -> y (and the centred x as an output too)."""
    rng = np.random.default_rng(0)
    axes = axes or [-1]
    inits = [numpy_helper.from_array(np.array(1e-5, np.float32), "eps"),
             numpy_helper.from_array(rng.standard_normal(SHAPE[-1]).astype(np.float32), "gamma"),
             numpy_helper.from_array(rng.standard_normal(SHAPE[-1]).astype(np.float32), "beta"),
             numpy_helper.from_array(np.array(2.0, np.float32), "two")]

    def mean(x: str, out: str) -> onnx.NodeProto:
        if opset >= 18:
            inits.append(numpy_helper.from_array(np.array(axes, np.int64), f"{out}_axes"))
            return helper.make_node("ReduceMean", [x, f"{out}_axes"], [out], keepdims=1)
        return helper.make_node("ReduceMean", [x], [out], axes=axes, keepdims=1)

    nodes = [mean("x", "m"), helper.make_node("Sub", ["x", "m"], ["d"]),
             helper.make_node("Mul", ["d", "d"], ["sq"]) if square == "Mul"
             else helper.make_node("Pow", ["d", "two"], ["sq"]),
             mean("sq", "v"), helper.make_node("Add", ["v", "eps"], ["ve"]),
             helper.make_node("Sqrt", ["ve"], ["s"]), helper.make_node("Div", ["d", "s"], ["n"])]
    last = "n"
    if affine:
        nodes += [helper.make_node("Mul", ["n", "gamma"], ["g"]), helper.make_node("Add", ["g", "beta"], ["b"])]
        last = "b"
    nodes.append(helper.make_node("Relu", [last], ["y"]))
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, SHAPE)]
    if centred_output:
        outputs.append(helper.make_tensor_value_info("d", TensorProto.FLOAT, SHAPE))
    graph = helper.make_graph(nodes, "layer_norm", [helper.make_tensor_value_info("x", TensorProto.FLOAT, SHAPE)],
                              outputs, inits)
    model = helper.make_model(graph, ir_version=IR_VERSION, opset_imports=[helper.make_opsetid("", opset)])
    return onnx.shape_inference.infer_shapes(model)


def _ort(model: onnx.ModelProto, x: np.ndarray) -> list[np.ndarray]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # the graph as written
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})


@pytest.mark.parametrize("variant", [{}, {"affine": False}, {"square": "Pow"}, {"opset": 18}, {"axes": [2]}])
def test_fused_into_one_node_with_the_same_numbers(variant: dict):
    model = decomposed(**variant)
    result = fuse_layer_norms(model)
    assert result.modified and result.record == {"fused": 1}
    assert [n.op_type for n in result.module.graph.node] == ["LayerNormalization", "Relu"]
    onnx.checker.check_model(result.module, full_check=True)
    x = np.random.default_rng(1).standard_normal(SHAPE).astype(np.float32)
    np.testing.assert_allclose(_ort(result.module, x)[0], _ort(model, x)[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("variant", [{"centred_output": True}, {"axes": [1]}, {"opset": 16}])
def test_left_alone_where_it_does_not_match_exactly(variant: dict):
    model = decomposed(**variant)
    before = model.SerializeToString(deterministic=True)
    result = fuse_layer_norms(model)
    assert not result.modified and result.module is model and result.record == {"fused": 0}
    assert model.SerializeToString(deterministic=True) == before


def test_compiled_model_matches_onnx_runtime_and_records_the_fusion(tmp_path: Path):
    from tests.conftest import compile_run_check

    plan = compile_run_check(decomposed(), tmp_path)
    assert plan["layer_norm"] == {"fused": 1}


def test_rows_with_a_large_mean_stay_exact(tmp_path: Path):
    """x = 1000 + N(0, 1) per row: the two-pass variance of the fused kernel keeps ~1e-4 relative accuracy
    against float64 (E[x^2] - E[x]^2 in float32 would lose the variance entirely)."""
    from graphopt.compiler import CompileOptions, compile_model
    from graphopt.runtime import load

    model = decomposed(affine=False)
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    compiled = compile_model(path, tmp_path / "art", CompileOptions(time_limit=2.0))
    assert compiled.plan["layer_norm"] == {"fused": 1}
    x = (1000.0 + np.random.default_rng(2).standard_normal(SHAPE)).astype(np.float32)
    actual = load(tmp_path / "art").run({"x": x})["y"]
    wide = x.astype(np.float64)
    centred = wide - wide.mean(-1, keepdims=True)
    expected = np.maximum(centred / np.sqrt((centred ** 2).mean(-1, keepdims=True) + 1e-5), 0)
    assert np.abs(actual - expected).max() < 1e-3


def test_a_malformed_constant_is_left_to_the_importer():
    """An initializer whose data does not fit its dims (the fuzz test's "removed dims") cannot be read: the
    rewrite does not raise; the LayerNorm is fused without the affine tail that used it."""
    model = decomposed()
    gamma = next(t for t in model.graph.initializer if t.name == "gamma")
    del gamma.dims[:]
    result = fuse_layer_norms(model)
    assert result.record == {"fused": 1}
    assert [n.op_type for n in result.module.graph.node] == ["LayerNormalization", "Mul", "Add", "Relu"]
