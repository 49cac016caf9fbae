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
KNOBS = ("min_parallel", "vectorize")  # and, internal to symbolic kernels, "symbols_at" (see by_size.py)


class Fallback(ScheduleRule):
    """Parallelizes and vectorizes whatever kernel no other rule took."""

    name = "fallback"

    def apply(self, func: tirx.PrimFunc, target: Target, _tunable: bool) -> s_tir.Schedule | None:
        return self.schedule(func, target, {})

    def schedule(self, func: tirx.PrimFunc, target: Target, knobs: dict) -> s_tir.Schedule | None:
        """Knobs (KNOBS): `min_parallel` output elements before threads are used,
        `vectorize` the spatial inner loop or leave it to LLVM."""
        from graphopt.kernels.schedules import by_size, has_symbolic_shape

        min_parallel = int(knobs.get("min_parallel", MIN_PARALLEL_ELEMENTS))
        if "symbols_at" not in knobs and has_symbolic_shape(func):
            return by_size.serial_or_parallel(self, func, target, knobs, min_parallel)
        started = common.start(func, target)
        if started is None:
            return None
        sch, infos = started
        lanes = common.vector_lanes(target) if knobs.get("vectorize", True) else 1
        at = knobs.get("symbols_at")
        try:
            blocks = common.try_inline_all(sch, [b.block_rv for b in infos])
            for block in blocks:
                _schedule_block(sch, block, lanes, min_parallel, at)
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


def _schedule_block(sch: s_tir.Schedule, block, lanes: int, min_parallel: int, at: int | None) -> None:
    kinds = _loop_kinds(sch, block)
    if kinds is None:
        return
    spatial, reduce = kinds
    if not spatial:
        return
    if reduce:
        _schedule_reduction(sch, spatial, reduce, min_parallel, at)
    else:
        _schedule_spatial(sch, block, spatial, lanes, min_parallel, at)


def _total(sch: s_tir.Schedule, loops: list, at: int | None = None) -> int:
    """Iterations of the loops; a symbolic extent counts 1, or its value with every symbol at `at`."""
    from graphopt.kernels.schedules import symbolic

    size = 1
    for loop in loops:
        value = common.extent(sch, loop)
        if value is None and at is not None and symbolic.static_factor(sch.get(loop).extent) is not None:
            value = symbolic.at(sch.get(loop).extent, at)
        size *= value or 1
    return size


def _schedule_spatial(sch: s_tir.Schedule, block, loops: list, lanes: int, min_parallel: int,
                      at: int | None) -> None:
    """The innermost loop keeps its own vector split: fusing it first would put
    div/mod into every lane's index, which LLVM scalarizes (10-20x slower)."""
    total = _total(sch, loops, at)
    loops = _static_inner(sch, block, loops, lanes)
    outer = loops[:-1]
    if lanes > 1:
        common.vectorize_inner(sch, loops[-1], lanes)
    if outer and total >= min_parallel:
        sch.parallel(sch.fuse(*outer) if len(outer) > 1 else outer[0])


def _static_inner(sch: s_tir.Schedule, block, loops: list, lanes: int) -> list:
    """The loops with a static one moved innermost when the innermost is symbolic and holds no vector.

    Why: a range compile's transpose of k to [batch, heads, head_dim, seq] had `seq` innermost, not
    vectorizable (its extent has no static factor) and indexing the source by `(b*seq + s) // seq` and
    `% seq` per element (TVM does not simplify them): 2.5x the fixed compile's kernel at batch 1. With the
    head dim innermost the source reads are contiguous and the divisions move to the outer loop. A kernel
    whose innermost loop is a number (every fixed-shape kernel) is left as it was, and only a loop that walks
    a source's last dim with unit stride moves (a softmax's head axis would turn into strided vectors)."""
    if lanes < 2 or common.extent(sch, loops[-1]) is not None:
        return loops
    from graphopt.kernels.schedules import symbolic

    if common.pick_vector(symbolic.static_factor(sch.get(loops[-1]).extent), lanes) >= 2:
        return loops
    iter_vars = [iv.var for iv in sch.get(block).iter_vars]
    for position in range(len(loops) - 2, -1, -1):
        loop, size = loops[position], common.extent(sch, loops[position])
        if size is not None and size >= lanes and common.pick_vector(size, lanes) >= 2 \
                and _walks_a_last_dim(sch.get(block), iter_vars[position]):
            order = [other for other in loops if other != loop] + [loop]
            sch.reorder(*order)
            return order
    return loops


def _walks_a_last_dim(block, var) -> bool:
    """Whether some read of the block indexes its buffer's last dim as `var + (terms without var)`."""
    from tvm import sym as tvm_arith

    for read in block.reads:
        index = read.region[-1].min
        if var not in set(tirx.analysis.undefined_vars(index)):
            continue
        coefficients = tvm_arith.detect_linear_equation(index, [var])
        if len(coefficients) == 2 and isinstance(coefficients[0], tirx.IntImm) and int(coefficients[0].value) == 1:
            return True
    return False


def _schedule_reduction(sch: s_tir.Schedule, spatial: list, reduce: list, min_parallel: int,
                        at: int | None) -> None:
    """Outer spatial loops parallel, the rest as it was: LLVM already vectorizes
    the serial window loops well, while a local-accumulator split of the innermost
    spatial loop measured 3-6x slower here on pooling and on sums of two tensors.

    Threads are used when the work (outputs x reduced elements) reaches `min_parallel`, not the
    outputs alone: a softmax's row maximum and row sum over 4x128 rows of 128 have 512 outputs
    but 65,536 elements to read, and ran serially (17% of the encoder's time)."""
    outer = spatial[:-1] if len(spatial) > 1 else spatial
    if at is not None and len(spatial) > 1 and _total(sch, outer, at) < common.MIN_PARALLEL_CHUNKS:
        # a symbolic batch is no unit loop to drop: a layer norm's row sums over [batch, seq] threaded only
        # over batch (one chunk at batch 1) where a fixed batch-1 compile threads over the rows
        outer = spatial
    if _total(sch, spatial, at) * _total(sch, reduce, at) >= min_parallel:
        sch.parallel(sch.fuse(*outer) if len(outer) > 1 else outer[0])
