"""The GEMM rule prefetches its operands ahead in the reduction loop (graphopt.kernels.schedules.prefetch),
and builds keep the register tile on the stack so that the prefetch leaves it in registers
(graphopt.lowering.stack_tiles). Schedules are checked on explicit targets (whatever this host is); builds
and results on this host."""

from __future__ import annotations

import re

import numpy as np
import pytest
import tvm

from tests.kernels.test_schedules import _lowered
from tests.kernels.test_tiles_by_register_file import AVX2, AVX512, pointwise_zoo

_PREFETCH = re.compile(r"T\.prefetch\(T\.address_of\((\w+)\[(.*)\]\), 0, 3, 1\)")


def _kernels() -> dict[str, tvm.tirx.PrimFunc]:
    """pointwise_zoo's convolution kernels, unscheduled, keyed "KxK in->out" (window, channels)."""
    from tvm import tirx

    funcs = [f for gv, f in _lowered(pointwise_zoo(), schedules=False).functions_items()
             if isinstance(f, tirx.PrimFunc) and "conv" in gv.name_hint]
    return {_shape_key(f): f for f in funcs}


def _shape_key(func) -> str:
    weight = [p for p in func.params if len(p.ty.shape) == 4][1]
    c_out, c_in, kh, _ = (int(d) for d in weight.ty.shape)
    return f"{kh}x{kh} {c_in}->{c_out}"


def _prefetches(func, target: dict, knobs: dict | None = None) -> list[tuple[str, str]]:
    """(buffer, indices) of every prefetch in the kernel's GEMM schedule for `target`."""
    from graphopt.kernels.schedules import schedule_with

    sch = schedule_with(func, tvm.target.Target(target), "gemm", knobs or {})
    assert sch is not None
    return _PREFETCH.findall(sch.mod["main"].script())


@pytest.mark.parametrize(("target", "vectors"), [(AVX2, 2), (AVX512, 2)])
def test_direct_convolution_prefetches_every_weight_vector_and_two_data_rows(target, vectors):
    """The 3x3 direct convolution (64 -> 64 on 14x14) prefetches each vector of its tile's packed weights and the
    first and last row of its data, at the input channel 2 ahead (ceil(16 steps / 9 taps)), clamped to 63."""
    found = _prefetches(_kernels()["3x3 64->64"], target)
    weights = [indices for buffer, indices in found if buffer.startswith("w196_w")]  # packed at compile time
    data = [indices for buffer, indices in found if buffer == "pad_temp"]  # the padded copy (pad_copy)
    assert len(weights) == vectors and len(data) == 2 and len(found) == vectors + 2
    for indices in weights + data:
        assert "T.min(" in indices and "T.int64(2)" in indices and "T.int64(63)" in indices


def test_prefetch_knob_turns_it_off():
    assert _prefetches(_kernels()["3x3 64->64"], AVX512)
    assert not _prefetches(_kernels()["3x3 64->64"], AVX512, {"prefetch": False})


def _host_kernel(knobs: dict) -> tuple[tvm.runtime.Module, list[np.ndarray]]:
    from graphopt.kernels.schedules import schedule_with
    from graphopt.kernels.tuning import measure
    from graphopt.lowering.target import make_target

    target = make_target("llvm")
    func = schedule_with(_kernels()["1x1 32->64"], target, "gemm", knobs).mod["main"]
    bench = measure.KernelBench(func, target)
    return bench.build(func), bench.outputs(bench.build(func))


def test_prefetch_changes_no_result_bit():
    """A prefetch is a hint: the kernel computes exactly the same numbers with and without it."""
    _, with_prefetch = _host_kernel({})
    _, without = _host_kernel({"prefetch": False})
    for a, b in zip(with_prefetch, without):
        assert np.array_equal(a, b)


def _workspace_bytes(func, pipeline: str) -> list[int]:
    """Sizes of the heap workspaces the kernel's LLVM code asks TVM's runtime for (TVMBackendAllocWorkspace's
    size argument, in the calls TVM's codegen emits: (device type, device id, bytes, dtype code, dtype bits))."""
    from graphopt.lowering.target import make_target

    mod = tvm.IRModule({"main": func.with_attr("global_symbol", "main")})
    llvm_ir = tvm.compile(mod, target=make_target("llvm"), tir_pipeline=pipeline).mod.inspect_source("ll")
    return sorted(int(size) for size in re.findall(r"call[^\n]*i64 (\d+), i32 2, i32 32\)", llvm_ir))


def test_register_tile_lives_on_the_stack():
    """TVM's own pipeline takes the 1x1 convolution's register tile (14 x 32 floats, 1792 bytes) from the heap,
    as every buffer of 1 KB or more; graphopt's keeps local buffers up to 16 KB on the stack. The kernel's other
    workspace, its packed weights (global: packed once at compile time in an artifact), stays on the heap."""
    from graphopt.kernels.schedules import schedule_with
    from graphopt.kernels.schedules.common import vector_lanes
    from graphopt.lowering.stack_tiles import tir_pipeline
    from graphopt.lowering.target import make_target

    target = make_target("llvm")
    vectors = 32 // vector_lanes(target)  # 14 x 32 floats on AVX-512 (2 vectors) and AVX2 (4)
    func = schedule_with(_kernels()["1x1 32->64"], target, "gemm", {"rows": 14, "vectors": vectors}).mod["main"]
    heap = _workspace_bytes(func, "default")
    assert 1792 in heap
    assert _workspace_bytes(func, tir_pipeline(target)) == [size for size in heap if size != 1792]
