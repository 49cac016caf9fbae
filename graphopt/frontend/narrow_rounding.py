"""Rounding a value onto a narrow float's grid, written as standard ONNX operators.

Why standard operators: the rounding then imports, fuses and schedules like any other
elementwise chain (one kernel with its neighbours), and needs no bit manipulation, which
ONNX cannot express below opset 26 and TVM's importer does not take.

How, for a format with M mantissa bits and normal exponents emin..emax (narrow_formats.py):
the spacing of the grid around |x| is q = 2^(e - M) where e = max(emin, floor(log2 |x|)), at
most emax (anything larger overflows below). e - emin is the count of the powers of two
2^(emin+1) .. 2^emax that |x| reaches (exact comparisons summed as integers: no logarithm
whose last bit could be off), and q is read from a table of the emax - emin + 1 spacings. (A
chain of nested Where says the same in fewer ops, but TVM's simplifier took about 15 s per
kernel on the nested selects; the sum compiles in about one.) Then r = Round(|x| / q) * q. The
division and product are exact (q is a power of two) and ONNX's Round is round-half-to-even,
so r is |x| rounded to nearest-even on the grid, subnormals included, and a value that
rounds up into the next binade lands exactly on its first point. Above the largest finite
value: saturate gives the largest (infinities too), otherwise infinity where the format has
one and NaN where it does not (the tables in the ONNX Cast specification). NaN stays NaN
(a comparison with NaN is false, so every step passes it through); a format without NaN
(FLOAT4E2M1) gives 0 for it, as ONNX's reference does. The sign is put back last; a
format without a negative zero (the FNUZ ones) gives +0 for values that round to zero.

Computed in float32 for every input type but float64 (float16 and bfloat16 values are
float32 values exactly), in float64 for float64 (no double rounding); the result, on the
grid, is held as float32 exactly.
"""

from __future__ import annotations

import numpy as np
import onnx

from graphopt.frontend.narrow_formats import FloatFormat

T = onnx.TensorProto


class NodeBuilder:
    """Appends nodes computing one result; fresh value names derive from the result's name."""

    def __init__(self, base: str) -> None:
        self.base, self.count = base, 0
        self.nodes: list[onnx.NodeProto] = []

    def fresh(self) -> str:
        self.count += 1
        return f"{self.base}_graphopt_narrow{self.count}"

    def op(self, op_type: str, *inputs: str, output: str | None = None, **attrs) -> str:
        """One node; returns its (only) output's name."""
        out = output or self.fresh()
        self.nodes.append(onnx.helper.make_node(op_type, list(inputs), [out], **attrs))
        return out

    def const(self, value, elem_type: int) -> str:
        """A scalar Constant node of `elem_type`."""
        array = np.array(value, dtype=onnx.helper.tensor_dtype_to_np_dtype(elem_type))
        return self.op("Constant", value=onnx.numpy_helper.from_array(array, self.fresh()))


def round_to_format(b: NodeBuilder, x: str, x_type: int, fmt: FloatFormat, saturate: bool, output: str) -> None:
    """Nodes writing `output` (float32): `x` rounded onto `fmt`'s grid as ONNX's Cast defines it."""
    wide = T.DOUBLE if x_type == T.DOUBLE else T.FLOAT
    xc = x if x_type == wide else b.op("Cast", x, to=wide)
    magnitude = b.op("Abs", xc)
    rounded = _round_magnitude(b, magnitude, wide, fmt)
    bounded = _beyond_largest(b, rounded, wide, fmt, saturate)
    if not fmt.has_nan:
        bounded = b.op("Where", b.op("IsNaN", magnitude), b.const(0.0, wide), bounded)
    signed = _with_sign(b, xc, bounded, wide, fmt)
    if wide == T.FLOAT:
        b.op("Identity", signed, output=output)
    else:
        b.op("Cast", signed, to=T.FLOAT, output=output)


def _round_magnitude(b: NodeBuilder, magnitude: str, wide: int, fmt: FloatFormat) -> str:
    """|x| rounded to nearest-even on the grid (see the module docstring)."""
    binade = None
    for exponent in range(fmt.emin + 1, fmt.emax + 1):
        above = b.op("Cast", b.op("GreaterOrEqual", magnitude, b.const(2.0 ** exponent, wide)), to=T.INT32)
        binade = above if binade is None else b.op("Add", binade, above)
    spacings = [2.0 ** (e - fmt.mantissa) for e in range(fmt.emin, fmt.emax + 1)]
    table = b.op("Constant", value=onnx.numpy_helper.from_array(
        np.array(spacings, dtype=onnx.helper.tensor_dtype_to_np_dtype(wide)), b.fresh()))
    spacing = b.op("Gather", table, binade)
    return b.op("Mul", b.op("Round", b.op("Div", magnitude, spacing)), spacing)


def _beyond_largest(b: NodeBuilder, rounded: str, wide: int, fmt: FloatFormat, saturate: bool) -> str:
    """Saturated to the largest finite value, or infinity/NaN where it overflows (NaN passes through)."""
    over = b.op("Greater", rounded, b.const(fmt.largest, wide))
    if saturate or not (fmt.has_inf or fmt.has_nan):
        replacement = fmt.largest
    else:
        replacement = np.inf if fmt.has_inf else np.nan
    return b.op("Where", over, b.const(replacement, wide), rounded)


def _with_sign(b: NodeBuilder, xc: str, magnitude: str, wide: int, fmt: FloatFormat) -> str:
    """The magnitude with x's sign; -0.0 keeps its sign where the format has a negative zero."""
    zero = b.const(0.0, wide)
    negated = b.op("Mul", magnitude, b.const(-1.0, wide))
    if fmt.negative_zero:  # 1/x < 0 holds for -0.0 too, where x < 0 does not (and x < 0 for -inf, where 1/x is -0)
        negative = b.op("Or", b.op("Less", xc, zero), b.op("Less", b.op("Div", b.const(1.0, wide), xc), zero))
    else:
        negative = b.op("And", b.op("Less", xc, zero), b.op("Greater", magnitude, zero))
    return b.op("Where", negative, negated, magnitude)
