"""A one-line refusal, instead of an assertion deep inside TVM, for a tensor whose shape the importer lost.

Why: TVM's legalization asserts (`emit_te now only supports Tensor that has ShapeExpr shape`)
when a kernel's argument has no shape; a bfloat16 attention graph
(test_attention_4d_attn_mask_causal_bf16_expanded) imported an arange whose result had a rank
but no shape. A crash inside a stage says nothing to the user. Shapes that depend on the data by
design (NonZero's result, and what follows it) are legal here: TVM's VM allocates them at run
time, and graphopt's plan leaves them out; so the check runs only once lowering has failed, and
names the first result that lost its shape for another reason.
"""

from __future__ import annotations

import tvm
from tvm import relax

from graphopt.errors import ShapeError

# Relax ops whose result shape depends on the data by design
DATA_DEPENDENT_OPS = frozenset({"relax.nonzero", "relax.unique", "relax.dynamic_strided_slice"})
LOST_SHAPE = "emit_te now only supports Tensor that has ShapeExpr shape"


def lowering_lost_a_shape(error: BaseException) -> bool:
    """Whether `error` is TVM's legalization meeting a tensor with no shape."""
    return LOST_SHAPE in str(error)


def require_static_shapes(mod: tvm.IRModule) -> None:
    """ShapeError naming the first binding of `main` whose tensor result has no shape and is not
    the result of a data-dependent op; a generic ShapeError when there is none."""
    main = mod["main"] if any(g.name_hint == "main" for g in mod.get_global_vars()) else None
    blocks = main.body.blocks if isinstance(main, relax.Function) and isinstance(main.body, relax.SeqExpr) else []
    for block in blocks:
        for binding in block.bindings:
            info = binding.var.ty
            value = getattr(binding, "value", None)
            op = value.op.name if isinstance(value, relax.Call) and isinstance(value.op, tvm.ir.Op) else ""
            if isinstance(info, relax.TensorType) and info.shape is None and op not in DATA_DEPENDENT_OPS:
                raise ShapeError(f"TVM's importer left the shape of {_describe(binding)} unknown "
                                 f"({info.dtype}, rank {info.ndim}); graphopt plans static shapes only")
    raise ShapeError("TVM's lowering met a tensor whose shape its importer left unknown; graphopt plans "
                     "static shapes only")


def _describe(binding) -> str:
    value = getattr(binding, "value", None)
    if isinstance(value, relax.Call) and isinstance(value.op, tvm.ir.Op):
        return f"{value.op.name} ({binding.var.name})"
    return binding.var.name
