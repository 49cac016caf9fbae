"""Per-call cost of oneDNN kernels: a 5-kernel model (tests/kernels/onednn_models.conv_gemm_model) with
TVM kernels, with every kernel on oneDNN (plain, then blocked layouts), and in ONNX Runtime.

    python -m benchmarks.onednn_per_call

Interleaved: 7 rounds, each engine 50 warm calls then the median of 200; prints JSON with the medians in
microseconds and the load average. The difference to TVM over the 5 kernels is what a oneDNN call costs
beyond its arithmetic here (the kernels are tiny). Set GRAPHOPT_ONEDNN_ROOT to time another oneDNN build.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def runners(work: Path, x: np.ndarray) -> dict:
    import onnxruntime as ort

    from graphopt.compiler import compile_model
    from graphopt.options import CompileOptions
    from graphopt.runtime import load
    from tests.kernels.onednn_models import conv_gemm_model, onednn_db, write

    path = write(conv_gemm_model(), work)
    onednn_db(path, work / "db_plain", "plain")
    onednn_db(path, work / "db_blocked", "blocked")
    found = {}
    for name, db in (("tvm", None), ("onednn_plain", work / "db_plain"), ("onednn_blocked", work / "db_blocked")):
        compile_model(path, work / name, CompileOptions(time_limit=1.0, tuning_db=db))
        session = load(work / name)
        found[name] = lambda s=session: s.run_timed({"x": x}).seconds
    options = ort.SessionOptions()
    options.intra_op_num_threads = len(os.sched_getaffinity(0))
    reference = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def ort_run() -> float:
        start = time.perf_counter()
        reference.run(None, {"x": x})
        return time.perf_counter() - start

    found["ort"] = ort_run
    return found


def main() -> int:
    x = np.random.default_rng(1).standard_normal((1, 8, 12, 12)).astype(np.float32)
    with tempfile.TemporaryDirectory(prefix="graphopt-percall-") as tmp:
        engines = runners(Path(tmp), x)
        samples: dict[str, list[float]] = {name: [] for name in engines}
        for _ in range(7):
            for name, run in engines.items():
                for _ in range(50):
                    run()
                samples[name].append(statistics.median(run() for _ in range(200)))
    print(json.dumps({"load_average": os.getloadavg(), "onednn_root": os.environ.get("GRAPHOPT_ONEDNN_ROOT", "sys.prefix"),
                      "median_us": {n: round(statistics.median(v) * 1e6, 1) for n, v in samples.items()}}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
