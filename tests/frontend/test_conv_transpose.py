"""ConvTranspose whose kernel equals its stride becomes a 1x1 convolution and a pixel shuffle;
every form, rewritten or not, output_shape included, matches ONNX Runtime."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

CASES = {  # name: (in, out channels, kernel, stride, bias, extra attributes, rewritten?)
    "2x2_bias": (3, 4, [2, 2], [2, 2], True, {}, True),
    "2x2_one_channel": (3, 1, [2, 2], [2, 2], False, {}, True),
    "3x2_rectangular": (3, 2, [3, 2], [3, 2], True, {}, True),
    "same_upper": (3, 2, [2, 2], [2, 2], True, {"auto_pad": "SAME_UPPER"}, True),
    "overlapping_3x3_s2": (3, 2, [3, 3], [2, 2], True, {}, False),
    "output_padding": (3, 2, [2, 2], [2, 2], True, {"output_padding": [1, 1]}, False),
    "two_groups": (4, 2, [2, 2], [2, 2], True, {"group": 2}, False),
    # output_shape: the padding it implies (odd totals put the extra pixel first, SAME_UPPER last)
    "output_shape_odd_padding": (3, 2, [3, 3], [3, 2], True, {"output_shape": [14, 13]}, False),
    "output_shape_same_upper": (3, 2, [3, 3], [3, 2], True, {"output_shape": [14, 13], "auto_pad": "SAME_UPPER"},
                                False),
    "output_shape_of_a_shuffle": (3, 2, [2, 2], [2, 2], True, {"output_shape": [10, 14]}, True),
}


def _model(c_in, c_out, kernel, stride, bias, attrs, rng):
    groups = attrs.get("group", 1)
    inits = [numpy_helper.from_array(rng.standard_normal((c_in, c_out, *kernel)).astype(np.float32), "w")]
    if bias:
        inits.append(numpy_helper.from_array(rng.standard_normal(c_out * groups).astype(np.float32), "b"))
    node = helper.make_node("ConvTranspose", ["x", "w"] + (["b"] if bias else []), ["y"], kernel_shape=kernel,
                            strides=stride, **attrs)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, c_in, 5, 7])
    graph = helper.make_graph([node], "ct", [x], [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    return helper.make_model(graph, ir_version=10, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("name", CASES)
def test_matches_onnx_runtime(name, tmp_path):
    import onnxruntime as ort

    from graphopt.compiler import CompileOptions, compile_model
    from graphopt.frontend.importer import to_relax
    from graphopt.runtime import load

    c_in, c_out, kernel, stride, bias, attrs, rewritten = CASES[name]
    rng = np.random.default_rng(0)
    model = _model(c_in, c_out, kernel, stride, bias, attrs, rng)
    assert ("conv2d_transpose" not in to_relax(model).mod.script()) == rewritten
    feed = {"x": rng.standard_normal((2, c_in, 5, 7)).astype(np.float32)}
    feed["x"][0, 0, 1, 2], feed["x"][1, 2, 3, 4] = np.nan, np.inf
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feed)[0]
    compile_model(model, tmp_path / "art", CompileOptions(fallback=False))
    got = load(tmp_path / "art").run({"x": feed["x"]})["y"]
    assert got.shape == want.shape
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got[~np.isnan(want)], want[~np.isnan(want)], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("output_shape", "message"), [([12, 14], "larger than the layer makes"),
                                                     ([2, 2, 10, 14], "output_shape has incorrect size")])
def test_output_shape_the_layer_cannot_make_is_refused(output_shape, message, tmp_path):
    """Larger than the layer makes (negative padding), or the whole shape (refused by shape inference, as
    ONNX Runtime refuses it)."""
    from graphopt.compiler import CompileOptions, compile_model
    from graphopt.errors import GraphoptError

    model = _model(3, 2, [2, 2], [2, 2], True, {"output_shape": output_shape}, np.random.default_rng(0))
    with pytest.raises(GraphoptError, match=message):
        compile_model(model, tmp_path / "art", CompileOptions(fallback=False))
