"""The OpenVINO anchor of benchmarks.latency runs the model a user would run, and agrees with ORT."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from benchmarks.openvino_engine import available


@pytest.mark.skipif(not available(), reason="OpenVINO is the optional bench extra (pip install -e .[bench])")
def test_openvino_runner_times_the_model_and_matches_onnx_runtime(tmp_path):
    import onnxruntime as ort

    from benchmarks.openvino_engine import openvino_runner

    weight = numpy_helper.from_array(np.random.default_rng(0).standard_normal((8, 4)).astype(np.float32), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Relu", ["h"], ["y"])],
                              "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])], [weight])
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, ir_version=10, opset_imports=[helper.make_opsetid("", 17)]), path)
    feeds = {"x": np.random.default_rng(1).standard_normal((3, 8)).astype(np.float32)}
    run, outputs = openvino_runner(path, feeds, threads=1)
    assert run() > 0
    expected = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    np.testing.assert_allclose(outputs()["y"], expected, rtol=1e-5, atol=1e-6)
