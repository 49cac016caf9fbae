"""Build one kernel, time it in this process, check it against the default.

Each candidate PrimFunc is compiled on its own (tvm.compile of a one-function
module) and run on the same random arguments as the default schedule. Inputs
and outputs are all of the PrimFunc's buffers (Relax's call_tir passes outputs
as trailing arguments), so comparing every buffer after one run compares the
outputs without having to know which ones they are. Timing is TVM's
time_evaluator: `number` runs per repeat sized to last at least MIN_REPEAT_MS,
the median of `repeats` repeats (the machine is shared: medians, not means).
Builds and correctness runs hold the node's shared lock, timings its exclusive one
(graphopt.cluster.node_lock; inside a tuning job, which holds the shared lock
throughout, the job trades it for the exclusive one): with several tuners on one
node, no kernel is timed beside another timing or any other tuner's work.
"""

from __future__ import annotations

import numpy as np
import tvm

from graphopt.cluster.node_lock import timing, working
from graphopt.kernels.schedules import symbolic
from graphopt.kernels.schedules.symbolic import NOMINAL

MIN_REPEAT_MS = 10
RTOL = 1e-4  # reductions reordered by a tile change round differently; relative to the output's scale

# `tune-kernels --cold-cache`: every timed run after this many bytes are written to flush the caches, median of
# COLD_REPEATS single runs. Why: in a model a kernel's weights arrive from memory, not from the L2 that a loop of
# the kernel alone keeps them in. On the 2-core AVX-512 VM resnet50's kernels timed alone summed to 34 ms while
# the model ran in 42; timed after a 64 MB flush they summed to 42.2, and a database tuned that way made the model
# 2.5-2.9% faster end to end where one timed warm gained 0-0.8% (two runs; densenet121: 0.6% either way). Not the
# default: squeezenet, whose weights stay in cache, got 3.3% slower tuned this way, 0.8% faster tuned warm
# (benchmarks/results/cold-tuning-2026-12-07.md).
COLD_FLUSH_BYTES = 64 << 20
COLD_REPEATS = 15
_cold = {"flush_bytes": 0}


def set_cold_cache(enabled: bool) -> None:
    """Time every candidate after a cache flush (process-wide, like the thread count)."""
    _cold["flush_bytes"] = COLD_FLUSH_BYTES if enabled else 0


def cold_cache_bytes() -> int:
    """Bytes flushed before each timed run; 0 when candidates are timed with warm caches."""
    return _cold["flush_bytes"]


def build(func: tvm.tirx.PrimFunc, target: tvm.target.Target) -> tvm.runtime.Module:
    """Machine code for one scheduled PrimFunc, callable as "main". A oneDNN kernel
    (graphopt.kernels.onednn) is linked into a shared library with the shim, as in an artifact."""
    from graphopt.kernels.onednn.extern import uses_onednn
    from graphopt.lowering.codegen import link_onednn
    from graphopt.lowering.stack_tiles import tir_pipeline

    mod = tvm.IRModule({"main": func.with_attr("global_symbol", "main")})
    executable = tvm.compile(mod, target=target, tir_pipeline=tir_pipeline(target))
    return _linked(link_onednn(executable)) if uses_onednn(mod) else executable.jit()


def _linked(executable) -> tvm.runtime.Module:
    """Exports (linking the oneDNN shim) into a temporary folder and loads the library."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory(prefix="graphopt-kernel-") as tmp:
        path = Path(tmp) / "kernel.so"
        executable.export_library(str(path))
        return tvm.runtime.load_module(str(path))  # dlopen keeps the mapping after the file is gone


class KernelBench:
    """Random arguments for one kernel, and the default schedule's results on them."""

    def __init__(self, func: tvm.tirx.PrimFunc, target: tvm.target.Target, repeats: int = 5, seed: int = 0,
                 symbol_value: int = NOMINAL):
        """`symbol_value`: the size every shape symbol takes in the random arguments of a symbolic kernel (a range
        compile's): the compiled kernel binds its symbols from the arguments' shapes, so one build runs at any."""
        self.target = target
        self.repeats = repeats
        self.device = tvm.cpu(0)
        rng = np.random.default_rng(seed)
        self.arrays = [_random(p.ty, rng, symbol_value) for p in func.params]

    def build(self, func: tvm.tirx.PrimFunc) -> tvm.runtime.Module:
        with working():
            return build(func, self.target)

    def outputs(self, lib: tvm.runtime.Module) -> list[np.ndarray]:
        """Every buffer after one run on fresh copies of the random arguments."""
        args = [tvm.runtime.tensor(a, self.device) for a in self.arrays]
        with working():
            lib["main"](*args)
        return [a.numpy() for a in args]

    def seconds(self, lib: tvm.runtime.Module) -> float:
        """Median seconds per run over `repeats` repeats of at least MIN_REPEAT_MS (with --cold-cache: of
        COLD_REPEATS single runs, each after a cache flush)."""
        args = [tvm.runtime.tensor(a, self.device) for a in self.arrays]
        if cold_cache_bytes():
            with timing():
                evaluator = lib.time_evaluator("main", self.device, number=1, repeat=COLD_REPEATS,
                                               cache_flush_bytes=cold_cache_bytes())
                return float(np.median(evaluator(*args).results))
        with timing():
            once = lib.time_evaluator("main", self.device, number=1, repeat=1)(*args).mean
            number = max(1, int(MIN_REPEAT_MS / 1e3 / max(once, 1e-9)))
            result = lib.time_evaluator("main", self.device, number=number, repeat=self.repeats)(*args)
        return float(np.median(result.results))


def per_run_part(func: tvm.tirx.PrimFunc, call) -> tvm.tirx.PrimFunc:
    """What of a scheduled kernel runs on every inference: the kernel without the
    weight-packing stages its rule marked, which the compile runs once instead
    (graphopt.lowering.prepack). `call` is one of the program's call_tir of the kernel:
    the same TVM pass the compile uses splits a copy of it, so tuning times exactly
    the kernel the artifact will run. The kernel itself when nothing is marked."""
    from tvm import relax

    params = [relax.Var(f"arg{i}", arg.ty) for i, arg in enumerate(call.args[1].fields)]
    out = call.ty_args[0]
    builder = relax.BlockBuilder()
    with builder.function("main", params):
        kernel = builder.add_func(func, "kernel")
        builder.emit_func_output(builder.emit(relax.call_tir(
            kernel, params, list(out.fields) if isinstance(out, relax.TupleType) else out)))
    split = relax.transform.SplitLayoutRewritePreproc()(builder.get())
    compute = [f for gvar, f in split.functions_items() if gvar.name_hint.endswith("_prepacked")]
    return compute[0] if compute else func


def same_outputs(reference: list[np.ndarray], candidate: list[np.ndarray]) -> str | None:
    """None when every buffer matches within RTOL of its scale, else why not."""
    for n, (ref, got) in enumerate(zip(reference, candidate)):
        if ref.shape != got.shape:
            return f"argument {n}: shape {got.shape} != {ref.shape}"
        if ref.dtype.kind == "f":
            scale = max(float(np.abs(ref).max(initial=0.0)), 1e-30)
            error = float(np.abs(ref.astype(np.float64) - got).max(initial=0.0)) / scale
            if not np.isfinite(got).all() and np.isfinite(ref).all() or error > RTOL:
                return f"argument {n}: relative error {error:.2e} > {RTOL:.0e}"
        elif not np.array_equal(ref, got):
            return f"argument {n}: values differ"
    return None


def _random(buffer_type, rng: np.random.Generator, symbol_value: int = NOMINAL) -> np.ndarray:
    shape = [symbolic.at(d, symbol_value) for d in buffer_type.shape]
    dtype = np.dtype(str(buffer_type.dtype))
    if dtype.kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    if dtype.kind == "b":
        return rng.integers(0, 2, shape).astype(dtype)
    return rng.integers(0, 4, shape).astype(dtype)  # small: often indices or shapes
