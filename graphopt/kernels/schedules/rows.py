"""Row reductions (softmax, LayerNorm, a mean or sum over the last axis, with the elementwise work fused
before and after them): one parallel loop over rows, every stage of a row inside it, vectors along it.

Why. The fallback rule parallelizes a reduction's outer loops and leaves the loop along the row to
LLVM, which cannot vectorize a float sum or max (that needs reassociation, i.e. fast-math), and it
inlines softmax's exp into both the row sum and the output, so exp ran twice per element. Measured on
the 2-core AVX2 VM (quiet, 2 threads): the softmax of a one-block dim-64 encoder at batch 16 x seq 128
(16x4x128x128) took 6.2 ms, most of the block's kernel time; this rule runs it in 0.88 ms, its LayerNorm
2.5x and the zoo encoder's softmax 7x faster (benchmarks/results/transformer-kernels-2026-12-07.md).
ONNX Runtime and OpenVINO run softmax and LayerNorm as one pass per row with SIMD reductions.

Which kernels. Every block is either spatial or reduces exactly one iterator, its innermost, which
walks the last axis of a buffer it reads with unit stride (a row); all reductions share their spatial
extents (the rows) and row length; the last block (the output) has the rows as its leading loops.
Anything else (pooling windows, reductions over an outer axis or over two axes, matmuls, a reduction
that is the whole kernel, such as a lone ReduceSum or ReduceMax: the output must be a spatial block)
is declined and left to the next rule. Symbolic extents (a range compile) are taken: a symbolic row length gets no row
buffer and no vector lanes (its reductions run serially in the row loop).

How.
1. Spatial stages are inlined into their consumers, except one whose value calls a transcendental
   (softmax's exp) while its row fits on the stack (STACK_BYTES): it stays, computed once per element
   into a row buffer. TVM puts constant buffers under 1 KiB on the stack; a larger one would be a
   workspace allocation per row, so such a stage is inlined (exp twice, as vectors).
2. Each reduction over the row is split into `w` lanes (common.row_vector of the row length) and
   rfactored: `w` partial results updated a vector at a time, then combined across lanes, `w` scalar
   steps per row. A row length with no power-of-two divisor of 4 or more takes an odd `w` that divides
   it (25 for 6625); one with no divisor near a register's width reduces serially (still in the row loop).
3. The output's row loops are fused into one loop, parallel when the kernel is large enough
   (fallback.MIN_PARALLEL_ELEMENTS); every other stage is computed at it, so a row's intermediates
   stay in L1 and shrink to a row.
4. The loop along the row of every spatial stage (common.row_vector lanes too), and each partial
   reduction's lane loop, is vectorized.
5. The output's division by a per-row value (softmax's `e / sum`) becomes a multiplication by its
   reciprocal, which LLVM computes once per row: a vector divide costs about seven multiplies on Zen 3,
   and ONNX Runtime's softmax multiplies too (the result may differ from a division by one rounding).

Whenever a primitive refuses, the rule declines the whole kernel (returns None), as Fallback does.
exp, erf and tanh themselves become SIMD polynomials at code generation (graphopt.lowering.vector_math).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from tvm import s_tir, tirx
from tvm.ir import Call
from tvm.ir.expr import Expr
from tvm.s_tir.dlight.base import ScheduleRule
from tvm.target import Target

from graphopt.kernels.schedules import common, symbolic
from graphopt.kernels.schedules.fallback import MIN_PARALLEL_ELEMENTS

STACK_BYTES = 1024  # TVM's kMaxStackAlloca: smaller constant buffers of a CPU kernel live on the stack
EXPENSIVE = {"tirx.exp", "tirx.erf", "tirx.tanh", "tirx.log", "tirx.pow", "tirx.sigmoid"}
_switch = {"on": True}


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Kernels scheduled inside are declined by this rule (Fallback takes them, as before it existed): the
    baseline of an A/B in one process (benchmarks.transformer_kernels), with no environment variable."""
    _switch["on"] = False
    try:
        yield
    finally:
        _switch["on"] = True


class Rows(ScheduleRule):
    """One parallel loop over rows, each row's reductions vectorized (see the module docstring)."""

    name = "rows"

    def apply(self, func: tirx.PrimFunc, target: Target, _tunable: bool) -> s_tir.Schedule | None:
        return self.schedule(func, target, {})

    def schedule(self, func: tirx.PrimFunc, target: Target, knobs: dict) -> s_tir.Schedule | None:
        """No tunable knobs (the tuner skips this rule's kernels). A symbolic kernel (a range compile's) gets
        two nests chosen by size at run time, as Fallback's (by_size.py); `symbols_at` is the size every
        symbol is taken at when deciding on threads."""
        from graphopt.kernels.schedules import by_size, has_symbolic_shape

        if not _switch["on"]:
            return None
        if "symbols_at" not in knobs and has_symbolic_shape(func):
            if not self._matches(func, target):
                return None
            return by_size.serial_or_parallel(self, func, target, knobs, MIN_PARALLEL_ELEMENTS)
        started = common.start(func, target)
        if started is None:
            return None
        sch, infos = started
        blocks = [b.block_rv for b in infos]
        shape = row_shape(sch, blocks)
        if shape is None:
            return None
        rows, length = shape
        try:
            _schedule(sch, blocks, rows, length, common.vector_lanes(target), knobs.get("symbols_at"))
        except Exception:  # noqa: BLE001  (declined: see the module docstring)
            return None
        return sch

    @staticmethod
    def _matches(func: tirx.PrimFunc, target: Target) -> bool:
        started = common.start(func, target)
        return started is not None and row_shape(started[0], [b.block_rv for b in started[1]]) is not None


def row_shape(sch: s_tir.Schedule, blocks: list) -> tuple[tuple, object] | None:
    """(row extents, row length) when the kernel is a row reduction this rule takes, else None; each extent
    an int, or an expression of shape symbols in a range compile."""
    reductions = [b for b in blocks if _is_reduction(sch, b)]
    if not reductions or len(blocks) < 2:
        return None
    shapes = [_reduction_shape(sch, b) for b in reductions]
    if None in shapes or len({str(shape) for shape in shapes}) != 1:
        return None
    rows, length = shapes.pop()
    if not rows or (symbolic.is_static(length) and int(length) < 2):
        return None
    out = sch.get(blocks[-1])
    leading = tuple(_extent(iv.dom.extent) for iv in out.iter_vars[:len(rows)])
    if tuple(str(e) for e in leading) != tuple(str(e) for e in rows):
        return None
    if any(iv.iter_type != tirx.IterVar.DataPar for iv in out.iter_vars):
        return None
    if any(iv.iter_type not in (tirx.IterVar.DataPar, tirx.IterVar.CommReduce)
           for b in blocks for iv in sch.get(b).iter_vars):
        return None
    return rows, length


def _is_reduction(sch: s_tir.Schedule, block) -> bool:
    return any(iv.iter_type == tirx.IterVar.CommReduce for iv in sch.get(block).iter_vars)


def _extent(value):
    """A loop extent: an int when static, else the expression (a range compile's symbol)."""
    return int(value.value) if isinstance(value, tirx.IntImm) else value


def _reduction_shape(sch: s_tir.Schedule, block):
    """(spatial extents, reduced extent) of a block reducing only its innermost iterator along a row."""
    stmt = sch.get(block)
    iters = list(stmt.iter_vars)
    kinds = [iv.iter_type for iv in iters]
    if kinds.count(tirx.IterVar.CommReduce) != 1 or kinds[-1] != tirx.IterVar.CommReduce:
        return None
    if len(sch.get_loops(block)) != len(iters):
        return None
    if not _reads_along_row(stmt, iters[-1].var):
        return None
    extents = [_extent(iv.dom.extent) for iv in iters]
    return tuple(extents[:-1]), extents[-1]


def _reads_along_row(block, var) -> bool:
    """Some read of the block indexes its buffer's last axis by `var` alone (a row, unit stride), and no
    read indexes another axis by it."""
    along = False
    for read in block.reads:
        for axis, dim in enumerate(read.region):
            if any(v.same_as(var) for v in tirx.analysis.undefined_vars(dim.min)):
                if axis != len(read.region) - 1 or not dim.min.same_as(var):
                    return False
                along = True
    return along


def _expensive(sch: s_tir.Schedule, block) -> bool:
    """Whether the block's stored value calls a transcendental (worth computing once per element)."""
    found = []

    def visit(expr):
        if isinstance(expr, Call) and getattr(expr.op, "name", "") in EXPENSIVE:
            found.append(expr)
        for child in _children(expr):
            visit(child)
    body = sch.get(block).body
    visit(getattr(body, "value", None))
    return bool(found)


def _children(expr) -> list:
    if expr is None:
        return []
    if isinstance(expr, Call):
        return list(expr.args)
    return [getattr(expr, name) for name in ("a", "b", "value", "condition", "true_value", "false_value")
            if isinstance(getattr(expr, name, None), Expr)]


def _schedule(sch: s_tir.Schedule, blocks: list, rows: tuple, length, lanes: int, at: int | None) -> None:
    """Steps 1-4 of the module docstring on a matched kernel; `at`: the value of every shape symbol when
    deciding on threads (a symbolic kernel's two nests), None for a fixed-shape kernel."""
    keep_row = symbolic.is_static(length) and int(length) * 4 < STACK_BYTES
    stages = []
    for block in blocks[:-1]:
        if _is_reduction(sch, block) or (keep_row and _expensive(sch, block)):
            stages.append(block)
        else:
            sch.compute_inline(block)
    width = common.row_vector(symbolic.static_factor(length), lanes)
    if symbolic.is_static(length) and int(length) < 2 * width:
        width = 1  # one vector per row: nothing to split, the lanes are combined serially anyway
    partials = []
    order = []
    for block in stages:
        if _is_reduction(sch, block) and width >= 2:
            _, inner = sch.split(sch.get_loops(block)[-1], factors=[None, width])
            partial = sch.rfactor(inner, len(rows))
            partials.append(partial)
            order.append(partial)
        order.append(block)
    out_loops = sch.get_loops(blocks[-1])
    row = sch.fuse(*out_loops[:len(rows)]) if len(rows) > 1 else out_loops[0]
    for block in reversed(order):
        sch.compute_at(block, row, preserve_unit_loops=False)
    size = [symbolic.at(e, at) if at is not None else int(e) for e in (*rows, length)]
    total = 1
    for extent in size:
        total *= extent
    if total >= MIN_PARALLEL_ELEMENTS and total > size[-1]:
        sch.parallel(row)  # before decompose_reduction: parallel needs every block complete or a reduction
    _multiply_by_reciprocal(sch, blocks[-1])
    _vectorize_row(sch, blocks[-1], 1, lanes)
    for block in order:
        if block in partials:
            _vectorize_partial(sch, block)
        elif not _is_reduction(sch, block):
            _vectorize_row(sch, block, 1, lanes)


def _multiply_by_reciprocal(sch: s_tir.Schedule, block) -> None:
    """Step 5: `x / d` stored by the output block becomes `x * (1 / d)` when the float divisor d does not
    involve the block's innermost iterator (the position along the row: d is one value per row, a row
    sum or a primitive LayerNorm's sqrt(var + eps)); anything else is left as it is."""
    from graphopt.kernels.schedules.in_place_rows import replace_stored_value

    stmt = sch.get(block)
    store = stmt.body
    value = getattr(store, "value", None)
    if not isinstance(value, tirx.Div) or not str(value.b.ty.dtype).startswith("float"):
        return
    along = stmt.iter_vars[-1].var
    if any(v.same_as(along) for v in tirx.analysis.undefined_vars(value.b)):
        return
    one = tirx.const(1.0, value.b.ty.dtype)
    replace_stored_value(sch, block, stmt, store, value.a * (one / value.b))


def _vectorize_row(sch: s_tir.Schedule, block, outer: int, lanes: int) -> None:
    """Fuses the block's loops below the first `outer` and vectorizes them."""
    inner = sch.get_loops(block)[outer:]
    if not inner:
        return
    loop = sch.fuse(*inner) if len(inner) > 1 else inner[0]
    common.vectorize_inner(sch, loop, lanes, common.row_vector)


def _vectorize_partial(sch: s_tir.Schedule, partial) -> None:
    """The rfactored block's loops are [row, lane, step]: steps outside, one vector of lanes inside, the
    initialisation taken out of the step loop (a vector of lanes too)."""
    loops = sch.get_loops(partial)
    sch.reorder(loops[-1], loops[-2])
    lane = sch.get_loops(partial)[-1]
    sch.vectorize(lane)
    init = sch.decompose_reduction(partial, sch.get_loops(partial)[-2])
    sch.vectorize(sch.get_loops(init)[-1])
