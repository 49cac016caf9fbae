"""--input-value: an input fixed at compile time (a model that branches on it then compiles),
and the runtime holds every call to that value."""

from __future__ import annotations

import json
import re

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto as T
from onnx import helper

import graphopt.runtime as rt
from graphopt.cli import main
from graphopt.compiler import compile_model
from graphopt.errors import InputError, ShapeError
from graphopt.options import CompileOptions


def _rate_switch() -> onnx.ModelProto:
    """Like silero-vad: an If on a sample-rate input picks branches whose outputs differ in shape."""
    x = helper.make_tensor_value_info("x", T.FLOAT, [1, 4])
    then_out = helper.make_tensor_value_info("t", T.FLOAT, ["n", "m"])
    else_out = helper.make_tensor_value_info("e", T.FLOAT, ["n", "m"])
    then_graph = helper.make_graph([helper.make_node("Mul", ["x", "two"], ["t"])], "then", [], [then_out],
                                   initializer=[helper.make_tensor("two", T.FLOAT, [], [2.0])])
    else_graph = helper.make_graph([helper.make_node("Concat", ["x", "x"], ["e"], axis=1)], "else", [], [else_out])
    nodes = [helper.make_node("Equal", ["sr", "rate16k"], ["is16k"]),
             helper.make_node("If", ["is16k"], ["y0"], then_branch=then_graph, else_branch=else_graph),
             helper.make_node("Tanh", ["y0"], ["y"])]
    graph = helper.make_graph(nodes, "rate_switch", [x, helper.make_tensor_value_info("sr", T.INT64, [])],
                              [helper.make_tensor_value_info("y", T.FLOAT, ["n", "m"])],
                              initializer=[helper.make_tensor("rate16k", T.INT64, [], [16000])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10)


def test_a_value_dependent_branch_is_refused_until_the_value_is_fixed(tmp_path):
    with pytest.raises(ShapeError):
        compile_model(_rate_switch(), tmp_path / "a", CompileOptions())


def test_a_fixed_input_compiles_matches_onnx_runtime_and_holds_calls_to_its_value(tmp_path):
    model = _rate_switch()
    compile_model(model, tmp_path / "a", CompileOptions(input_values={"sr": (16000.0,)}))
    session = rt.load(tmp_path / "a")
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert manifest["pinned_inputs"] == [{"name": "sr", "shape": [], "dtype": "int64", "value": [16000]}]
    x = np.array([[0.3, -0.7, 1.1, 0.05]], np.float32)
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"x": x, "sr": np.array(16000, np.int64)})[0]
    np.testing.assert_allclose(session.run({"x": x, "sr": np.array(16000, np.int64)})["y"], want, rtol=1e-6)
    np.testing.assert_allclose(session.run({"x": x})["y"], want, rtol=1e-6)  # omitted: the compiled value
    with pytest.raises(InputError, match="sr was fixed at \\[16000\\]"):
        session.run({"x": x, "sr": np.array(8000, np.int64)})


@pytest.mark.parametrize("value, message", [("sr=abc", "must be numbers"), ("sr", "expected NAME=V"),
                                            ("rate=1", "no input 'rate'"), ("sr=1.5", "not exactly representable"),
                                            ("sr=1,2", "2 value\\(s\\) for an input of shape scalar")])
def test_bad_input_values_are_one_line_errors(tmp_path, capsys, value, message):
    path = tmp_path / "m.onnx"
    onnx.save(_rate_switch(), path)
    try:  # argparse's own errors exit; the model checks return the status
        status = main(["compile", str(path), "-o", str(tmp_path / "art"), "--input-value", value])
    except SystemExit as exit_:
        status = exit_.code
    assert status == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error:"), err
    assert re.search(message, err), err
    assert not (tmp_path / "art").exists()
