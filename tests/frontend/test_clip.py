"""Clip with bounds known at import becomes one relax.clip; a bound only the run knows
keeps the importer's NaN-aware maximum/minimum. (Values, NaN and Inf included, are
checked against ONNX Runtime in tests/lowering/test_nan_semantics.py.)"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper


def _clip_model(bounds: list[str], extra_nodes: list, inits: list):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8])
    nodes = extra_nodes + [helper.make_node("Clip", ["x", *bounds], ["y"])]
    graph = helper.make_graph(nodes, "clip", [x], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 8])],
                              inits)
    return helper.make_model(graph, ir_version=10, opset_imports=[helper.make_opsetid("", 13)])


def _imported(model) -> str:
    from graphopt.frontend.importer import to_relax

    return to_relax(model).mod.script()


def _scalar(name: str, value: float):
    return numpy_helper.from_array(np.asarray(value, np.float32), name)


def test_weight_and_constant_node_bounds_fold_into_one_clip():
    constant = helper.make_node("Constant", [], ["hi"], value=_scalar("hi", 6.0))
    script = _imported(_clip_model(["lo", "hi"], [constant], [_scalar("lo", 0.0)]))
    assert script.count("R.clip(") == 1
    assert "R.isnan(" not in script and "R.maximum(" not in script


def test_nan_bound_means_unbounded():
    script = _imported(_clip_model(["lo", "hi"], [], [_scalar("lo", np.nan), _scalar("hi", 2.0)]))
    assert 'R.clip(x, T.float64("-inf"), T.float64(2.0))' in script


def test_run_time_bound_keeps_the_importers_conversion():
    peak = helper.make_node("ReduceMax", ["x"], ["peak"], keepdims=0)
    script = _imported(_clip_model(["", "peak"], [peak], []))
    assert "R.clip(" not in script and "R.isnan(" in script


def test_opset6_attribute_defaults_match_onnx_runtime(tmp_path):
    """Opset 6's absent max is FLT_MAX, as ONNX Runtime reads it: +inf becomes FLT_MAX."""
    import onnxruntime as ort

    from graphopt.compiler import CompileOptions, compile_model
    from graphopt.runtime import load

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [8])
    node = helper.make_node("Clip", ["x"], ["y"], min=-1.0)
    graph = helper.make_graph([node], "clip6", [x], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [8])])
    model = helper.make_model(graph, ir_version=3, opset_imports=[helper.make_opsetid("", 6)])
    feed = {"x": np.array([np.inf, -np.inf, np.nan, 0.0, 2.5, -3.0, 1e38, -0.5], np.float32)}
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feed)[0]
    compile_model(model, tmp_path / "art", CompileOptions(fallback=False))
    got = load(tmp_path / "art").run(feed)["y"]
    assert want[0] == np.finfo(np.float32).max
    np.testing.assert_array_equal(got, want)
