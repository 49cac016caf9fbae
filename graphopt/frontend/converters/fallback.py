"""The `GraphoptFallback` node (graphopt.frontend.fallback) as Relax: one `call_dps_packed`.

Destination-passing style is what makes a fallback kernel a kernel like any other: TVM's
lowering gives each output an explicit allocation, graphopt's planner places it in the
arena, and the packed function (registered by graphopt.runtime.fallback) writes into it.
"""

from __future__ import annotations

import json

from tvm import relax
from tvm.relax.frontend.onnx.onnx_frontend import OnnxOpConverter


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _as_tensor(bb: relax.BlockBuilder, value: relax.Expr) -> relax.Expr:
    """TVM's importer keeps some shape values as ShapeExpr; a kernel takes tensors."""
    if isinstance(value.ty, relax.ShapeType):
        return bb.normalize(relax.op.shape_to_tensor(value))
    return value


class GraphoptFallback(OnnxOpConverter):
    """Inputs in the node's order; outputs typed from the attribute the partition wrote."""

    @classmethod
    def _impl_v1(cls, bb: relax.BlockBuilder, inputs: list, attr: dict, params) -> relax.Expr:
        types = json.loads(_text(attr["output_types"]))
        out = [relax.TensorType([int(d) for d in shape], dtype) for shape, dtype in types]
        args = [_as_tensor(bb, x) for x in inputs]
        call = relax.call_dps_packed(_text(attr["kernel"]), args, out_ty=out[0] if len(out) == 1 else out)
        if len(out) == 1:
            return call
        result = bb.emit(call)
        return relax.Tuple([relax.TupleGetItem(result, i) for i in range(len(out))])


CONVERTERS = {"GraphoptFallback": GraphoptFallback}
