"""A symbolic GEMM's broadcast operand read in place through clamped rows, not from a padded copy.

Why. In a range compile the broadcast (U) axis of most GEMMs is symbolic (a projection's
batch * seq rows, attention's query rows), so no register tile provably divides it and pad_einsum
pads it: the operand was then copied, zero-padded, on every call. A fixed compile whose tile
divides U reads the operand in place. Measured on the encoder block at batch 1 x seq 16 (2-core
VM): each projection 10-15% slower, the attention context matmul about 2x.

How. The padded rows of a GEMM's accumulator tile are never stored (the write-back is guarded
by u < U), so their value does not matter, only that computing them reads memory in bounds. The
padded operand `if_then_else(u < U, A[f(u), k], 0)` is therefore inlined into the GEMM and then
replaced by `A[f(min(u, U - 1)), k]`: every row of a tile reads a valid row (the last one,
repeated, in the tail tile), and the multiply-adds carry no branch. The rewrite is refused (the
copy stays) unless the operand is exactly one load guarded by exactly `u < U` on the U iterator:
a padded reduction axis must read zeros, and that case never matches.
"""

from __future__ import annotations

from tvm import s_tir, tirx
from tvm.ir import Call
from tvm.ir.expr import TensorLoad  # what tirx.BufferLoad builds in TVM 0.27 (BufferLoad is a function)

from graphopt.kernels.schedules import symbolic

_ARITH = (tirx.Add, tirx.Sub, tirx.Mul, tirx.Div, tirx.FloorDiv, tirx.FloorMod, tirx.Min, tirx.Max)


def is_row_padding(sch: s_tir.Schedule, stage) -> bool:
    """Whether the stage is `P[...] = if_then_else(v < U, A[...], 0)` with U symbolic: a padded copy
    that clamped rows can replace (A[f(v)] is valid for every v < U, as the guard itself relies on)."""
    value = getattr(sch.get(stage).body, "value", None)
    return is_guarded_load(value) and not symbolic.is_static(value.args[0].b)


def is_guarded_load(value) -> bool:
    """`if_then_else(var < bound, load, 0)`: a zero-padded read, as pad_einsum makes them."""
    if not (isinstance(value, Call) and getattr(value.op, "name", "") == "prim.if_then_else"):
        return False
    cond, then, other = value.args
    return (isinstance(cond, tirx.LT) and isinstance(cond.a, tirx.Var) and isinstance(then, TensorLoad)
            and isinstance(other, tirx.FloatImm) and float(other.value) == 0.0)


def clamp_rows(sch: s_tir.Schedule, main, u_position: int) -> bool:
    """Rewrites the GEMM block's `if_then_else(u < U, A[f(u)], 0)` reads into `A[f(min(u, U - 1))]`, where u
    is the block's U iterator (position `u_position` of [S, I, J, K]); False when nothing matched."""
    block = sch.get(main)
    u = block.iter_vars[u_position].var
    store = block.body
    if not isinstance(store, tirx.BufferStore):
        return False
    value, changed = _rewrite(store.value, u)
    if not changed:
        return False
    replace_stored_value(sch, main, block, store, value)
    return True


def replace_stored_value(sch, main, block, store, value) -> None:
    """Replaces, in the schedule's state, `block` (whose body is the BufferStore `store`) by the same
    block storing `value`: TIR nodes are immutable, so the block is rebuilt field by field."""
    body = tirx.BufferStore(store.buffer, value, store.indices)
    new = s_tir.SBlock(block.iter_vars, block.reads, block.writes, block.name_hint, body, block.init,
                       block.alloc_buffers, block.match_buffers, block.annotations)
    sch.state.replace(sch.get_sref(main), new, {block: new})


def _rewrite(expr, u: tirx.Var) -> tuple[object, bool]:
    """(expr with every guarded load on `u` clamped to the last row, whether one was)."""
    if is_guarded_load(expr) and expr.args[0].a.same_as(u):
        bound = expr.args[0].b
        return rewrite_guarded(expr, u, tirx.Min(u, bound - tirx.const(1, u.ty.dtype)))
    return rewrite_guarded(expr, u, None)


def rewrite_guarded(expr, var: tirx.Var, replacement) -> tuple[object, bool]:
    """(expr with every `if_then_else(var < U, A[f(var)], 0)` replaced by `A[f(replacement)]`, whether one
    was); `replacement` None: the clamp `min(var, U - 1)` of each guard."""
    if is_guarded_load(expr) and expr.args[0].a.same_as(var):
        load, bound = expr.args[1], expr.args[0].b
        value = replacement if replacement is not None else tirx.Min(var, bound - tirx.const(1, var.ty.dtype))
        indices = [substitute(i, var, value) for i in load.indices]
        if any(i is None for i in indices):
            return expr, False
        return tirx.BufferLoad(load.source, indices), True
    if isinstance(expr, _ARITH):
        (a, ca), (b, cb) = rewrite_guarded(expr.a, var, replacement), rewrite_guarded(expr.b, var, replacement)
        return (type(expr)(a, b) if ca or cb else expr), ca or cb
    if isinstance(expr, tirx.Cast):
        inner, changed = rewrite_guarded(expr.value, var, replacement)
        return (tirx.Cast(expr.dtype, inner) if changed else expr), changed
    return expr, False


def substitute(expr, var: tirx.Var, value):
    """`expr` with `var` replaced by `value`; None for a node this small rewriter does not know."""
    if expr.same_as(var):
        return value
    if isinstance(expr, (tirx.IntImm, tirx.Var)):
        return expr
    if isinstance(expr, _ARITH):
        a, b = substitute(expr.a, var, value), substitute(expr.b, var, value)
        return None if a is None or b is None else type(expr)(a, b)
    if isinstance(expr, tirx.Cast):
        inner = substitute(expr.value, var, value)
        return None if inner is None else tirx.Cast(expr.dtype, inner)
    return None


def substitute_global(expr, var: tirx.Var, value):
    """A value expression with `var` replaced in the indices of its loads from non-local buffers (a register
    tile keeps its own indices); None for a node this small rewriter does not know."""
    if isinstance(expr, TensorLoad):
        if expr.source.scope() == "local":
            return expr
        indices = [substitute(i, var, value) for i in expr.indices]
        return None if any(i is None for i in indices) else tirx.BufferLoad(expr.source, indices)
    if isinstance(expr, (tirx.IntImm, tirx.FloatImm, tirx.Var)):
        return expr
    if isinstance(expr, _ARITH):
        a, b = substitute_global(expr.a, var, value), substitute_global(expr.b, var, value)
        return None if a is None or b is None else type(expr)(a, b)
    if isinstance(expr, tirx.Cast):
        inner = substitute_global(expr.value, var, value)
        return None if inner is None else tirx.Cast(expr.dtype, inner)
    if isinstance(expr, Call) and getattr(expr.op, "name", "").startswith("tirx."):  # exp, sqrt, ...
        args = [substitute_global(a, var, value) for a in expr.args]
        return None if any(a is None for a in args) else Call(expr.op, args, expr.attrs, expr.ty_args, None, expr.ty)
    return None


__all__ = ["clamp_rows", "is_guarded_load", "is_row_padding", "rewrite_guarded", "substitute", "substitute_global"]
