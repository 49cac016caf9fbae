"""The runtime is what services embed: it must not drag in the compiler side."""

import json
import subprocess
import sys

FORBIDDEN = ("onnx", "onnxruntime", "ortools", "onnxslim", "networkx", "graphopt.compiler",
             "graphopt.lowering", "graphopt.transforms", "graphopt.kernels", "graphopt.analysis",
             "graphopt.frontend", "graphopt.passes",
             "cryptography",  # only when a signature is checked (graphopt.signing)
             "tvm")  # TVM's Python package loads its compiler library: the runtime uses tvm_ffi (tvm_rt.py)


def test_importing_the_runtime_loads_no_compiler_modules():
    code = ("import sys, json, graphopt.runtime; "
            "print(json.dumps(sorted(m for m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = set(json.loads(out))
    offending = sorted(m for m in loaded if any(m == f or m.startswith(f + ".") for f in FORBIDDEN))
    assert offending == []
