"""The rule of last resort: any kernel the specific rules leave, parallel and vectorized.

Design. Every block that can be inlined is (elementwise chains, broadcasts,
copies and pads fold into their consumer), then each remaining block gets:

* spatial only (elementwise, injective, transposes, concatenations): all loops
  fused into one, split into a vector of a length that divides it (odd full-length
  vectors are slow) under a parallel loop;
* with a reduction (pooling, depthwise windows, sums of a few tensors, means):
  the outer spatial loops fused and parallel, the inner loops left to LLVM's
  own vectorizer (see _schedule_reduction). A reduction with no spatial loop
  (a full sum) stays serial.

Whenever a primitive refuses, the rule declines the whole kernel (returns None):
an unscheduled kernel is slow but right, a half-scheduled one may not build.
"""

from __future__ import annotations

from tvm import s_tir, tirx
from tvm.s_tir.dlight.base import ScheduleRule
from tvm.target import Target

from graphopt.kernels.schedules import common

# Below this many output elements a kernel runs serially: waking threads costs more.
MIN_PARALLEL_ELEMENTS = 4096
KNOBS = ("min_parallel", "vectorize")


class Fallback(ScheduleRule):
    """Parallelizes and vectorizes whatever kernel no other rule took."""

    name = "fallback"

    def apply(self, func: tirx.PrimFunc, target: Target, _tunable: bool) -> s_tir.Schedule | None:
        return self.schedule(func, target, {})

    def schedule(self, func: tirx.PrimFunc, target: Target, knobs: dict) -> s_tir.Schedule | None:
        """Knobs (KNOBS): `min_parallel` output elements before threads are used,
        `vectorize` the spatial inner loop or leave it to LLVM."""
        started = common.start(func, target)
        if started is None:
            return None
        sch, infos = started
        lanes = common.vector_lanes(target) if knobs.get("vectorize", True) else 1
        min_parallel = int(knobs.get("min_parallel", MIN_PARALLEL_ELEMENTS))
        try:
            blocks = common.try_inline_all(sch, [b.block_rv for b in infos])
            for block in blocks:
                _schedule_block(sch, block, lanes, min_parallel)
        except Exception:  # noqa: BLE001  (declined: see the design note)
            return None
        return sch


def _loop_kinds(sch: s_tir.Schedule, block) -> tuple[list, list] | None:
    """(spatial loops, reduction loops) of a block whose loops map one-to-one onto
    its iterators; None for anything else (opaque or already transformed)."""
    loops = sch.get_loops(block)
    iters = sch.get(block).iter_vars
    if len(loops) != len(iters):
        return None
    spatial, reduce = [], []
    for loop, iv in zip(loops, iters):
        if iv.iter_type == tirx.IterVar.DataPar:
            spatial.append(loop)
        elif iv.iter_type == tirx.IterVar.CommReduce:
            reduce.append(loop)
        else:
            return None
    return spatial, reduce


def _schedule_block(sch: s_tir.Schedule, block, lanes: int, min_parallel: int) -> None:
    kinds = _loop_kinds(sch, block)
    if kinds is None:
        return
    spatial, reduce = kinds
    if not spatial:
        return
    if reduce:
        _schedule_reduction(sch, spatial, reduce, min_parallel)
    else:
        _schedule_spatial(sch, spatial, lanes, min_parallel)


def _total(sch: s_tir.Schedule, loops: list) -> int:
    size = 1
    for loop in loops:
        size *= common.extent(sch, loop) or 1
    return size


def _schedule_spatial(sch: s_tir.Schedule, loops: list, lanes: int, min_parallel: int) -> None:
    """The innermost loop keeps its own vector split: fusing it first would put
    div/mod into every lane's index, which LLVM scalarizes (10-20x slower)."""
    total = _total(sch, loops)
    outer = loops[:-1]
    if lanes > 1:
        common.vectorize_inner(sch, loops[-1], lanes)
    if outer and total >= min_parallel:
        sch.parallel(sch.fuse(*outer) if len(outer) > 1 else outer[0])


def _schedule_reduction(sch: s_tir.Schedule, spatial: list, reduce: list, min_parallel: int) -> None:
    """Outer spatial loops parallel, the rest as it was: LLVM already vectorizes
    the serial window loops well, while a local-accumulator split of the innermost
    spatial loop measured 3-6x slower here on pooling and on sums of two tensors.

    Threads are used when the work (outputs x reduced elements) reaches `min_parallel`, not the
    outputs alone: a softmax's row maximum and row sum over 4x128 rows of 128 have 512 outputs
    but 65,536 elements to read, and ran serially (17% of the encoder's time)."""
    outer = spatial[:-1] if len(spatial) > 1 else spatial
    if _total(sch, spatial) * _total(sch, reduce) >= min_parallel:
        sch.parallel(sch.fuse(*outer) if len(outer) > 1 else outer[0])
