"""Refuse, before lowering, an imported program with a tensor whose shape TVM's importer left unknown.

Why: graphopt plans static shapes only, and TVM's legalization asserts deep inside (`emit_te now
only supports Tensor that has ShapeExpr shape`) when a kernel's argument has no shape; a
bfloat16 attention graph (test_attention_4d_attn_mask_causal_bf16_expanded) imported a
ReduceMax whose input had a rank but no shape. A crash inside a stage says nothing to the user;
this names the first operator whose result lost its shape.
"""

from __future__ import annotations

import tvm
from tvm import relax

from graphopt.errors import ShapeError


def require_static_shapes(mod: tvm.IRModule) -> None:
    """ShapeError naming the first binding of `main` whose tensor result has no static shape."""
    main = mod["main"] if any(g.name_hint == "main" for g in mod.get_global_vars()) else None
    if not isinstance(main, relax.Function) or not isinstance(main.body, relax.SeqExpr):
        return
    for block in main.body.blocks:
        for binding in block.bindings:
            info = binding.var.ty
            if isinstance(info, relax.TensorType) and not _static(info):
                raise ShapeError(f"TVM's importer left the shape of {_describe(binding)} unknown "
                                 f"({info.dtype}, rank {info.ndim}); graphopt plans static shapes only")


def _static(info: relax.TensorType) -> bool:
    shape = info.shape
    return isinstance(shape, relax.ShapeExpr) and all(isinstance(d, tvm.tirx.IntImm) for d in shape.values)


def _describe(binding) -> str:
    value = getattr(binding, "value", None)
    if isinstance(value, relax.Call) and isinstance(value.op, tvm.ir.Op):
        return f"{value.op.name} ({binding.var.name})"
    return binding.var.name
