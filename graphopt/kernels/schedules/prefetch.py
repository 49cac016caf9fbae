"""Software prefetch of a GEMM tile's operands a few reduction steps ahead (step 5 of gemm.py's design).

Why: in a model a convolution meets its weights in memory, not in cache (resnet50 reads ~100 MB of
them per inference), and its input comes from the previous kernel. Timed warm, one by one, resnet50's
kernels add up to 34 ms; in the model they took 44 ms, every convolution 1.3-1.9x its warm time. The
hardware prefetchers do not run far enough ahead of the register tile's reduction loop, whose every
step reads two new weight lines and a row of the data: the loads then wait on memory while the
multiply-adds stall. A prefetch of the same operands some steps ahead, issued in the reduction loop,
overlaps the memory traffic with the arithmetic (oneDNN's kernels do the same).

What: in the innermost reduction loop, before the tile, one prefetch per vector of the vector
operand (the packed weights of a convolution) and two for the broadcast operand (its first and last
row: a direct convolution's row of positions often straddles two lines), at the outermost reduction
iterator advanced so that about STEPS_AHEAD innermost steps lie between the prefetch and the load
(clamped to the last step, so no address leaves the operand). An operand packed tile by tile
(pack_in_tile) is in cache already and gets none; prefetching the next tile's source while packing
(the activation runs it copies) measured no gain end to end (resnet50 0.99x, densenet121 1.01x).

Measured end to end (benchmarks.ab_artifacts, untuned, AVX-512 VM): resnet50 0.93x and densenet121
0.91x the time without; with the data row prefetched in 1x1 convolutions only: resnet50 0.95x;
16 steps ahead beat 8, 32 and 64, and prefetcht0 beat prefetcht1 (benchmarks/results/ab-prefetch-2026-12-07.md).

A prefetch is a call LLVM cannot see through: it would keep the register tile (an accumulator
buffer above 1 KB, which TVM allocates on the heap) from living in registers. The tile is therefore
kept on the stack (graphopt.lowering.stack_tiles), where LLVM knows nothing else reaches it.
"""

from __future__ import annotations

from tvm import s_tir, tirx
from tvm.ir.expr import Expr, TensorLoad

from graphopt.kernels.schedules import symbolic
from graphopt.kernels.schedules.in_place_rows import substitute

# Innermost reduction steps between a prefetch and the load it is for: about 2 KB of packed weights
# (32 lanes) ahead. Measured on resnet50's 1024->256 1x1 convolution after a cache flush (AVX-512 VM):
# 0.536 ms without, 0.467 ms with both operands prefetched 16 steps ahead; 0.34 ms warm either way.
STEPS_AHEAD = 16
# LLVM's locality hint 3: prefetcht0, into every cache level
_READ, _KEEP_IN_L1, _DATA = 0, 3, 1


def prefetch_operands(sch: s_tir.Schedule, main, reductions: list, tile_loops: list) -> bool:
    """Inserts the prefetches into the innermost of `reductions` (the register tile's reduction loops,
    outermost first; `tile_loops` = rows, vectors, lanes). False, the schedule unchanged, when the
    update block is not the plain `acc += a * b` of global operands this understands."""
    inner_loop = sch.get(reductions[-1])
    realize = sch.get(tile_loops[-1]).body
    if not isinstance(realize, s_tir.SBlockRealize):
        return False
    operands = _global_loads(realize.block.body.value)
    if operands is None or len(operands) != 2:
        return False
    bound = {iv.var: value for iv, value in zip(realize.block.iter_vars, realize.iter_values)}
    ahead = _ahead(sch, reductions)
    if ahead is None:
        return False
    rows, vectors, lanes = (sch.get(loop) for loop in tile_loops)
    calls = []
    for load in operands:
        indices = [_bind(index, bound) for index in load.indices]
        indices = [None if index is None else substitute(index, *ahead) for index in indices]
        if any(index is None for index in indices):
            return False  # an index this small rewriter does not know: no prefetch, the schedule as it was
        is_vector = any(_mentions(index, lanes.loop_var) for index in indices)
        spots = ([{vectors.loop_var: j} for j in range(int(vectors.extent))] if is_vector
                 else [{rows.loop_var: 0}, {rows.loop_var: int(rows.extent) - 1}])
        for spot in spots:
            at = {rows.loop_var: 0, vectors.loop_var: 0, lanes.loop_var: 0, **spot}
            calls.append(_prefetch(load.source, [_zero(index, at) for index in indices]))
    if any(call is None for call in calls):
        return False
    body = tirx.SeqStmt([*calls, inner_loop.body])
    new_loop = tirx.For(inner_loop.loop_var, inner_loop.min, inner_loop.extent, inner_loop.kind, body,
                        inner_loop.thread_binding, inner_loop.annotations, inner_loop.step)
    sch.state.replace(sch.get_sref(reductions[-1]), new_loop, {})
    return True


def _global_loads(value) -> list | None:
    """The loads of non-local buffers in the update's value (the tile's own accumulator excluded); None when
    the value holds anything but loads, sums, products and casts (a guarded read of padding...)."""
    if isinstance(value, TensorLoad):
        return [] if value.source.scope() == "local" else [value]
    if isinstance(value, tirx.Cast):
        return _global_loads(value.value)
    if isinstance(value, (tirx.Add, tirx.Mul)):
        a, b = _global_loads(value.a), _global_loads(value.b)
        return None if a is None or b is None else a + b
    return None


def _ahead(sch: s_tir.Schedule, reductions: list) -> tuple | None:
    """(outermost reduction variable, its value some STEPS_AHEAD innermost steps later, clamped)."""
    extents = [sch.get(loop).extent for loop in reductions]
    if not all(symbolic.is_static(extent) for extent in extents):
        return None
    inner = 1
    for extent in extents[1:]:
        inner *= int(extent)
    outer = sch.get(reductions[0]).loop_var
    step = max(1, -(-STEPS_AHEAD // inner))
    last = tirx.const(int(extents[0]) - 1, outer.ty.dtype)
    return outer, tirx.min(outer + tirx.const(step, outer.ty.dtype), last)


def _bind(index, bound: dict):
    """`index` with every variable of `bound` replaced by its value (a block iterator by its binding, a tile
    loop by a constant); None if this small rewriter does not know a node of it."""
    for var, value in bound.items():
        index = None if index is None else substitute(index, var, value)
    return index


def _zero(index, at: dict):
    """`index` at the tile's first row, vector and lane but where `at` says otherwise."""
    return _bind(index, {var: tirx.const(value, var.ty.dtype) for var, value in at.items()})


def _mentions(expr, var: tirx.Var) -> bool:
    if expr.same_as(var):
        return True
    return any(_mentions(getattr(expr, part), var) for part in ("a", "b", "value")
               if isinstance(getattr(expr, part, None), Expr))


def _prefetch(buffer, indices: list):
    if any(index is None for index in indices):
        return None
    address = tirx.address_of(tirx.BufferLoad(buffer, indices))
    args = [tirx.const(v, "int32") for v in (_READ, _KEEP_IN_L1, _DATA)]
    return tirx.Evaluate(tirx.call_intrin("void", "tirx.prefetch", address, *args))

