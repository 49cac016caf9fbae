"""Writes a SwapSchedule into the lowered Relax program (before the arena rewrite).

For swap s of buffer v (slot n), in program order:
    after kernel `after`:      R.call_packed("graphopt.swap_out", v, n)
    before kernel `free_at`:   R.call_packed("graphopt.swap_wait_out", n)
    before kernel `load_at`:   v_in = R.builtin.alloc_tensor(...same as v...)
                               R.call_packed("graphopt.swap_in", v_in, n)
    before kernel `before`:    R.call_packed("graphopt.swap_wait_in", n)
                               and every later reference to v (or a plain
                               alias of v) reads v_in instead.
v_in is a new allocation, the buffer of the next resident segment: the arena
rewrite then puts it at that segment's offset. Steps are counted exactly as
extraction counts them, so the step numbers of the plan land on the right kernels.
The functions are registered by graphopt.runtime.swap (CPU) or the cuda/ engine.
"""

from __future__ import annotations

import tvm
from tvm import relax

from graphopt.build.extract import _is_alloc, _is_kernel_call, _is_view_op
from graphopt.plan.swap import Swap

_VOID = relax.TupleType([])


def _packed(name: str, args: list) -> relax.Call:
    return relax.Call(relax.ExternFunc(name), args, ty_args=[_VOID])


def _substitute(expr, sub: dict):
    """`expr` with vars replaced; lowered bindings hold only leaf args, tuples and items."""
    if not sub:
        return expr
    if isinstance(expr, relax.Var):
        return sub.get(expr, expr)
    if isinstance(expr, relax.Call):
        return relax.Call(expr.op, [_substitute(a, sub) for a in expr.args], expr.attrs, expr.ty_args)
    if isinstance(expr, relax.Tuple):
        return relax.Tuple([_substitute(f, sub) for f in expr.fields])
    if isinstance(expr, relax.TupleGetItem):
        return relax.TupleGetItem(_substitute(expr.tuple_value, sub), expr.index)
    return expr


def insert_swaps(mod: tvm.IRModule, buffer_vars: dict, swaps: list[Swap], segment_ids: dict) -> tuple[tvm.IRModule, dict]:
    """Returns the module with swap calls and the buffer vars of every segment.

    `segment_ids[(buffer, k)]` is the split problem's id of segment k of a buffer.
    """
    func = mod["main"]
    before_step: dict[int, list] = {}
    after_step: dict[int, list] = {}
    order = sorted(swaps, key=lambda s: (s.buffer, s.after))
    seg_of = {}
    for s in order:
        seg_of[s] = sum(1 for t in order if t.buffer == s.buffer and t.after < s.after) + 1
    new_vars = dict(buffer_vars)
    for slot, s in enumerate(order):
        after_step.setdefault(s.after, []).append(("out", s, slot))
        before_step.setdefault(s.free_at, []).append(("wait_out", s, slot))
        before_step.setdefault(s.load_at, []).append(("in", s, slot))
        before_step.setdefault(s.before, []).append(("wait_in", s, slot))
    sub: dict = {}
    classes: dict = {var: var for var in buffer_vars.values()}  # var -> its buffer's alloc var
    current: dict = {var: var for var in buffer_vars.values()}  # alloc var -> the resident copy
    allocs = {b.var: b.value for block in func.body.blocks for b in block.bindings if _is_alloc(b.value)}
    out, step = [], 0
    for block in func.body.blocks:
        for binding in block.bindings:
            value = _substitute(binding.value, sub)
            kernel = _is_kernel_call(value) and not _is_view_op(value) and not _is_alloc(value)
            if kernel:
                for kind, s, slot in before_step.get(step, ()):
                    root = buffer_vars[s.buffer]
                    if kind == "wait_out":
                        out.append(_bind(f"swap_wait_out{slot}", _packed("graphopt.swap_wait_out", [relax.prim_value(slot)])))
                    elif kind == "in":
                        fresh = relax.Var(f"{root.name}_in{slot}", root.ty)
                        out.append(relax.VarBinding(fresh, allocs[root]))
                        new_vars[segment_ids[(s.buffer, seg_of[s])]] = fresh
                        out.append(_bind(f"swap_in{slot}", _packed("graphopt.swap_in", [fresh, relax.prim_value(slot)])))
                        current[root] = fresh
                    else:
                        out.append(_bind(f"swap_wait_in{slot}", _packed("graphopt.swap_wait_in", [relax.prim_value(slot)])))
                        for var, cls in classes.items():
                            if cls is root:
                                sub[var] = current[root]
                        value = _substitute(binding.value, sub)
            out.append(relax.VarBinding(binding.var, value))
            if isinstance(binding.value, relax.Var) and binding.value in classes:
                classes[binding.var] = classes[binding.value]
            if kernel:
                for _kind, s, slot in after_step.get(step, ()):
                    resident = current[buffer_vars[s.buffer]]
                    out.append(_bind(f"swap_out{slot}", _packed("graphopt.swap_out", [resident, relax.prim_value(slot)])))
                step += 1
    body = relax.SeqExpr([relax.BindingBlock(out)], _substitute(func.body.body, sub))
    new_func = relax.Function(func.params, body, func.ret_ty, func.is_pure, func.attrs)
    result = mod.clone()
    result.update_func(result.get_global_var("main"), new_func)
    return result, new_vars


def _bind(name: str, call: relax.Call) -> relax.VarBinding:
    return relax.VarBinding(relax.Var(name, _VOID), call)
