"""The binding rules of a lowered Relax program, shared by extraction and every rewrite.

After CallTIRRewrite, `main` is a flat list of bindings. Three kinds matter to memory:
an allocation (`R.builtin.alloc_tensor`: a tensor is born), a kernel call (a step: it
reads and writes tensors), and everything else (var aliases, tuples, tuple items, view
ops), which only names memory that already exists. Extraction (lifetimes), reorder (the
kernel DAG), concatenation in place and the swap rewrite must agree on these rules, so
they are written once, here, and public.

`AliasTracker` maps every var to the allocations its value may point into. It is
conservative: a Relax op that is not a kernel is assumed to return a view of any of its
tensor arguments, which can only lengthen a lifetime, never shorten one.
"""

from __future__ import annotations

from collections.abc import Mapping

import tvm
from tvm import relax

from graphopt.analysis.symbolic_size import evaluate
from graphopt.errors import ShapeError

ALLOC_TENSOR = tvm.ir.Op.get("relax.builtin.alloc_tensor")
# Relax ops that return a view of their argument and do no work of their own
# (ensure_zero_offset folds an aligned offset into the pointer: graphopt.transforms.concat_in_place)
VIEW_OPS = ("relax.reshape", "relax.memory.view", "relax.memory.ensure_zero_offset")


def dtype_bytes(dtype) -> int:
    """Bytes per element of a TVM dtype (vector lanes included)."""
    dt = tvm.DataType(str(dtype))
    return (dt.bits * dt.lanes + 7) // 8


def alloc_shape(call: relax.Call, var_name: str, at: Mapping[str, int] | None = None) -> tuple[int, ...]:
    """The static shape an alloc_tensor call allocates; ShapeError for a dynamic one.
    `at`: the value of every shape symbol of a range compile (graphopt.analysis.symbolic_size),
    which sizes the tensor at that point of the range.

    Every graph input has a static shape by now (graphopt.frontend refuses a dynamic one
    and names the flag), so a size still unknown here follows from input *values*: an op
    whose output size is data-dependent (NonMaxSuppression, NonZero), or a Slice, Tile,
    Reshape, Expand, (Un)Squeeze whose sizes or axes are fed at run time, not constants."""
    dims = []
    for d in call.args[0].values:
        if at is not None and not isinstance(d, tvm.tirx.IntImm):
            dims.append(evaluate(d, at))
            continue
        if not isinstance(d, tvm.tirx.IntImm):
            raise ShapeError(f"tensor {var_name} has a size that depends on input values (data-dependent: "
                             "e.g. NonMaxSuppression, or Slice/Tile/Reshape/Unsqueeze sizes or axes fed as "
                             "inputs); graphopt plans static shapes only: make those inputs constants")
        dims.append(int(d.value))
    return tuple(dims)


def alloc_bytes(call: relax.Call, var_name: str, at: Mapping[str, int] | None = None) -> int:
    """Bytes an alloc_tensor call allocates (at least 1: a zero-size tensor still gets an address);
    `at` as in alloc_shape."""
    count = 1
    for d in alloc_shape(call, var_name, at):
        count *= d
    dtype = call.args[1].value if hasattr(call.args[1], "value") else call.args[1]
    return max(count * dtype_bytes(dtype), 1)


def is_alloc(value) -> bool:
    """A binding value that creates a tensor."""
    return isinstance(value, relax.Call) and isinstance(value.op, tvm.ir.Op) and value.op.same_as(ALLOC_TENSOR)


def is_kernel_call(value) -> bool:
    """A call that is not an allocation: a kernel, an extern function or a Relax op (views included)."""
    return isinstance(value, relax.Call) and not is_alloc(value)


class AliasTracker:
    """Maps every Relax var to the allocation roots its value may point into."""

    def __init__(self) -> None:
        self.roots: dict[relax.Var, frozenset] = {}
        self.fields: dict[relax.Var, list[frozenset]] = {}

    def of_expr(self, expr) -> frozenset:
        if isinstance(expr, relax.Var):
            return self.roots.get(expr, frozenset())
        if isinstance(expr, relax.Tuple):
            return frozenset().union(*(self.of_expr(f) for f in expr.fields))
        if isinstance(expr, relax.TupleGetItem):
            items = self.fields.get(expr.tuple_value) if isinstance(expr.tuple_value, relax.Var) else None
            if items is not None and expr.index < len(items):
                return items[expr.index]
            return self.of_expr(expr.tuple_value)
        if isinstance(expr, relax.Call):
            return frozenset().union(*(self.of_expr(a) for a in expr.args))
        # Anything else (If, nested SeqExpr, ...) may use any var inside it.
        return frozenset().union(*(self.roots.get(v, frozenset()) for v in relax.analysis.free_vars(expr)))

    def bind(self, var: relax.Var, value) -> None:
        if isinstance(value, relax.Tuple):
            self.fields[var] = [self.of_expr(f) for f in value.fields]
        self.roots[var] = self.of_expr(value)


def is_rederivable(value) -> bool:
    """Bindings the swap rewrite can repeat on a swapped-in copy: they do no work."""
    if isinstance(value, (relax.Var, relax.Tuple, relax.TupleGetItem)):
        return True
    return isinstance(value, relax.Call) and is_view_op(value)


def is_view_op(call: relax.Call) -> bool:
    """Relax ops (not kernels) that only make a view; they do no work of their own."""
    return isinstance(call.op, tvm.ir.Op) and call.op.name in VIEW_OPS


def is_step(value) -> bool:
    """A binding that does work: one step of the execution order (views are not steps)."""
    return is_kernel_call(value) and not is_view_op(value)
