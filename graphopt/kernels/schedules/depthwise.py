"""Depthwise convolutions (one input channel per output channel) as direct windows.

Design. A depthwise convolution is C[n, c, y, x] += A[n, c, y*s+ry, x*s+rx] *
B[c, ry, rx]: the channel indexes all three tensors (S), the positions only the
data and the output (I), the window only the data and the weight (K), and there
is no J. A GEMM over im2col has a 1-row tile here and copies the data K times
(measured 10-30x slower than the naive loops), and the fallback used to inline
the padding into the window (a bounds check per tap, no vectors). So instead:

  * loops (n, c) fused and parallel: every channel is independent work;
  * the padded channel is built inside that loop (compute_at), so it is hot in
    L1 and padding costs one pass over the data, not a check per tap;
  * loop order y, (ry, rx), x: the window taps outside, the output row innermost,
    so each tap is one contiguous (strided when s > 1) row update that LLVM
    vectorizes; the window loops are unrolled (a 3x3 window is 9 row updates);
  * the epilogue (bias, activation) runs per output row while the row is in L1.

Whenever a primitive refuses, the rule declines (the fallback takes the kernel).
"""

from __future__ import annotations

from tvm import s_tir, tirx
from tvm.s_tir.dlight.base import ScheduleRule
from tvm.target import Target

from graphopt.kernels.schedules import common, epilogue, gemm

# A window larger than this many taps is left rolled (unrolling it bloats code).
MAX_UNROLLED_TAPS = 49


def is_depthwise(block: s_tir.SBlock) -> bool:
    """True for a block with channel (S), position (I) and window (K) iterators
    only: a depthwise convolution (or a per-channel correlation of that form)."""
    classified = gemm.classify(block)
    if classified is None:
        return False
    kinds = {t.kind for t in classified[0].values()} - {gemm.IterKind.kIter_T}
    return kinds == {gemm.S_, gemm.I_, gemm.K_}


class Depthwise(ScheduleRule):
    """Depthwise convolutions: parallel channels, row-vectorized window taps."""

    name = "depthwise"

    def apply(self, func: tirx.PrimFunc, target: Target, _tunable: bool) -> s_tir.Schedule | None:
        return self.schedule(func, target, {})

    def schedule(self, func: tirx.PrimFunc, target: Target, knobs: dict) -> s_tir.Schedule | None:
        """Knobs (KNOBS): `unroll` the window taps or not, `pad_at_channel` (build the
        padded channel inside the channel loop) or pad as a stage of its own."""
        started = common.start(func, target)
        if started is None:
            return None
        sch, infos = started
        main = gemm.single_reduction(sch, infos)
        if main is None or not is_depthwise(sch.get(main)):
            return None
        try:
            schedule_window_rows(sch, main, common.vector_lanes(target), knobs)
        except Exception:  # noqa: BLE001  (a shape the primitives refuse: the fallback takes it)
            return None
        return sch


def _split_loops(sch: s_tir.Schedule, main) -> tuple[list, list]:
    """(spatial loops, reduction loops) of `main`, which map one-to-one onto its
    iterators (a freshly legalized kernel)."""
    loops = sch.get_loops(main)
    iters = sch.get(main).iter_vars
    if len(loops) != len(iters):
        raise ValueError("loops do not match iterators")
    spatial = [lp for lp, iv in zip(loops, iters) if iv.iter_type == tirx.IterVar.DataPar]
    reduce = [lp for lp, iv in zip(loops, iters) if iv.iter_type == tirx.IterVar.CommReduce]
    return spatial, reduce


KNOBS = ("unroll", "pad_at_channel")


def schedule_window_rows(sch: s_tir.Schedule, main, lanes: int, knobs: dict) -> None:
    """The design note's loops for a window reduction `main` over (..., channel, row, column) outputs:
    channels parallel, the padded channel built inside their loop, the taps outside the output row.
    Also the pooling rule's (graphopt.kernels.schedules.pool): a pooling window is a depthwise one
    without weights."""
    spatial, reduce = _split_loops(sch, main)
    if len(spatial) < 3:
        raise ValueError("expects (..., channel, row, column) outputs")
    *outer, row, column = spatial
    sch.reorder(*outer, row, *reduce, column)
    channel = sch.fuse(*outer) if len(outer) > 1 else outer[0]
    sch.parallel(channel)
    taps = 1
    for loop in reduce:
        taps *= common.extent(sch, loop) or MAX_UNROLLED_TAPS + 1
    if knobs.get("unroll", taps <= MAX_UNROLLED_TAPS):
        for loop in reduce:
            sch.unroll(loop)
    _epilogue_per_row(sch, main, row, lanes)
    for producer in sch.get_producers(main):
        if knobs.get("pad_at_channel", True):
            sch.compute_at(producer, channel, preserve_unit_loops=True)
            _vectorize_rows(sch, producer, lanes)
        else:
            _parallel_stage(sch, producer, lanes)
    sch.decompose_reduction(main, reduce[0])


def _epilogue_per_row(sch: s_tir.Schedule, main, row, lanes: int) -> None:
    """Folds the chain after the convolution into one block and runs it under the
    row loop, once the row's taps are summed."""
    first = epilogue.fold_epilogue(sch, main)
    if first is None:
        return
    while (rest := epilogue.fold_epilogue(sch, first)) is not None:
        sch.reverse_compute_inline(rest)
    sch.reverse_compute_at(first, row, preserve_unit_loops=True)
    _vectorize_rows(sch, first, lanes)


def _vectorize_rows(sch: s_tir.Schedule, block, lanes: int) -> None:
    """Vectorizes a block's innermost loop when a whole vector divides it."""
    loops = sch.get_loops(block)
    if loops:
        common.vectorize_inner(sch, loops[-1], lanes)


def _parallel_stage(sch: s_tir.Schedule, block, lanes: int) -> None:
    """A padding stage left on its own: parallel outer loops, vector rows."""
    loops = sch.get_loops(block)
    if len(loops) >= 2:
        common.parallel_outer(sch, loops[:-1], common.extent(sch, loops[-1]) or 1)
    _vectorize_rows(sch, block, lanes)
