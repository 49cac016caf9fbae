"""OpenVINO's CPU plugin as an anchor engine for the latency benchmarks (the optional `bench` extra).

Why an anchor beside ONNX Runtime: OpenVINO's CPU plugin (built on oneDNN) is the fastest CPU
runtime graphopt is compared with (issue #20). It runs as a user would run it for latency:
f32, `PERFORMANCE_HINT=LATENCY`, the same thread count as every other engine in the table,
the model's inputs fixed to the benchmark's shapes, one infer request reused across calls.
Its outputs are checked against ONNX Runtime's like graphopt's.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np


def available() -> bool:
    """Whether OpenVINO is installed (`pip install -e .[bench]`), without importing it: its oneTBB,
    once loaded, stays in the process and stops oneDNN artifacts loaded after it."""
    return importlib.util.find_spec("openvino") is not None


def openvino_runner(path: Path, feeds: dict[str, np.ndarray], threads: int
                    ) -> tuple[Callable[[], float], Callable[[], dict[str, np.ndarray]]]:
    """(a timed call in seconds, a call returning the outputs by name) for the model at `path`."""
    import openvino as ov

    core = ov.Core()
    model = core.read_model(str(path))
    model.reshape({name: list(value.shape) for name, value in feeds.items()})
    config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32"}
    compiled = core.compile_model(model, "CPU", config)
    request = compiled.create_infer_request()
    names = [output.get_any_name() for output in compiled.outputs]

    def run() -> float:
        start = time.perf_counter()
        request.infer(feeds)
        return time.perf_counter() - start

    def outputs() -> dict[str, np.ndarray]:
        request.infer(feeds)
        return {name: np.array(request.get_output_tensor(i).data) for i, name in enumerate(names)}

    return run, outputs
