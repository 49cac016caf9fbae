"""Writes an arena plan back into the lowered Relax program.

One `R.memory.alloc_storage(arena_bytes)` is emitted before the first planned
tensor; every planned `R.builtin.alloc_tensor` becomes `R.memory.alloc_tensor(
arena, offset, ...)`. TVM kernels reject tensors with a non-zero `byte_offset`,
so each view then goes through `R.memory.ensure_zero_offset`, which on CPU and
CUDA folds a 64-byte-aligned offset into the data pointer (no copy). The
validator guarantees that alignment before this rewrite runs.
Graph outputs keep their own allocations: a caller may hold them after the next
call reuses the arena.

With `arena_argument` (fixed-shape inference) the arena is not allocated by the program but
passed to it as its last parameter, a uint8 tensor of arena_bytes, and every planned tensor is
`R.memory.view(arena, shape, dtype, offset)`. Why: the Relax VM's allocator leaves the arena in
4 KiB pages, while the runtime can put it in memory advised for 2 MiB pages (its host slab,
graphopt.runtime.host_slab); densenet121's activations cost about 3% more in 4 KiB pages
(benchmarks/results/huge-pages-2026-12-08.md). The session allocates it once
(graphopt.runtime.session); plan.json says so (`arena_is_argument`).
"""

from __future__ import annotations

import tvm
from tvm import relax

from graphopt.analysis.bindings import is_alloc
from graphopt.artifact import ARENA_PARAM
from graphopt.plan.placement import Placement
from graphopt.transforms.result import RewriteResult

ARENA_NAME = ARENA_PARAM  # the arena's binding, or the program's parameter with arena_argument


@relax.expr_functor.mutator
class _ArenaRewriter(relax.PyExprMutator):
    def __init__(self, mod: tvm.IRModule, offsets_by_var: dict, arena_bytes: int, arena_argument: bool) -> None:
        super().__init__(mod)
        self.offsets_by_var = offsets_by_var
        self.arena_bytes = arena_bytes
        self.argument = relax.Var(ARENA_NAME, relax.TensorType([arena_bytes], "uint8")) if arena_argument else None
        self.arena = self.argument

    def visit_var_binding_(self, binding) -> None:
        value = binding.value
        planned = is_alloc(value)
        if not planned or binding.var not in self.offsets_by_var:
            super().visit_var_binding_(binding)
            return
        if self.arena is None:
            storage = relax.op.memory.alloc_storage(
                relax.ShapeExpr([self.arena_bytes]), 0, "global", "uint8"
            )
            self.arena = self.builder_.emit(storage, ARENA_NAME)
        offset = self.offsets_by_var[binding.var]
        shape, dtype, device = value.args[0], value.args[1], value.args[2]
        if self.argument is not None:
            view = relax.op.memory.view(self.arena, shape, dtype, relax.prim_value(tvm.tirx.IntImm("int64", offset)))
        else:
            view = relax.op.memory.alloc_tensor(self.arena, offset, shape, dtype, device)
        raw = self.builder_.emit(view, binding.var.name + "_view")
        zero = self.builder_.normalize(relax.op.memory.ensure_zero_offset(raw))
        self.builder_.emit_normalized(relax.VarBinding(binding.var, zero))

    def rewrite(self, name: str) -> tvm.IRModule:
        module = self.builder_.get()
        gvar = module.get_global_var(name)
        func = self.visit_expr(module[name])
        if self.argument is not None:  # the arena is the last parameter, after the weights
            func = relax.Function([*func.params, self.argument], func.body, func.ret_ty, func.is_pure, func.attrs)
        self.builder_.update_func(gvar, func)
        return self.builder_.get()


def apply_placement(
    mod: tvm.IRModule, buffer_vars: dict, placement: Placement, func_name: str = "main",
    arena_argument: bool = False,
) -> RewriteResult[tvm.IRModule]:
    """A module whose planned tensors all live in one arena; the record gives the
    arena's size, how many tensors moved into it and whether the arena is the function's
    last parameter (`arena_argument`, see the module docstring). A placement with no tensor
    (a program without intermediates) leaves the input module unchanged (no arena parameter)."""
    record = {"arena_bytes": int(placement.arena_bytes), "tensors": len(placement.offsets), "arena_argument": False}
    if not placement.offsets:
        return RewriteResult(mod, False, record)
    offsets_by_var = {buffer_vars[bid]: off for bid, off in placement.offsets.items()}
    record["arena_argument"] = arena_argument
    rewriter = _ArenaRewriter(mod, offsets_by_var, placement.arena_bytes, arena_argument)
    return RewriteResult(rewriter.rewrite(func_name), True, record)
