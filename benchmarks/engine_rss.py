"""Process memory of another engine on one ONNX model, in this fresh process: the counterpart of
benchmarks/runtime_rss.py (graphopt's runtime), printing the same line so one parser reads both.

    python benchmarks/engine_rss.py onnxruntime|openvino MODEL.onnx SIGNATURE_JSON

SIGNATURE_JSON is the artifact's input list (`[{"name", "shape", "dtype"}, ...]`, manifest order, which
is the ONNX graph's input order): each input is `default_rng(0).standard_normal(shape)` as runtime_rss.py
makes it, so every engine runs on the same arrays. Threads are each engine's default. RSS is read
from /proc/self/status: VmRSS after the engine's import, VmHWM (the peak) after load + 5 runs.
"""

from __future__ import annotations

import json
import sys

import numpy as np

RUNS = 5  # as runtime_rss.py


def kb(key: str) -> int:
    with open("/proc/self/status") as status:
        return int(next(line for line in status if line.startswith(key)).split()[1])


def feeds(signature: list[dict]) -> list[np.ndarray]:
    """The arrays runtime_rss.py feeds graphopt's session, in the same order."""
    return [np.random.default_rng(0).standard_normal(i["shape"]).astype(i["dtype"]) for i in signature]


def run_onnxruntime(model: str, arrays: list[np.ndarray]) -> None:
    import onnxruntime as ort

    imported = kb("VmRSS")
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    named = {i.name: a for i, a in zip(session.get_inputs(), arrays, strict=True)}
    for _ in range(RUNS):
        session.run(None, named)
    report("onnxruntime", imported)


def run_openvino(model: str, arrays: list[np.ndarray]) -> None:
    import openvino as ov

    imported = kb("VmRSS")
    core = ov.Core()
    network = core.read_model(model)
    network.reshape({port.any_name: list(a.shape) for port, a in zip(network.inputs, arrays, strict=True)})
    request = core.compile_model(network, "CPU").create_infer_request()
    for _ in range(RUNS):
        request.infer(arrays)
    report("openvino", imported)


def report(engine: str, imported_kb: int) -> None:
    """runtime_rss.py's line: whole MB (kB // 1024), import then peak."""
    print(f"{engine}: import {imported_kb // 1024} MB, peak after load + {RUNS} runs {kb('VmHWM') // 1024} MB")


ENGINES = {"onnxruntime": run_onnxruntime, "openvino": run_openvino}

if __name__ == "__main__":
    ENGINES[sys.argv[1]](sys.argv[2], feeds(json.loads(sys.argv[3])))
