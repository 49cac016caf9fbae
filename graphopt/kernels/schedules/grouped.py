"""Grouped convolutions (group > 1, not depthwise) as one small GEMM per group.

Design. TOPI's group_conv2d reads its data at `f // F * C + c`, with f the output
channel, F the output channels per group and C the input channels per group: the
output channel mixes "which group" (shared by data, weight and output) with
"which channel in the group" (weight and output only), so the GEMM rule sees no
J axis and the kernel used to fall back to its naive loops with only the outer
ones parallel (shufflenet: 2x slower than TVM's stock build). Splitting f into
(f // F, f % F) with transform_block_layout turns it into a batched GEMM,
C[g, I, J] += A[g, I, K] * B[g, J, K], which the GEMM rule then schedules as it
does any batched matmul (register tiles, packing, fused epilogue). Depthwise
convolutions (F = C = 1) have no such split and go to the depthwise rule.
"""

from __future__ import annotations

from tvm import s_tir, tirx
from tvm.s_tir.dlight.base import ScheduleRule
from tvm.target import Target

from graphopt.kernels.schedules import common, gemm


def group_size(block: s_tir.SBlock) -> tuple[int, int] | None:
    """(position of the output-channel iterator, channels per group F) when a read
    index divides a spatial iterator by a constant F that splits it evenly."""
    positions = {iv.var: n for n, iv in enumerate(block.iter_vars) if iv.iter_type == tirx.IterVar.DataPar}
    found = []

    def visit(node):  # binary arithmetic only: indices are sums of products and divisions
        if isinstance(node, tirx.FloorDiv) and isinstance(node.b, tirx.IntImm):
            for var, position in positions.items():
                if node.a.same_as(var):
                    found.append((position, int(node.b.value)))
        for child in (getattr(node, "a", None), getattr(node, "b", None)):
            if isinstance(child, tirx.Expr):
                visit(child)

    for access in block.reads:
        for r in access.region:
            visit(r.min)
    for position, size in found:
        extent = block.iter_vars[position].dom.extent
        if isinstance(extent, tirx.IntImm) and size > 1 and extent.value > size and extent.value % size == 0:
            return position, size
    return None


def split_groups(sch: s_tir.Schedule, block) -> bool:
    """Splits the output-channel iterator of a grouped convolution into (group,
    channel in group); False when the block is not one."""
    found = group_size(sch.get(block))
    if found is None:
        return False
    position, size = found

    def split(*iters):
        head, f, tail = iters[:position], iters[position], iters[position + 1:]
        return (*head, f // size, f % size, *tail)

    sch.transform_block_layout(block, tirx.IndexMap.from_func(split, ndim=len(sch.get(block).iter_vars)))
    return True


class GroupedConv(ScheduleRule):
    """Grouped convolutions: split by group, then scheduled by the GEMM rule."""

    name = "grouped"

    def apply(self, func: tirx.PrimFunc, target: Target, _tunable: bool) -> s_tir.Schedule | None:
        return self.schedule(func, target, {})

    def schedule(self, func: tirx.PrimFunc, target: Target, knobs: dict) -> s_tir.Schedule | None:
        """Knobs are the GEMM rule's (gemm.KNOBS): each group is one batch of its GEMM."""
        started = common.start(func, target)
        if started is None:
            return None
        sch, infos = started
        main = gemm.single_reduction(sch, infos)
        try:
            if main is None or not split_groups(sch, main):
                return None
        except Exception:  # noqa: BLE001  (the split is refused: not this rule's kernel)
            return None
        return sch if gemm.try_schedule(sch, main, target, knobs) else None
