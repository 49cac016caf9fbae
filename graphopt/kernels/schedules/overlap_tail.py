"""A symbolic vector axis without padding: the last tile shifted back to end at the axis' end.

Why. Attention scores [batch, heads, seq, seq] are written along the keys, a symbolic axis that no
vector tile provably divides, so pad_einsum padded it: the keys were copied, zero-padded, into a
packed buffer on every call, and the write-back tested `column < seq` per vector lane, which LLVM
turned into scalar stores for every tile (a fixed compile whose tile divides seq does neither).
At batch 1 x seq 128 (4-layer encoder) this kernel took about twice the fixed compile's time.

How. With the keys' zero-padded copy inlined, every tile reads the operand in place, and the one
tile that would run past the end is moved back: columns `t*W + l` become `t*W + l - shift(t)` with
shift(t) = max(0, t*W + W - V), in the operand reads and in the write-back's global accesses (the
register tile itself keeps its own indices). Every tile then holds W real columns; the shifted tile
recomputes a few columns of the tile before it, bit for bit the same values (same operands, same
order), so the write-back needs no column test and stays whole vectors. It needs V >= W: the GEMM
rule keeps the padded schedule for smaller calls and chooses between the two at run time
(graphopt.kernels.schedules.by_size).
"""

from __future__ import annotations

from tvm import s_tir, tirx

from graphopt.kernels.schedules import in_place_rows


def shift_last_tile(sch: s_tir.Schedule, main, v_position: int, width: int):
    """Rewrites the GEMM's update and write-back as above; returns V (the axis' extent) to guard the
    variant with `V >= width`, or None when the kernel does not have the expected form (nothing changed)."""
    block = sch.get(main)
    v = block.iter_vars[v_position].var
    store = block.body
    if not isinstance(store, tirx.BufferStore):
        return None
    bound = _guard_bound(store.value, v)
    if bound is None:
        return None
    shifted = lambda var: var - tirx.Max(tirx.const(0, var.ty.dtype), (var // width) * width + width - bound)
    value, changed = in_place_rows.rewrite_guarded(store.value, v, shifted(v))
    writeback = _writeback(sch, main)
    if not changed or writeback is None or not _shift_writeback(sch, writeback, shifted):
        return None
    in_place_rows.replace_stored_value(sch, main, block, store, value)
    return bound


def _guard_bound(expr, v):
    """U in the first `if_then_else(v < U, load, 0)` of the expression, None if there is none."""
    if in_place_rows.is_guarded_load(expr) and expr.args[0].a.same_as(v):
        return expr.args[0].b
    for child in ("a", "b", "value"):
        inner = getattr(expr, child, None)
        if inner is not None and not isinstance(inner, (int, float)):
            found = _guard_bound(inner, v)
            if found is not None:
                return found
    return None


def _writeback(sch: s_tir.Schedule, main):
    consumers = sch.get_consumers(main)
    return consumers[0] if len(consumers) == 1 else None


def _shift_writeback(sch: s_tir.Schedule, writeback, shifted) -> bool:
    """The write-back's global accesses on the shifted columns, its column test dropped (the lane loop replaced)."""
    store = sch.get(writeback).body
    v = _local_column(store.value) if isinstance(store, tirx.BufferStore) else None
    return v is not None and _shift_block(sch, writeback, v, shifted)


def _shift_block(sch: s_tir.Schedule, writeback, v, shifted) -> bool:
    """`v` replaced by shifted(v) in the block's global accesses, the test on its vector lane dropped."""
    block = sch.get(writeback)
    store = block.body
    lane_loop = sch.get_loops(writeback)[-1]
    loop = sch.get(lane_loop)
    realize = loop.body
    if not isinstance(realize, s_tir.SBlockRealize) or loop.kind != tirx.ForKind.VECTORIZED:
        return False
    value = in_place_rows.substitute_global(store.value, v, shifted(v))
    indices = [in_place_rows.substitute(i, v, shifted(v)) for i in store.indices]
    if value is None or any(i is None for i in indices):
        return False
    body = tirx.BufferStore(store.buffer, value, indices)
    new_block = s_tir.SBlock(block.iter_vars, block.reads, block.writes, block.name_hint, body, block.init,
                             block.alloc_buffers, block.match_buffers, block.annotations)
    predicate = _without_terms_on(realize.predicate, loop.loop_var)
    new_realize = s_tir.SBlockRealize(realize.iter_values, predicate, new_block)
    new_loop = tirx.For(loop.loop_var, loop.min, loop.extent, loop.kind, new_realize, loop.thread_binding,
                        loop.annotations)
    sch.state.replace(sch.get_sref(lane_loop), new_loop, {block: new_block})
    return True


def _local_column(value):
    """The last index of the register tile's (local buffer's) load in the write-back: its column iterator."""
    if type(value).__name__ == "TensorLoad" and value.source.scope() == "local":
        last = value.indices[-1]
        return last if isinstance(last, tirx.Var) else None
    for child in ("a", "b", "value"):
        inner = getattr(value, child, None)
        if inner is not None and not isinstance(inner, (int, float)):
            found = _local_column(inner)
            if found is not None:
                return found
    return None


def _without_terms_on(predicate, var):
    """The conjunction without its terms that mention `var` (the column test on the vector lane)."""
    terms = _conjuncts(predicate)
    kept = [t for t in terms if not any(x.same_as(var) for x in tirx.analysis.undefined_vars(t))]
    result = tirx.const(True, "bool")
    for term in kept:
        result = term if result.same_as(tirx.const(True, "bool")) or _is_true(result) else tirx.And(result, term)
    return result


def _conjuncts(expr) -> list:
    if isinstance(expr, tirx.And):
        return _conjuncts(expr.a) + _conjuncts(expr.b)
    return [expr]


def _is_true(expr) -> bool:
    return isinstance(expr, tirx.IntImm) and int(expr.value) == 1


__all__ = ["shift_last_tile"]
