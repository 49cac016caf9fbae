"""The GPU side of benchmarks/gpu_check.py: one measurement per process, one JSON line out.

    python gpu_check_device.py PREPARED MODE [ARGS]
        memory NAME          device memory of one artifact's first run (cudaMemGetInfo deltas) + its outputs
        latency A B          A/B interleaved latency with CUDA events (warm-up, median of many)
        train NOSWAP SWAP    A/B step times, then swap-engine timelines (copy/compute overlap)
        torch                PyTorch eager on the same graph: caching-allocator peak + outputs

Each mode runs in a fresh process so that memory figures start from a fresh
CUDA context and nothing (PyTorch's pool, TVM's pooled allocator) carries over.
Imports numpy, the bundle (graphopt.runtime and TVM's runtime) and, in `torch`
mode only, torch. Never imports the compiler: the GPU machine has none.
"""

from __future__ import annotations

import ctypes
import importlib.util
import json
import sys
import time
from pathlib import Path

import numpy as np

WARMUP, ROUNDS = 10, 50
TRAIN_WARMUP, TRAIN_ROUNDS, TIMELINE_RUNS = 5, 30, 3


def activate(prepared: Path) -> dict:
    spec = importlib.util.spec_from_file_location("graphopt_bundle_run", prepared / "bundle" / "run.py")
    launcher = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(launcher)
    return launcher.activate(prepared / "bundle")


def reference(prepared: Path, part: str) -> tuple[dict, dict]:
    with np.load(prepared / "ref" / f"{part}.npz") as data:
        feeds = {k[3:]: data[k] for k in data.files if k.startswith("in:")}
        expected = {k[4:]: data[k] for k in data.files if k.startswith("out:")}
    return feeds, expected


def rel_error(actual: np.ndarray, expected: np.ndarray) -> float:
    scale = max(float(np.abs(expected).max()), 1e-12)
    return float(np.abs(actual.astype(np.float64) - expected.astype(np.float64)).max()) / scale


def worst_error(outputs: dict, expected: dict) -> tuple[float, str]:
    worst = max(((rel_error(outputs[k], v), k) for k, v in expected.items()), default=(float("inf"), "none"))
    return worst


class Cuda:
    """The few CUDA runtime calls the checks need, from the bundle's libcudart (TVM's)."""

    def __init__(self, prepared: Path) -> None:
        from graphopt.runtime.cuda_swap import ensure_tvm_cuda_runtime

        ensure_tvm_cuda_runtime()
        found = sorted((prepared / "bundle" / "site" / "graphopt" / "runtime").glob("libcudart.so.*"))
        self.rt = ctypes.CDLL(str(found[0]) if found else "libcudart.so")
        self.rt.cudaGetErrorString.restype = ctypes.c_char_p
        self._ok(self.rt.cudaFree(None), "cudaFree(0)")  # creates the primary context

    def _ok(self, status: int, what: str) -> None:
        if status != 0:
            raise RuntimeError(f"{what}: {self.rt.cudaGetErrorString(status).decode()}")

    def used_bytes(self) -> int:
        free, total = ctypes.c_size_t(), ctypes.c_size_t()
        self._ok(self.rt.cudaMemGetInfo(ctypes.byref(free), ctypes.byref(total)), "cudaMemGetInfo")
        return total.value - free.value

    def event(self) -> ctypes.c_void_p:
        ev = ctypes.c_void_p()
        self._ok(self.rt.cudaEventCreate(ctypes.byref(ev)), "cudaEventCreate")
        return ev

    def record(self, ev, stream) -> None:
        self._ok(self.rt.cudaEventRecord(ev, ctypes.c_void_p(stream)), "cudaEventRecord")

    def elapsed_ms(self, start, end) -> float:
        self._ok(self.rt.cudaEventSynchronize(end), "cudaEventSynchronize")
        ms = ctypes.c_float()
        self._ok(self.rt.cudaEventElapsedTime(ctypes.byref(ms), start, end), "cudaEventElapsedTime")
        return ms.value


class Loaded:
    """An artifact with its inputs already on the device: `call()` is just the VM."""

    def __init__(self, prepared: Path, name: str, feeds: dict) -> None:
        import tvm
        import tvm_ffi

        from graphopt.runtime import load
        from graphopt.runtime.signature import check_inputs

        self.session = load(prepared / "bundle" / "artifacts" / name)
        self.device = self.session.device
        arrays = check_inputs(self.session.inputs, feeds)
        self.args = [tvm.runtime.tensor(a, self.device) for a in arrays] + self.session.params
        self.stream = tvm_ffi.get_raw_stream(tvm_ffi.device(f"cuda:{self.device.index}")) or 0

    def call(self):
        return self.session.vm["main"](*self.args)

    def outputs(self, result) -> dict:
        return self.session._to_numpy(result)


def timed(cuda: Cuda, art: Loaded, start, end) -> float:
    cuda.record(start, art.stream)
    art.call()
    cuda.record(end, art.stream)
    return cuda.elapsed_ms(start, end)


def summary(times: list[float]) -> dict:
    arr = np.asarray(times)
    return {"median_ms": float(np.median(arr)), "p10_ms": float(np.percentile(arr, 10)),
            "p90_ms": float(np.percentile(arr, 90)), "n": len(times)}


def mode_memory(prepared: Path, name: str) -> dict:
    part = "train" if name.startswith("train") else "infer"
    feeds, expected = reference(prepared, part)
    cuda = Cuda(prepared)
    context = cuda.used_bytes()
    art = Loaded(prepared, name, feeds)
    loaded = cuda.used_bytes()  # + module, params, inputs
    result = art.call()
    art.device.sync()
    after = cuda.used_bytes()  # + what the first run allocated: arena/storages, outputs, workspace
    outputs = art.outputs(result)
    err, worst = worst_error(outputs, expected)
    out_bytes = sum(v.nbytes for v in outputs.values())
    return {"name": name, "context_bytes": context, "load_bytes": loaded - context, "run_bytes": after - loaded,
            "output_bytes": out_bytes, "run_bytes_less_outputs": after - loaded - out_bytes,
            "max_rel_error": err, "worst_output": worst}


def mode_latency(prepared: Path, a: str, b: str) -> dict:
    feeds, _ = reference(prepared, "infer")
    cuda = Cuda(prepared)
    arts = {n: Loaded(prepared, n, feeds) for n in (a, b)}
    start, end = cuda.event(), cuda.event()
    for _ in range(WARMUP):
        for art in arts.values():
            timed(cuda, art, start, end)
    times: dict[str, list[float]] = {a: [], b: []}
    for _ in range(ROUNDS):  # A B A B: drift hits both alike
        for n, art in arts.items():
            times[n].append(timed(cuda, art, start, end))
    return {n: summary(t) for n, t in times.items()}


def overlap(rows: list[dict]) -> dict:
    """A copy is hidden while compute has not yet reached the wait for it; copies the
    program never waited for cannot stall compute and are counted apart."""
    waited = [r for r in rows if r["wait_ms"] >= 0]
    copy_ms = sum(r["end_ms"] - r["start_ms"] for r in waited)
    hidden = sum(max(0.0, min(r["end_ms"], r["wait_ms"]) - r["start_ms"]) for r in waited)
    stall = sum(max(0.0, r["end_ms"] - r["wait_ms"]) for r in waited)
    return {"copies": len(rows), "waited_copies": len(waited), "copy_ms": copy_ms, "hidden_ms": hidden,
            "stall_ms": stall, "hidden_fraction": hidden / copy_ms if copy_ms > 0 else None,
            "unwaited_copy_ms": sum(r["end_ms"] - r["start_ms"] for r in rows if r["wait_ms"] < 0),
            "bytes": int(sum(r["bytes"] for r in rows))}


def mode_train(prepared: Path, noswap: str, swap: str) -> dict:
    from graphopt.runtime import cuda_swap

    feeds, expected = reference(prepared, "train")
    cuda = Cuda(prepared)
    arts = {n: Loaded(prepared, n, feeds) for n in (noswap, swap)}
    errors = {n: worst_error(art.outputs(art.call()), expected) for n, art in arts.items()}
    start, end = cuda.event(), cuda.event()
    for _ in range(TRAIN_WARMUP):
        for art in arts.values():
            timed(cuda, art, start, end)
    times: dict[str, list[float]] = {noswap: [], swap: []}
    for _ in range(TRAIN_ROUNDS):
        for n, art in arts.items():
            times[n].append(timed(cuda, art, start, end))
    engine = cuda_swap.engine()
    timelines = []
    if engine is not None:
        engine.set_timing(True)
        for _ in range(TIMELINE_RUNS):
            engine.begin_step()
            arts[swap].call()
            arts[swap].device.sync()
            timelines.append(engine.timeline())
        engine.set_timing(False)
    result = {n: summary(t) for n, t in times.items()}
    result["errors"] = {n: {"max_rel_error": e, "worst_output": w} for n, (e, w) in errors.items()}
    result["engine"] = engine.stats() if engine is not None else None
    result["overlap"] = [overlap(t) for t in timelines]
    result["timeline_first"] = timelines[0][:64] if timelines else []
    return result


def mode_torch(prepared: Path) -> dict:
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from gpu_check_torch import TorchGraph

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    feeds, expected = reference(prepared, "infer")
    graph = TorchGraph(prepared / "torch", "cuda")
    inputs = {k: torch.from_numpy(v).to("cuda") for k, v in feeds.items()}
    with torch.no_grad():
        for _ in range(3):  # warm-up: cuDNN picks algorithms, the pool fills
            graph(inputs)
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        outputs = graph(inputs)
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - base
        reserved = torch.cuda.max_memory_reserved()
        out_bytes = sum(v.numel() * v.element_size() for v in outputs.values())
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        times = []
        for _ in range(ROUNDS):
            start.record()
            graph(inputs)
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
    numpy_out = {k: v.cpu().numpy() for k, v in outputs.items()}
    err, worst = worst_error(numpy_out, expected)
    return {"torch": torch.__version__, "peak_allocated_bytes": peak, "peak_less_outputs": peak - out_bytes,
            "max_reserved_bytes": reserved, "max_rel_error": err, "worst_output": worst, **summary(times)}


def main(argv: list[str]) -> int:
    prepared, mode, rest = Path(argv[0]), argv[1], argv[2:]
    if mode != "torch":  # torch runs on its own: nothing of TVM in its process
        activate(prepared)
    handlers = {"memory": mode_memory, "latency": mode_latency, "train": mode_train, "torch": mode_torch}
    start = time.perf_counter()
    result = handlers[mode](prepared, *rest)
    result["seconds"] = round(time.perf_counter() - start, 2)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
