"""Per-call overhead: a tiny model (MatMul 1x16x16, Relu, Add) through graphopt's runtime and ONNX Runtime.

    python -m benchmarks.per_call [--json OUT.json]

With kernels this small, the time of a call is the engine's fixed cost (input checks and copies,
the call itself, output copies). Both engines at their default threads, each call timed from the
caller's side, interleaved in rounds (benchmarks/timing.py); graphopt's runtime is loaded in
runtime-only mode (the artifact is compiled in a child process first), as a service embeds it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper

from benchmarks.machine import cpu_name
from benchmarks.timing import interleaved_ratio


def tiny_model() -> onnx.ModelProto:
    w = numpy_helper.from_array(np.random.default_rng(0).random((16, 16), dtype=np.float32), "w")
    nodes = [h.make_node("MatMul", ["x", "w"], ["a"]), h.make_node("Relu", ["a"], ["b"]),
             h.make_node("Add", ["b", "x"], ["y"])]
    graph = h.make_graph(nodes, "tiny", [h.make_tensor_value_info("x", T.FLOAT, [1, 16])],
                         [h.make_tensor_value_info("y", T.FLOAT, [1, 16])], [w])
    return h.make_model(graph, opset_imports=[h.make_opsetid("", 17)], ir_version=10)


def _compile_in_child(model_path: Path, out: Path) -> None:
    subprocess.run([sys.executable, "-m", "graphopt.cli", "compile", str(model_path), "-o", str(out), "--quiet"],
                   check=True, stdout=subprocess.DEVNULL)


def _timer(call):
    def timed() -> float:
        began = time.perf_counter()
        call()
        return time.perf_counter() - began
    return timed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as scratch:
        model_path = Path(scratch) / "tiny.onnx"
        onnx.save(tiny_model(), model_path)
        _compile_in_child(model_path, Path(scratch) / "art")
        import onnxruntime as ort

        import graphopt.runtime as rt

        session = rt.load(Path(scratch) / "art")
        reference = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
        x = np.random.default_rng(1).random((1, 16), dtype=np.float32)
        np.testing.assert_allclose(session.run({"x": x})["y"], reference.run(None, {"x": x})[0], rtol=1e-5)
        result = interleaved_ratio(_timer(lambda: session.run({"x": x})), _timer(lambda: reference.run(None, {"x": x})),
                                   rounds=9, per_round=200, warmup=200)
        mode = rt.tvm_mode()
    row = {"graphopt_us": result["a_median"] * 1e6, "ort_us": result["b_median"] * 1e6,
           "ratio": result["ratio_median"], "ratio_iqr": result["ratio_iqr"], "runtime_mode": mode,
           "machine": f"{os.cpu_count()} CPUs ({cpu_name()})", "load_before": load_before,
           "load_after": os.getloadavg(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "command": "python -m benchmarks.per_call " + " ".join(argv or [])}
    print(f"graphopt {row['graphopt_us']:.1f} us, ONNX Runtime {row['ort_us']:.1f} us: "
          f"{row['ratio']:.2f}x (IQR {row['ratio_iqr']:.2f}), {mode}, load {load_before[0]:.2f}")
    if args.json:
        args.json.write_text(json.dumps(row, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
