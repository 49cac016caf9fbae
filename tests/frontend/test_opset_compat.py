"""Models stamped with opset 27/28 run at ONNX Runtime's 26 only where every node means the same there."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from graphopt.errors import ModelLoadError
from graphopt.frontend.domains import ORT_MAX_OPSET, check_domains

NEWEST = onnx.defs.onnx_opset_version()


def _model(node: onnx.NodeProto, elem: int, shape=(4,), opset: int = NEWEST, inputs=("a", "b")) -> onnx.ModelProto:
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info(n, elem, list(shape)) for n in inputs],
                              [helper.make_tensor_value_info("y", elem, list(shape))])
    return helper.make_model(graph, ir_version=10, opset_imports=[helper.make_opsetid("", opset)])


def _lowered_opset(model: onnx.ModelProto) -> int:
    return next(e.version for e in check_domains(model).opset_import if e.domain == "")


def _ort_accepts(model: onnx.ModelProto) -> bool:
    import onnxruntime as ort

    try:
        ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    except Exception:  # noqa: BLE001 - any ORT refusal
        return False
    return True


@pytest.mark.skipif(NEWEST < 28, reason="the installed onnx defines no opset 28")
def test_integer_mod_changed_only_for_floats_so_it_runs_at_26():
    model = _model(helper.make_node("Mod", ["a", "b"], ["y"]), TensorProto.INT32)
    assert not _ort_accepts(model)
    assert _lowered_opset(model) == ORT_MAX_OPSET[""]
    assert _ort_accepts(check_domains(model))


@pytest.mark.skipif(NEWEST < 28, reason="the installed onnx defines no opset 28")
def test_a_type_added_after_26_keeps_the_model_refused_naming_it():
    model = _model(helper.make_node("Celu", ["a"], ["y"]), TensorProto.FLOAT16, inputs=("a",))
    with pytest.raises(ModelLoadError, match=r"Celu changed after it: 'a' is tensor\(float16\), allowed only"):
        check_domains(model)
    assert _lowered_opset(_model(helper.make_node("Celu", ["a"], ["y"]), TensorProto.FLOAT, inputs=("a",))) == 26


@pytest.mark.skipif(NEWEST < 28, reason="the installed onnx defines no opset 28")
def test_space_to_depth_runs_at_26_in_its_old_dcr_order_only():
    def model(mode: str) -> onnx.ModelProto:
        node = helper.make_node("SpaceToDepth", ["a"], ["y"], blocksize=2, mode=mode)
        graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("a", TensorProto.FLOAT, [1, 1, 4, 4])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 2, 2])])
        return helper.make_model(graph, ir_version=10, opset_imports=[helper.make_opsetid("", NEWEST)])

    lowered = check_domains(model("DCR"))
    assert [a.name for a in lowered.graph.node[0].attribute] == ["blocksize"]  # mode dropped: 26 has none
    assert _ort_accepts(lowered)
    with pytest.raises(ModelLoadError, match="mode=CRD is defined only from opset 28"):
        check_domains(model("CRD"))


@pytest.mark.skipif(NEWEST < 28, reason="the installed onnx defines no opset 28")
def test_bitshift_shifts_of_the_width_or_more_give_opset_28s_answer(tmp_path):
    """Opset 28 defines a shift of the element width or more as 0 (older opsets left it open);
    graphopt's converter gives that answer, checked against numpy on exact integers."""
    from graphopt.compiler import CompileOptions, compile_model
    from graphopt.runtime import load

    for direction in ("LEFT", "RIGHT"):
        model = _model(helper.make_node("BitShift", ["a", "b"], ["y"], direction=direction), TensorProto.UINT16)
        compile_model(model, tmp_path / direction, CompileOptions(fallback=False))
        x = np.array([1, 200, 3, 65535], dtype=np.uint16)
        shift = np.array([1, 2, 16, 20], dtype=np.uint16)
        got = load(tmp_path / direction).run({"a": x, "b": shift})["y"]
        wide = x.astype(np.uint64)
        exact = (wide << shift.astype(np.uint64)) if direction == "LEFT" else (wide >> shift.astype(np.uint64))
        expected = np.where(shift < 16, exact & 0xFFFF, 0).astype(np.uint16)
        np.testing.assert_array_equal(got, expected)


@pytest.mark.skipif(NEWEST < 28, reason="the installed onnx defines no opset 28")
def test_signed_bitshift_of_opset_28_is_rewritten_exactly(tmp_path):
    """Signed shifts are new in opset 28: left shifts wrap past the sign bit, right shifts fill with
    it, and a shift that is negative or of the width or more gives the fill alone (-1 or 0)."""
    from graphopt.compiler import CompileOptions, compile_model
    from graphopt.runtime import load

    x = np.array([1, -1, 100, -100, 64, -128, 5, -5, 7, -7], dtype=np.int8)
    y = np.array([1, 1, 2, 3, 1, 1, 8, 9, -1, -2], dtype=np.int8)
    valid = (y >= 0) & (y < 8)
    safe = np.where(valid, y, 0).astype(np.int64)
    for direction in ("LEFT", "RIGHT"):
        model = _model(helper.make_node("BitShift", ["a", "b"], ["y"], direction=direction), TensorProto.INT8,
                       shape=x.shape)
        compile_model(model, tmp_path / direction, CompileOptions())
        got = load(tmp_path / direction).run({"a": x, "b": y})["y"]
        wide = x.astype(np.int64)
        if direction == "LEFT":
            expected = np.where(valid, ((wide << safe) & 0xFF), 0).astype(np.uint8).view(np.int8)
        else:
            expected = np.where(valid, wide >> safe, np.where(wide < 0, -1, 0)).astype(np.int8)
        np.testing.assert_array_equal(got, expected, err_msg=direction)


@pytest.mark.skipif(NEWEST < 28, reason="the installed onnx defines no opset 28")
def test_float_mod_with_fmod_0_at_28_is_rewritten_exactly_and_before_28_refused(tmp_path):
    """Opset 28's floor remainder on floats, special cases included, against Python's float %
    (which opset 28 follows); before 28 it was undefined and ONNX Runtime refuses it."""
    from graphopt.compiler import CompileOptions, compile_model
    from graphopt.errors import UnsupportedOperatorError
    from graphopt.frontend import prepare_model
    from graphopt.runtime import load

    a = np.array([5.5, -5.5, 5.5, -5.5, 0.0, -0.0, 3.0, -3.0, np.inf, 2.0, np.nan], dtype=np.float64)
    b = np.array([2.0, 2.0, -2.0, -2.0, -3.0, 3.0, np.inf, np.inf, 2.0, 0.0, 1.0], dtype=np.float64)
    model = _model(helper.make_node("Mod", ["a", "b"], ["y"], fmod=0), TensorProto.DOUBLE, shape=a.shape)
    compile_model(model, tmp_path / "art", CompileOptions())
    got = load(tmp_path / "art").run({"a": a, "b": b})["y"]
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = np.mod(a, b)
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(expected))  # zeros take b's sign
    old = _model(helper.make_node("Mod", ["a", "b"], ["y"], fmod=0), TensorProto.DOUBLE, opset=13)
    with pytest.raises(UnsupportedOperatorError, match="fmod=0 on floating-point values is defined only from"):
        prepare_model(old)
