"""Max and average pooling over two window axes, as depthwise windows without weights.

Design. A pooling block is `out[n, c, y, x] = reduce(data[n, c, y*s + ry*d, x*s + rx*d])`
over the window (ry, rx): the depthwise rule's shape less the weight. Its loops
(graphopt.kernels.schedules.depthwise.schedule_window_rows) put the channels in
parallel, build the padded channel (max pooling pads with -inf in a stage of its own,
graphopt.lowering.nan_semantics) inside the channel loop where it stays hot, and run
each tap as one update of a whole output row, which LLVM vectorizes when the row is
contiguous (stride 1). The fallback it replaces inlined the padding as a bounds check
per tap and stayed scalar: inception's 3x3 stride-1 max pools ran at 4 GB/s,
2.5-4x slower than these loops (benchmarks/results/pool-rule-2026-12-08.md).

With a stride the output row reads every s-th element and LLVM gathers it lane by lane;
measured here, that was faster where the window starts in padding (resnet50's first max
pool, 1.8x: the fallback checks both bounds per tap there) and slower for some unpadded
windows (squeezenet's and inception's first, 1.3-2x), so a strided window without padding
at its start keeps the fallback's loops by default; the tuner times both (`window_rows`).
1-D and 3-D pooling, global pooling and symbolic shapes are left to the fallback.
"""

from __future__ import annotations

from tvm import s_tir, tirx
from tvm.s_tir.dlight.base import ScheduleRule
from tvm.target import Target

from graphopt.kernels.schedules import common, gemm
from graphopt.kernels.schedules.depthwise import schedule_window_rows
from graphopt.kernels.schedules.fallback import Fallback

KNOBS = ("window_rows", "unroll")
WINDOW_AXES = 2


class Pool(ScheduleRule):
    """2-D pooling windows: parallel channels, row-vectorized taps over a padded channel."""

    name = "pool"

    def apply(self, func: tirx.PrimFunc, target: Target, _tunable: bool) -> s_tir.Schedule | None:
        return self.schedule(func, target, {})

    def schedule(self, func: tirx.PrimFunc, target: Target, knobs: dict) -> s_tir.Schedule | None:
        """Knobs (KNOBS): `window_rows` (the loops above; False: the fallback's) and `unroll` the
        taps. Declines anything but a fixed-shape 2-D pooling window."""
        from graphopt.kernels.schedules import has_symbolic_shape

        if has_symbolic_shape(func):
            return None
        started = common.start(func, target)
        if started is None:
            return None
        sch, infos = started
        main = gemm.single_reduction(sch, infos)
        strides = None if main is None else window_strides(sch.get(main))
        if strides is None:
            return None
        if not knobs.get("window_rows", strides[-1] == 1 or _pads_at_start(sch, main)):
            return Fallback().schedule(func, target, {})
        try:
            schedule_window_rows(sch, main, common.vector_lanes(target), {"unroll": knobs.get("unroll", True)})
        except Exception:  # noqa: BLE001  (a shape the primitives refuse: the fallback takes it)
            return None
        return sch


def window_strides(block: s_tir.SBlock) -> list[int] | None:
    """The strides of a 2-D pooling window `block` (one data read, channel-first, the last two
    axes indexed as output * stride + tap * dilation + offset), or None for any other block."""
    from tvm import sym as tvm_arith

    if block.init is None or len(block.writes) != 1:
        return None
    written = block.writes[0].source
    data = [r for r in block.reads if not r.source.same_as(written)]
    spatial = [iv for iv in block.iter_vars if iv.iter_type == tirx.IterVar.DataPar]
    taps = [iv for iv in block.iter_vars if iv.iter_type == tirx.IterVar.CommReduce]
    if len(data) != 1 or len(taps) != WINDOW_AXES or len(spatial) < 3:
        return None
    region = data[0].region
    if not _passes_through(region[:-WINDOW_AXES], [iv.var for iv in spatial[:-WINDOW_AXES]]):
        return None
    strides = []
    for axis in range(-WINDOW_AXES, 0):
        index = region[axis].min
        coefficients = tvm_arith.detect_linear_equation(index, [spatial[axis].var, taps[axis].var])
        if len(coefficients) != 3 or not all(isinstance(c, tirx.IntImm) for c in coefficients[:2]):
            return None
        if int(coefficients[0].value) < 1 or int(coefficients[1].value) < 1 or not _is_one(region[axis].extent):
            return None
        strides.append(int(coefficients[0].value))
    return strides


def _pads_at_start(sch: s_tir.Schedule, main) -> bool:
    """Whether a producer of `main` (its padding stage) reads the data at a negative offset along
    a window axis: the window starts in padding, where the fallback would check both bounds."""
    from tvm import sym as tvm_arith

    for producer in sch.get_producers(main):
        block = sch.get(producer)
        spatial = [iv.var for iv in block.iter_vars if iv.iter_type == tirx.IterVar.DataPar]
        for read in block.reads:
            for axis, var in zip(read.region[-WINDOW_AXES:], spatial[-WINDOW_AXES:]):
                coefficients = tvm_arith.detect_linear_equation(axis.min, [var])
                offset = coefficients[-1] if len(coefficients) == 2 else None
                if isinstance(offset, tirx.IntImm) and int(offset.value) < 0:
                    return True
    return False


def _passes_through(region, outer: list) -> bool:
    """Whether the data's leading axes are the outer output axes (batch, channel) in order, with
    unit axes (a batch of 1, dropped from the loops) at index 0 between them."""
    remaining = list(outer)
    for axis in region:
        if not _is_one(axis.extent):
            return False
        if remaining and axis.min.same_as(remaining[0]):
            remaining.pop(0)
        elif not (isinstance(axis.min, tirx.IntImm) and int(axis.min.value) == 0):
            return False
    return not remaining


def _is_one(extent) -> bool:
    return isinstance(extent, tirx.IntImm) and int(extent.value) == 1
