"""Writes a swap/recompute schedule into the lowered Relax program (before the arena rewrite).

For swap s of buffer v (slot n), in program order:
    after kernel `after`:      R.call_packed("graphopt.swap_out", v, n)
    before kernel `free_at`:   R.call_packed("graphopt.swap_wait_out", n)
    before kernel `load_at`:   v_in = R.builtin.alloc_tensor(...same as v...)
                               R.call_packed("graphopt.swap_in", v_in, n)
    before kernel `before`:    R.call_packed("graphopt.swap_wait_in", n)
For recompute r of buffer v, produced by kernel `f(args..., v)`:
    after kernel `after`:      R.call_packed("graphopt.drop", v, n)   (counts; poisons in tests)
    before kernel `before` (after that step's waits):
                               v_re = R.builtin.alloc_tensor(...same as v...)
                               f(args..., v_re)       (args as resident then)
From then on every later reference to v, to a plain alias of v, or to a view or
tuple made from v reads the new copy: views and tuples are bound again on it
(they do no work). The new allocation is the buffer of the next resident
segment: the arena rewrite puts it at that segment's offset. Steps are counted
exactly as extraction counts them, so the plan's step numbers land on the right
kernels. The swap functions are registered by graphopt.runtime.swap (CPU) or the
cuda/ engine.
"""

from __future__ import annotations

import tvm
from tvm import relax

from graphopt.analysis.bindings import is_alloc, is_rederivable, is_step
from graphopt.plan.swap import Recompute, Swap
from graphopt.transforms.result import RewriteResult

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


def _bind(name: str, call: relax.Call) -> relax.VarBinding:
    return relax.VarBinding(relax.Var(name, _VOID), call)


class _Rewriter:
    """One pass over the bindings; `sub` maps every stale var to its current stand-in."""

    def __init__(self, func: relax.Function, buffer_vars: dict) -> None:
        self.allocs = {b.var: b.value for block in func.body.blocks for b in block.bindings if is_alloc(b.value)}
        self.sub: dict = {}
        self.out: list = []
        self.depends: dict = {var: {var} for var in buffer_vars.values()}  # alloc var -> vars made from it
        self.rederive: list = []  # (var, original value) of views/tuples/aliases, in program order

    def note(self, binding: relax.VarBinding) -> None:
        """Remembers aliases, views and tuples, to bind them again on a new copy."""
        value = binding.value
        if is_alloc(value) or not is_rederivable(value):
            return
        refs = {value} if isinstance(value, relax.Var) else set(relax.analysis.free_vars(value))
        made = False
        for vars_ in self.depends.values():
            if refs & vars_:
                vars_.add(binding.var)
                made = True
        if made:
            self.rederive.append((binding.var, value))

    def replace_root(self, root: relax.Var, fresh: relax.Var, label: str) -> None:
        """From here on `root` is `fresh`: aliases point at it, views and tuples are re-bound."""
        self.sub[root] = fresh
        members = self.depends[root]
        for var, value in self.rederive:
            if var not in members:
                continue
            if isinstance(value, relax.Var):
                self.sub[var] = _substitute(value, self.sub)
                continue
            again = relax.Var(f"{var.name}_{label}", var.ty)
            self.out.append(relax.VarBinding(again, _substitute(value, self.sub)))
            self.sub[var] = again

    def packed(self, name: str, slot: int, *args) -> None:
        self.out.append(_bind(f"{name}{slot}", _packed(f"graphopt.{name}", [*args, relax.prim_value(slot)])))

    def fresh_copy(self, root: relax.Var, label: str) -> relax.Var:
        fresh = relax.Var(f"{root.name}_{label}", root.ty)
        self.out.append(relax.VarBinding(fresh, self.allocs[root]))
        return fresh


def insert_swaps(mod: tvm.IRModule, buffer_vars: dict, swaps: list[Swap], segment_ids: dict,
                 recomputes: list[Recompute] = (), producers: dict | None = None) -> RewriteResult[tvm.IRModule]:
    """The module with swap and recompute calls; its record counts them and, under
    `buffer_vars` (not JSON: Relax vars), maps every segment of the split problem to
    its var, which apply_placement takes next. No swap and no recompute: the input
    module, unchanged, and the input `buffer_vars`.

    `segment_ids[(buffer, k)]` is the split problem's id of segment k of a buffer;
    `producers[buffer] = (step, kernel call)` says how a recomputed buffer was made.
    """
    if not swaps and not recomputes:
        return RewriteResult(mod, False, {"swaps": 0, "recomputes": 0, "buffer_vars": dict(buffer_vars)})
    func = mod["main"]
    events = sorted([*swaps, *recomputes], key=lambda s: (s.buffer, s.after))
    segment = {s: segment_ids[(s.buffer, 1 + sum(1 for t in events if t.buffer == s.buffer and t.after < s.after))]
               for s in events}
    before_step, after_step = _event_steps(events)
    rw = _Rewriter(func, buffer_vars)
    emit = _Emitter(rw, buffer_vars, segment, producers or {})
    step = 0
    for block in func.body.blocks:
        for binding in block.bindings:
            kernel = is_step(binding.value)
            if kernel:
                for kind, s, slot in emit.ordered(before_step.get(step, ())):
                    emit.before(kind, s, slot)
            rw.out.append(relax.VarBinding(binding.var, _substitute(binding.value, rw.sub)))
            rw.note(binding)
            if kernel:
                for kind, s, slot in after_step.get(step, ()):
                    name = "swap_out" if kind == "out" else "drop"
                    rw.packed(name, slot, rw.sub.get(buffer_vars[s.buffer], buffer_vars[s.buffer]))
                step += 1
    body = relax.SeqExpr([relax.BindingBlock(rw.out)], _substitute(func.body.body, rw.sub))
    new_func = relax.Function(func.params, body, func.ret_ty, func.is_pure, func.attrs)
    result = mod.clone()
    result.update_func(result.get_global_var("main"), new_func)
    record = {"swaps": len(swaps), "recomputes": len(recomputes), "buffer_vars": emit.new_vars}
    return RewriteResult(result, True, record)


def _event_steps(events: list) -> tuple[dict, dict]:
    """What to emit before and after which kernel; swaps and recomputes get slot numbers."""
    before_step: dict[int, list] = {}
    after_step: dict[int, list] = {}
    for slot, s in enumerate(e for e in events if isinstance(e, Swap)):
        after_step.setdefault(s.after, []).append(("out", s, slot))
        before_step.setdefault(s.free_at, []).append(("wait_out", s, slot))
        before_step.setdefault(s.load_at, []).append(("in", s, slot))
        before_step.setdefault(s.before, []).append(("wait_in", s, slot))
    for n, r in enumerate(e for e in events if isinstance(e, Recompute)):
        after_step.setdefault(r.after, []).append(("drop", r, n))
        before_step.setdefault(r.before, []).append(("recompute", r, n))
    return before_step, after_step


_ORDER = {"wait_out": 0, "in": 1, "wait_in": 2, "recompute": 3}


class _Emitter:
    """The bindings that go in front of one kernel, for each kind of event."""

    def __init__(self, rw: _Rewriter, buffer_vars: dict, segment: dict, producers: dict) -> None:
        self.rw, self.buffer_vars, self.segment, self.producers = rw, buffer_vars, segment, producers
        self.new_vars = dict(buffer_vars)
        self.pending_in: dict[int, relax.Var] = {}

    def ordered(self, events: list) -> list:
        """Waits first; recomputes last, in birth order (an input is rebuilt before its reader)."""
        return sorted(events, key=lambda e: (_ORDER[e[0]], self.producers.get(e[1].buffer, (0,))[0]))

    def before(self, kind: str, s, slot: int) -> None:
        rw, root = self.rw, self.buffer_vars[s.buffer]
        if kind == "wait_out":
            rw.packed("swap_wait_out", slot)
        elif kind == "in":
            fresh = rw.fresh_copy(root, f"in{slot}")
            self.new_vars[self.segment[s]] = fresh
            rw.packed("swap_in", slot, fresh)
            self.pending_in[slot] = fresh
        elif kind == "wait_in":
            rw.packed("swap_wait_in", slot)
            rw.replace_root(root, self.pending_in.pop(slot), f"in{slot}")
        else:
            fresh = rw.fresh_copy(root, f"re{slot}")
            self.new_vars[self.segment[s]] = fresh
            call = self.producers[s.buffer][1]
            args = [_substitute(a, rw.sub) for a in call.args[:-1]] + [fresh]
            rw.out.append(relax.VarBinding(relax.Var(f"recompute{slot}", call.ty_args[0] if call.ty_args else _VOID),
                                           relax.Call(call.op, args, call.attrs, call.ty_args)))
            rw.replace_root(root, fresh, f"re{slot}")
