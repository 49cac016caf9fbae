"""An embedded runtime loads TVM's runtime library only, never the ~250 MB compiler (issue #19).

Measured here (x86-64, CPython 3.11, TVM 0.27): a bare interpreter 10 MB;
`import tvm_ffi` (numpy, ml_dtypes) 49 MB; `import graphopt.runtime` 31 MB;
import + load + 5 runs of the CNN below peaks at ~53 MB VmHWM. With `import tvm`
the same peaked at ~197 MB (the compiler library alone ~145 MB). 80 MB leaves
~50% headroom for allocator and library-version noise while still failing at
once if the compiler (or TVM's Python IR packages, +35 MB) gets loaded.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from graphopt.compiler import CompileOptions, compile_model

PEAK_LIMIT_MB = 80


def _cnn() -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(0, 0.5, (8, 3, 3, 3)).astype(np.float32), "w1"),
             numpy_helper.from_array(rng.normal(0, 0.5, (16, 8, 3, 3)).astype(np.float32), "w2"),
             numpy_helper.from_array(rng.normal(0, 0.5, (16, 10)).astype(np.float32), "fc")]
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Conv", ["p1", "w2"], ["c2"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c2"], ["r2"]),
             helper.make_node("GlobalAveragePool", ["r2"], ["g"]),
             helper.make_node("Flatten", ["g"], ["f"]),
             helper.make_node("MatMul", ["f", "fc"], ["y"])]
    graph = helper.make_graph(nodes, "cnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 32])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], inits)
    return helper.make_model(graph, ir_version=10, opset_imports=[helper.make_opsetid("", 17)])


@pytest.fixture(scope="module")
def cnn_artifact(tmp_path_factory) -> tuple[Path, Path]:
    work = tmp_path_factory.mktemp("rss")
    onnx.save(_cnn(), str(work / "cnn.onnx"))
    compile_model(work / "cnn.onnx", work / "art", CompileOptions(time_limit=1.0))
    return work / "cnn.onnx", work / "art"


RUN = """
import json, sys
import numpy as np
import graphopt.runtime
sess = graphopt.runtime.load(sys.argv[1])
x = np.random.default_rng(0).random((1, 3, 32, 32)).astype(np.float32)
for _ in range(5):
    y = sess.run({"x": x})["y"]
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
maps = open("/proc/self/maps").read()
np.save(sys.argv[2], y)
print(json.dumps({"hwm_mb": int(status["VmHWM"].split()[0]) / 1024, "mode": sess.tvm_mode,
                  "tvm_imported": "tvm" in sys.modules,
                  "libs": sorted({l.split()[-1].rsplit("/", 1)[-1] for l in maps.splitlines() if "libtvm" in l})}))
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
def test_embedded_runtime_maps_no_compiler_and_stays_small(cnn_artifact, tmp_path):
    model, art = cnn_artifact
    done = subprocess.run([sys.executable, "-c", RUN, str(art), str(tmp_path / "y.npy")],
                          capture_output=True, text=True, check=True)
    info = json.loads(done.stdout.strip().splitlines()[-1])
    assert info["mode"] == "runtime-only" and not info["tvm_imported"]
    assert "libtvm_runtime.so" in info["libs"]
    assert not [lib for lib in info["libs"] if "compiler" in lib or lib == "libtvm.so"], info["libs"]
    assert info["hwm_mb"] <= PEAK_LIMIT_MB, info
    import onnxruntime as ort

    x = np.random.default_rng(0).random((1, 3, 32, 32)).astype(np.float32)
    expected = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), expected, rtol=1e-4, atol=1e-4)


def test_runtime_first_then_compile_in_one_process(cnn_artifact, tmp_path):
    """Runtime-only first, then the compiler imports full TVM: both sessions keep running."""
    model, art = cnn_artifact
    code = f"""
import numpy as np
import graphopt.runtime
x = np.random.default_rng(0).random((1, 3, 32, 32)).astype(np.float32)
first = graphopt.runtime.load({str(art)!r})
assert first.tvm_mode == "runtime-only", first.tvm_mode
y1 = first.run({{"x": x}})["y"]
from graphopt.compiler import CompileOptions, compile_model
compile_model({str(model)!r}, {str(tmp_path / "art2")!r}, CompileOptions(time_limit=1.0))
second = graphopt.runtime.load({str(tmp_path / "art2")!r})
assert second.tvm_mode == "full", second.tvm_mode
np.testing.assert_allclose(second.run({{"x": x}})["y"], y1, rtol=1e-5, atol=1e-5)
np.testing.assert_allclose(first.run({{"x": x}})["y"], y1, rtol=0, atol=0)
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-2000:]
