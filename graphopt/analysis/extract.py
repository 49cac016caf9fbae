"""Extraction of a `MemoryProblem` from a lowered Relax function.

Design: after CallTIRRewrite, `main` is a flat sequence of bindings. Every
intermediate tensor is born in a binding `v = R.builtin.alloc_tensor(shape,
dtype, dev)` and written by the kernel call that follows. A step is one kernel
call (a call to a PrimFunc, an extern/packed function, or a Relax op other than
allocation); bindings between calls happen "at" the next step.

Lifetimes: a buffer is live from the step of its allocation up to and including
the last step that uses it or anything that aliases it. Aliases are followed
through plain var bindings, tuples and tuple items, and through every Relax op
call that is not a kernel (reshape views and friends): such a call is assumed to
return a view of any of its tensor arguments. That is conservative (it can only
lengthen a lifetime), which keeps the plan safe for ops we did not foresee.

Allocations reachable from the function's return value are graph outputs: they
stay outside the arena, so they are reported but not planned.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import tvm
from tvm import relax

from graphopt.analysis.bindings import (
    AliasTracker,
    alloc_bytes,
    is_alloc,
    is_rederivable,
    is_step,
)
from graphopt.plan.problem import DEFAULT_ALIGNMENT, Buffer, MemoryProblem


@dataclass
class Extraction:
    """The problem plus what the rewrite needs to find each buffer again."""

    problem: MemoryProblem
    buffer_vars: dict[int, relax.Var]  # buffer id -> the alloc binding's var
    output_bytes: int
    num_outputs: int
    step_names: list[str] = field(default_factory=list)
    # For swap planning (training): every step that touches a buffer (its writer
    # included), the kernel call of each step, and the buffers whose every later
    # reference goes through plain bindings, views or tuples (which the swap
    # rewrite re-derives from a swapped-in copy).
    uses: dict[int, tuple[int, ...]] = field(default_factory=dict)
    step_calls: list = field(default_factory=list)
    swappable: frozenset = frozenset()
    # For recomputation: buffer -> the arena buffers its producing kernel reads
    # (only buffers that one PrimFunc call writes, alone, at its birth step).
    recompute_inputs: dict[int, tuple[int, ...]] = field(default_factory=dict)


def extract(func: relax.Function, alignment: int = DEFAULT_ALIGNMENT,
            at: Mapping[str, int] | None = None) -> Extraction:
    """Builds the MemoryProblem of one lowered Relax function; `at` sizes a range compile's
    tensors at one point of its range (graphopt.analysis.symbolic_size)."""
    tracker = AliasTracker()
    allocs: list[tuple[relax.Var, int, int]] = []  # var, start step, bytes
    last_use: dict[relax.Var, int] = {}
    uses: dict[relax.Var, set[int]] = {}
    derived: set[relax.Var] = set()  # vars that alias a buffer other than by plain binding
    unswappable: set[relax.Var] = set()
    step, step_names, step_calls = 0, [], []
    kernel_args: list[tuple[int, relax.Call]] = []
    for block in func.body.blocks:
        for binding in block.bindings:
            value = binding.value
            if is_alloc(value):
                allocs.append((binding.var, step, alloc_bytes(value, binding.var.name, at)))
                tracker.roots[binding.var] = frozenset([binding.var])
                continue
            for root in tracker.of_expr(value):
                last_use[root] = step
                uses.setdefault(root, set()).add(step)
            for ref in relax.analysis.free_vars(value):
                if ref in derived:
                    unswappable.update(tracker.roots.get(ref, ()))
            if is_step(value):
                kernel_args.append((step, value))
                step_names.append(_call_name(value))
                step_calls.append(value)
                step += 1
            tracker.bind(binding.var, value)
            if not is_rederivable(value) and tracker.roots[binding.var]:
                derived.add(binding.var)
    outputs = tracker.of_expr(func.body.body)
    extraction = _assemble(allocs, last_use, outputs, step, step_names, alignment)
    by_var = {var: bid for bid, var in extraction.buffer_vars.items()}
    extraction.uses = {by_var[v]: tuple(sorted(s)) for v, s in uses.items() if v in by_var}
    extraction.step_calls = step_calls
    extraction.swappable = frozenset(bid for v, bid in by_var.items() if v not in unswappable)
    extraction.recompute_inputs = _recompute_inputs(kernel_args, tracker, by_var, extraction.problem)
    return extraction


def _recompute_inputs(kernel_args, tracker: AliasTracker, by_var: dict, problem: MemoryProblem) -> dict:
    """Buffers a second call of their producing kernel can rebuild, with what it reads.

    Conditions, why each: the producer is a PrimFunc (pure, deterministic); it
    writes exactly one fresh allocation, this buffer, as its last argument (TVM's
    destination-passing style); no other kernel writes the buffer or any of the
    inputs in place (then the inputs still hold the same values later).
    """
    starts = {b.id: b.start for b in problem.buffers}
    written: dict[relax.Var, int] = {}
    for _step, call in kernel_args:
        if call.args and isinstance(call.args[-1], relax.Var):
            for root in tracker.roots.get(call.args[-1], ()):
                written[root] = written.get(root, 0) + 1
    out: dict[int, tuple[int, ...]] = {}
    for step, call in kernel_args:
        if not isinstance(call.op, tvm.ir.GlobalVar) or not call.args or not isinstance(call.args[-1], relax.Var):
            continue
        target = call.args[-1]
        if target not in by_var or starts[by_var[target]] != step or written.get(target) != 1:
            continue
        reads = frozenset().union(*(tracker.of_expr(a) for a in call.args[:-1]))
        fresh = [r for r in reads if r in by_var and starts[by_var[r]] == step]
        if target in reads or fresh or any(written.get(r, 0) > 1 for r in reads):
            continue
        out[by_var[target]] = tuple(sorted(by_var[r] for r in reads if r in by_var))
    return out


def _call_name(call: relax.Call) -> str:
    op = call.op
    for attr in ("name_hint", "global_symbol", "name"):
        if hasattr(op, attr):
            return str(getattr(op, attr))
    return str(type(op).__name__)


def _assemble(allocs, last_use, outputs, num_steps, step_names, alignment) -> Extraction:
    buffers, buffer_vars = [], {}
    output_bytes = num_outputs = 0
    for var, start, size in allocs:
        if var in outputs:
            output_bytes += size
            num_outputs += 1
            continue
        end = max(last_use.get(var, start), start) + 1
        buf = Buffer(id=len(buffers), start=start, end=end, size=size, alignment=alignment, name=var.name)
        buffer_vars[buf.id] = var
        buffers.append(buf)
    problem = MemoryProblem(buffers=tuple(buffers), num_steps=max(num_steps, 1))
    return Extraction(problem, buffer_vars, output_bytes, num_outputs, step_names)
