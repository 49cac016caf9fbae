"""Narrow element types (float8, float4, int4, int2), held widened and computed by graphopt's rewrites.

Checked against ONNX Runtime wherever it runs the model (the float8 casts, sub-byte
quantization), against ONNX's reference evaluator where it does not (float4), on values
chosen to hit every rounding case: ties to even, subnormals, the largest finite value and
just past it, zeros of both signs, infinities and NaN.
"""

from __future__ import annotations

import json

import ml_dtypes
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto as T
from onnx import helper
from onnx.reference import ReferenceEvaluator

import graphopt.runtime as rt
from graphopt.compiler import compile_model
from graphopt.errors import InputError, UnsupportedOperatorError
from graphopt.options import CompileOptions

FLOAT8 = {"e4m3fn": T.FLOAT8E4M3FN, "e4m3fnuz": T.FLOAT8E4M3FNUZ, "e5m2": T.FLOAT8E5M2, "e5m2fnuz": T.FLOAT8E5M2FNUZ}


def _probe_values() -> np.ndarray:
    """Every case of the rounding, then random values over the formats' whole range."""
    special = [0.0, -0.0, np.nan, np.inf, -np.inf, 1e-7, -1e-7, 1e6, -1e6, 0.48, 1.05, -3.5, 9.0, -9.0,
               2.5, 3.5, 464.0, 465.0, 447.0, 240.0, 248.0, 57344.0, 61440.0, 61441.0, 0.001, -0.001,
               2.0 ** -9, 2.0 ** -10, 1.5 * 2.0 ** -10, 2.0 ** -16, 2.0 ** -17, 3 * 2.0 ** -18, 6.0, 6.5, 7.0,
               0.25, 0.75, 1.25, 5.0]
    rng = np.random.default_rng(0)
    spread = rng.standard_normal(400) * np.exp2(rng.uniform(-18, 17, 400))
    return np.concatenate([special, spread]).astype(np.float32)


def _round_trip_model(casts: dict[str, tuple[int, int]], opset: int = 21) -> onnx.ModelProto:
    """x_name -> Cast(to=format, saturate) -> Cast(to=float) per named (format, saturate): outputs ONNX Runtime
    can check. One input per cast: the casts of one input would share their comparisons, which splits
    each chain into many kernels and makes the test slow to compile (the result is the same)."""
    n = len(_probe_values())
    nodes, inputs, outputs = [], [], []
    for name, (to, saturate) in casts.items():
        nodes += [helper.make_node("Cast", [f"x_{name}"], [f"n_{name}"], to=to, saturate=saturate),
                  helper.make_node("Cast", [f"n_{name}"], [f"y_{name}"], to=T.FLOAT)]
        inputs.append(helper.make_tensor_value_info(f"x_{name}", T.FLOAT, [n]))
        outputs.append(helper.make_tensor_value_info(f"y_{name}", T.FLOAT, [n]))
    graph = helper.make_graph(nodes, "round_trip", inputs, outputs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=10)


def _compiled(model: onnx.ModelProto, tmp_path, name: str = "a") -> rt.Session:
    compile_model(model, tmp_path / name, CompileOptions())
    return rt.load(tmp_path / name)


def _same(got: np.ndarray, want: np.ndarray) -> None:
    """Equal values, NaN where NaN, and the sign of every zero."""
    np.testing.assert_array_equal(got, want)
    zeros = want == 0
    np.testing.assert_array_equal(np.signbit(got[zeros]), np.signbit(want[zeros]))


def test_float8_casts_round_as_onnx_runtime_does(tmp_path):
    """Every float8 format, saturating and not (but e5m2, refused below), in one model."""
    casts = {f"{name}_{saturate}": (to, saturate) for name, to in FLOAT8.items() for saturate in (1, 0)
             if (name, saturate) != ("e5m2", 0)}
    model = _round_trip_model(casts)
    feeds = {f"x_{name}": _probe_values() for name in casts}
    got = _compiled(model, tmp_path).run(feeds)
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)
    for name, expected in zip(casts, want):
        _same(got[f"y_{name}"], expected)


def test_a_non_saturating_cast_to_e5m2_is_refused_where_onnx_runtime_and_onnx_differ(tmp_path):
    """61440 rounds past 57344: infinity in ONNX's definition (and its reference), NaN in ONNX Runtime."""
    model = _round_trip_model({"e5m2": (T.FLOAT8E5M2, 0)})
    feeds = {"x_e5m2": np.full(len(_probe_values()), 61440.0, np.float32)}
    ort_says = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)
    assert np.isnan(ort_says[0]).all() and np.isinf(ReferenceEvaluator(model).run(None, feeds)[0]).all()
    with pytest.raises(UnsupportedOperatorError, match="non-saturating cast to FLOAT8E5M2"):
        compile_model(model, tmp_path / "a", CompileOptions())


def test_float4_and_float64_casts_match_the_onnx_reference(tmp_path):
    """ONNX Runtime has no float4 cast; ONNX's reference is the judge (NaN becomes 0 there)."""
    n = len(_probe_values())
    nodes = [helper.make_node("Cast", ["x"], ["n4"], to=T.FLOAT4E2M1), helper.make_node("Cast", ["n4"], ["y4"], to=1),
             helper.make_node("Cast", ["x"], ["x64"], to=T.DOUBLE),
             helper.make_node("Cast", ["x64"], ["n8"], to=T.FLOAT8E5M2), helper.make_node("Cast", ["n8"], ["y8"], to=1)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", T.FLOAT, [n])],
                              [helper.make_tensor_value_info(o, T.FLOAT, [n]) for o in ("y4", "y8")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 23)], ir_version=10)
    x = _probe_values()
    got = _compiled(model, tmp_path).run({"x": x})
    want = ReferenceEvaluator(model).run(None, {"x": x})
    np.testing.assert_array_equal(got["y4"], want[0])  # zeros' signs: the reference's NaN is a -0 code
    _same(got["y8"], want[1])


def test_narrow_inputs_and_outputs_keep_the_callers_types(tmp_path):
    """A float8 input and an int4 output cross the boundary as ml_dtypes arrays; the arena holds them wider."""
    graph = helper.make_graph(
        [helper.make_node("Cast", ["a"], ["b"], to=T.FLOAT),
         helper.make_node("QuantizeLinear", ["b", "scale", "zero"], ["q"], axis=1)],
        "g", [helper.make_tensor_value_info("a", T.FLOAT8E4M3FN, [2, 3])],
        [helper.make_tensor_value_info("q", T.INT4, [2, 3]), helper.make_tensor_value_info("b", T.FLOAT, [2, 3])],
        initializer=[helper.make_tensor("scale", T.FLOAT, [3], [0.5, 1.0, 4.0])])
    graph.node.insert(0, helper.make_node(  # a zero point from a Constant node: widened like a weight
        "Constant", [], ["zero"], value=helper.make_tensor("zero_value", T.INT4, [3], [1, -2, 0])))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)], ir_version=10)
    session = _compiled(model, tmp_path)
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert manifest["inputs"][0]["dtype"] == "float8_e4m3fn" and manifest["inputs"][0]["held_as"] == "float32"
    assert manifest["outputs"][0]["dtype"] == "int4" and manifest["outputs"][0]["held_as"] == "int8"
    a = np.array([[0.5, -3.0, 20.0], [448.0, -0.25, 6.0]], dtype=ml_dtypes.float8_e4m3fn)
    got = session.run({"a": a})
    want = ReferenceEvaluator(model).run(None, {"a": a})
    assert got["q"].dtype == np.dtype(ml_dtypes.int4) and got["b"].dtype == np.float32
    np.testing.assert_array_equal(got["q"].astype(np.int8), want[0].astype(np.int8))
    np.testing.assert_array_equal(got["b"], want[1])
    with pytest.raises(InputError, match="float8_e4m3fn"):
        session.run({"a": a.astype(np.float32)})


def test_subbyte_quantize_dequantize_matches_onnx_runtime(tmp_path):
    """Per-axis QuantizeLinear to each sub-byte integer and back, saturating at both ends of its range."""
    x = (np.random.default_rng(1).standard_normal((4, 6)) * 8).astype(np.float32)
    x[0, :3] = [1000.0, -1000.0, 2.5]
    nodes, outputs, weights = [], [], [helper.make_tensor("scale", T.FLOAT, [4], [0.5, 1.0, 2.0, 4.0])]
    for narrow in (T.INT4, T.UINT4, T.INT2, T.UINT2):
        name, low = T.DataType.Name(narrow), -1 if narrow in (T.INT4, T.INT2) else 0
        weights.append(helper.make_tensor(f"zero_{name}", narrow, [4], [0, 1, low, 0]))
        nodes += [helper.make_node("QuantizeLinear", ["x", "scale", f"zero_{name}"], [f"q_{name}"], axis=0),
                  helper.make_node("DequantizeLinear", [f"q_{name}", "scale", f"zero_{name}"], [f"y_{name}"], axis=0)]
        outputs.append(helper.make_tensor_value_info(f"y_{name}", T.FLOAT, [4, 6]))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", T.FLOAT, [4, 6])], outputs,
                              initializer=weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 25)], ir_version=11)
    got = _compiled(model, tmp_path).run({"x": x})
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    for output, expected in zip(outputs, want):
        np.testing.assert_array_equal(got[output.name], expected)


def test_a_cast_onto_subbyte_integers_is_refused_in_one_line(tmp_path):
    """ONNX leaves it undefined out of range, and ORT and ONNX's reference disagree even in range (2.5)."""
    graph = helper.make_graph([helper.make_node("Cast", ["x"], ["y"], to=T.INT4)], "g",
                              [helper.make_tensor_value_info("x", T.FLOAT, [3])],
                              [helper.make_tensor_value_info("y", T.INT4, [3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)], ir_version=10)
    with pytest.raises(UnsupportedOperatorError, match="from FLOAT to INT4 is refused"):
        compile_model(model, tmp_path / "a", CompileOptions())


def test_other_operators_on_narrow_tensors_are_refused(tmp_path):
    """Pad takes float8 in ONNX, and a padding value of a widened tensor would be held widened too;
    graphopt computes narrow types through the casts and (de)quantizations only, and says so."""
    graph = helper.make_graph([helper.make_node("Pad", ["x", "pads"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", T.FLOAT8E4M3FN, [3])],
                              [helper.make_tensor_value_info("y", T.FLOAT8E4M3FN, [5])],
                              initializer=[helper.make_tensor("pads", T.INT64, [2], [1, 1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)], ir_version=10)
    with pytest.raises(UnsupportedOperatorError, match="Pad node .* FLOAT8E4M3FN"):
        compile_model(model, tmp_path / "a", CompileOptions())
