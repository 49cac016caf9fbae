"""BitShift as opset 28 defines it, for every opset: shifts of the type's width or more are defined.

Why: before opset 28 the result of shifting by the element width or more (or by a negative
amount) was left undefined, and both TVM (an LLVM `shl`/`lshr` of that many bits is poison) and
ONNX Runtime give whatever the machine gives. Opset 28 defines it, and adds signed types with an
arithmetic right shift: a shift outside [0, width) gives what the fill alone gives, -1 for a
right shift of a negative signed value and 0 otherwise. One definition serves every opset, since
the older ones leave exactly those cases open (graphopt.frontend.opset_compat relies on it).
"""

from __future__ import annotations

from tvm import relax
from tvm.relax.frontend.onnx.onnx_frontend import OnnxOpConverter


def _const(value: int, dtype: str) -> relax.Constant:
    return relax.const(value, dtype)


class BitShift(OnnxOpConverter):
    """where(0 <= y < width, x << y or x >> y, fill), broadcasting as ONNX does."""

    @classmethod
    def _impl_v11(cls, bb: relax.BlockBuilder, inputs: list, attr: dict, params) -> relax.Expr:
        x, y = inputs
        direction = attr.get("direction", b"LEFT")
        direction = direction.decode() if isinstance(direction, bytes) else str(direction)
        if direction not in ("LEFT", "RIGHT"):
            raise ValueError(f"BitShift direction must be LEFT or RIGHT, not {direction!r}")
        dtype = str(x.ty.dtype)
        width = int(dtype.removeprefix("u").removeprefix("int"))
        signed = not dtype.startswith("u")
        in_range = relax.op.less(y, _const(width, dtype))
        if signed:
            in_range = relax.op.logical_and(in_range, relax.op.greater_equal(y, _const(0, dtype)))
        safe_y = relax.op.where(in_range, y, _const(0, dtype))
        if direction == "LEFT":
            shifted = relax.op.left_shift(x, safe_y)
            fill = relax.op.zeros_like(shifted)
        else:
            shifted = relax.op.right_shift(x, safe_y)
            fill = (relax.op.where(relax.op.less(x, _const(0, dtype)), _const(-1, dtype), _const(0, dtype))
                    if signed else _const(0, dtype))
        return relax.op.where(in_range, shifted, fill)

    _impl_v28 = _impl_v11


CONVERTERS = {"BitShift": BitShift}
