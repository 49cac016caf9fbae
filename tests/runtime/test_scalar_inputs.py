"""0-d (scalar) inputs reach the program as 0-d tensors: numpy's ascontiguousarray makes
them 1-d, and the VM then refused the call ("expect Tensor with ndim 0 but get 1")."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper

from graphopt.runtime.signature import check_inputs


def test_check_inputs_keeps_a_scalar_0d():
    (value,) = check_inputs([{"name": "s", "shape": [], "dtype": "float32"}], {"s": np.float32(2.5)})
    assert value.shape == () and value.flags.c_contiguous


def test_model_with_a_scalar_input_runs(tmp_path):
    from graphopt.compiler import CompileOptions, compile_model
    from graphopt.runtime import load

    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "s"], ["y"])], "scale",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4]),
         helper.make_tensor_value_info("s", TensorProto.FLOAT, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])])
    model = helper.make_model(graph, ir_version=10, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    compile_model(model, tmp_path / "art", CompileOptions(time_limit=1.0))
    x = np.arange(4, dtype=np.float32)
    out = load(tmp_path / "art").run({"x": x, "s": np.array(3.0, dtype=np.float32)})
    np.testing.assert_allclose(out["y"], x * 3.0)
    # and in a process that never imports the compiler (the runtime's own tensor path)
    code = ("import sys, numpy as np; from graphopt.runtime import load; "
            "feeds = {'x': np.arange(4, dtype=np.float32), 's': np.array(3.0, dtype=np.float32)}; "
            f"y = load({str(tmp_path / 'art')!r}).run(feeds)['y']; "
            "assert 'tvm' not in sys.modules; print(' '.join(str(v) for v in y))")
    printed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert printed.split() == ["0.0", "3.0", "6.0", "9.0"]
