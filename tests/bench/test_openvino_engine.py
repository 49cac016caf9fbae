"""The OpenVINO anchor of benchmarks.latency runs the model a user would run, and agrees with ORT."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from benchmarks.openvino_engine import available

RUNNER = """
import sys, numpy as np
from benchmarks.openvino_engine import openvino_runner
feeds = dict(np.load(sys.argv[2]))
run, outputs = openvino_runner(sys.argv[1], feeds, threads=1)
assert run() > 0
np.save(sys.argv[3], outputs()["y"])
"""


@pytest.mark.skipif(not available(), reason="OpenVINO is the optional bench extra (pip install -e .[bench])")
def test_openvino_runner_times_the_model_and_matches_onnx_runtime(tmp_path):
    """In a subprocess: OpenVINO's oneTBB, once loaded, would stay in the test process and stop later
    tests' oneDNN artifacts (tests/kernels/test_onednn.py shows the error a user then gets)."""
    import onnxruntime as ort

    weight = numpy_helper.from_array(np.random.default_rng(0).standard_normal((8, 4)).astype(np.float32), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Relu", ["h"], ["y"])],
                              "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])], [weight])
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, ir_version=10, opset_imports=[helper.make_opsetid("", 17)]), path)
    feeds = {"x": np.random.default_rng(1).standard_normal((3, 8)).astype(np.float32)}
    np.savez(tmp_path / "feeds.npz", **feeds)
    subprocess.run([sys.executable, "-c", RUNNER, str(path), str(tmp_path / "feeds.npz"), str(tmp_path / "y.npy")],
                   check=True, timeout=300, cwd=Path(__file__).parents[2])
    expected = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), expected, rtol=1e-5, atol=1e-6)
