"""Swish (ONNX opset 24) as Relax: x * sigmoid(alpha * x).

Why: TVM 0.27's importer has no converter for it and ONNX Runtime 1.31 has no kernel, so a
model using it was refused although its definition is one line of elementwise ops; as a native
kernel it fuses with its neighbours like any other activation.
"""

from __future__ import annotations

from tvm import relax
from tvm.relax.frontend.onnx.onnx_frontend import OnnxOpConverter


class Swish(OnnxOpConverter):
    """x * sigmoid(alpha * x), alpha an attribute (default 1.0), computed in x's type."""

    @classmethod
    def _impl_v24(cls, bb: relax.BlockBuilder, inputs: list, attr: dict, params) -> relax.Expr:
        x = inputs[0]
        alpha = float(attr.get("alpha", 1.0))
        scaled = x if alpha == 1.0 else relax.op.multiply(x, relax.const(alpha, str(x.ty.dtype)))
        return relax.op.multiply(x, relax.op.sigmoid(scaled))


CONVERTERS = {"Swish": Swish}
