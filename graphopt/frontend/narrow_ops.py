"""The operators that touch a narrow tensor, rewritten for its held (wider) type.

See narrow_formats.py for why a narrow tensor is held widened. Per operator:

    Cast / CastLike to a narrow float    rounding onto its grid (narrow_rounding.py)
    Cast / CastLike from a narrow type   unchanged: casting the held value is exact
    Cast to FLOAT8E5M2, saturate=0       refused: past the largest finite value ONNX gives infinity
                                         and ONNX Runtime NaN (61440 <= |x| < 65536)
    Cast to a 4- or 2-bit integer        refused from any other type: ONNX leaves out-of-range
                                         values undefined, and ONNX Runtime (rounds half away,
                                         wraps) and ONNX's reference (truncates, zeroes what is
                                         out of range) disagree even on values in range
    QuantizeLinear to a narrow integer   QuantizeLinear to the held integer, then Clip to the
                                         narrow range (saturating twice is saturating once)
    QuantizeLinear to a narrow float     x / scale rounded onto the grid (the zero point must be 0,
                                         as ONNX requires for these types: a constant is checked
                                         here, a graph input by the runtime on every call, as
                                         ONNX Runtime does; a computed one is refused)
    DequantizeLinear of a narrow integer unchanged: the held values and zero point are exact
    DequantizeLinear of a narrow float   held x * scale (float32), cast to the output type
    Identity, Reshape, Flatten, Squeeze, Unsqueeze, Transpose: move values, unchanged; Shape and
    Size do not read them

Any other operator on a narrow tensor, blocked quantization of a narrow float, and the
`precision` attribute are refused in one line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import onnx

from graphopt.errors import UnsupportedOperatorError
from graphopt.frontend.narrow_formats import FLOAT_FORMATS, INT_RANGES, held_type, is_narrow, type_name
from graphopt.frontend.narrow_rounding import NodeBuilder, round_to_format

T = onnx.TensorProto
# unchanged on held values; a Constant's narrow tensor is widened with the weights (narrow_types._widen_weights)
MOVES = {"Identity", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Shape", "Size", "Constant"}


@dataclass(frozen=True)
class GraphFacts:
    """What the rewrites read of the graph: each value's declared element type and rank, which
    values are all-zero constants and which are graph inputs; and, written by the rewrites, the
    graph inputs whose values must be all zero (float8/float4 zero points fed at run time)."""

    types: dict[str, int]
    ranks: dict[str, int]
    zeros: set[str]
    inputs: set[str]
    must_be_zero: set[str] = field(default_factory=set)


def rewrite(node: onnx.NodeProto, facts: GraphFacts) -> list[onnx.NodeProto]:
    """The nodes replacing `node` (itself when nothing narrow passes through it)."""
    narrow_in = [n for n in node.input if n and is_narrow(facts.types.get(n, 0))]
    target = _narrow_target(node, facts)
    if not narrow_in and target is None:
        return [node]
    handler = _HANDLERS.get(node.op_type)
    if handler is None:
        if node.op_type in MOVES:
            return [node]
        value = (narrow_in or [node.output[0]])[0]
        raise UnsupportedOperatorError(
            f"{node.op_type} node {_label(node)}: value {value!r} is {type_name(facts.types.get(value, target or 0))}; "
            "graphopt computes narrow types through Cast, CastLike, QuantizeLinear and DequantizeLinear only")
    return handler(node, facts, target)


def _narrow_target(node: onnx.NodeProto, facts: GraphFacts) -> int | None:
    """The narrow type the node's first output has, if any."""
    out_type = facts.types.get(node.output[0], 0) if node.output else 0
    if node.op_type == "Cast":
        out_type = _attr(node, "to", out_type)
    return out_type if is_narrow(out_type) else None


def _attr(node: onnx.NodeProto, name: str, default):
    found = next((a for a in node.attribute if a.name == name), None)
    return default if found is None else onnx.helper.get_attribute_value(found)


def _label(node: onnx.NodeProto) -> str:
    return repr(node.name or node.output[0])


def _cast(node: onnx.NodeProto, facts: GraphFacts, target: int | None) -> list[onnx.NodeProto]:
    """Cast and CastLike (whose target is its output's type; `like` is not read once rewritten)."""
    if target is None:  # from a narrow type: cast the held value
        return [node]
    return _to_narrow(node, node.input[0], facts, target, saturate=bool(_attr(node, "saturate", 1)))


def _to_narrow(node: onnx.NodeProto, x: str, facts: GraphFacts, target: int, saturate: bool) -> list[onnx.NodeProto]:
    source = facts.types.get(x, 0)
    b = NodeBuilder(node.output[0])
    if target == T.FLOAT8E5M2 and not saturate:
        raise UnsupportedOperatorError(
            f"{node.op_type} node {_label(node)}: a non-saturating cast to FLOAT8E5M2 is refused: a value that rounds "
            "past the largest finite one (61440 up to 65536) is infinity in ONNX's definition and NaN in ONNX Runtime's")
    if target in FLOAT_FORMATS:
        round_to_format(b, x, held_type(source), FLOAT_FORMATS[target], saturate, node.output[0])
        return b.nodes
    if source == target:
        return [onnx.helper.make_node("Identity", [x], [node.output[0]])]
    raise UnsupportedOperatorError(
        f"{node.op_type} node {_label(node)}: a cast from {type_name(source)} to {type_name(target)} is refused: ONNX "
        "leaves out-of-range values undefined, and ONNX Runtime and ONNX's reference disagree even in range")


def _quantize(node: onnx.NodeProto, facts: GraphFacts, target: int | None) -> list[onnx.NodeProto]:
    if target is None:
        return [node]
    _refuse_attrs(node, facts)
    if target in INT_RANGES:
        return _quantize_int(node, target)
    x = node.input[0]
    b = NodeBuilder(node.output[0])
    scaled = b.op("Div", x, _broadcast_scale(b, node, facts))
    saturate = bool(_attr(node, "saturate", 1)) or target == T.FLOAT4E2M1  # ONNX's reference saturates float4
    round_to_format(b, scaled, held_type(facts.types.get(x, T.FLOAT)), FLOAT_FORMATS[target], saturate,
                    node.output[0])
    return b.nodes


def _quantize_int(node: onnx.NodeProto, target: int) -> list[onnx.NodeProto]:
    """QuantizeLinear to the held integer (saturating to it), then Clip to the narrow range."""
    b = NodeBuilder(node.output[0])
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    if "output_dtype" in attrs:
        attrs["output_dtype"] = held_type(target)
    held = b.op("QuantizeLinear", *node.input, **attrs)
    low, high = INT_RANGES[target]
    b.op("Clip", held, b.const(low, held_type(target)), b.const(high, held_type(target)), output=node.output[0])
    return b.nodes


def _dequantize(node: onnx.NodeProto, facts: GraphFacts, target: int | None) -> list[onnx.NodeProto]:
    source = facts.types.get(node.input[0], 0)
    if source not in FLOAT_FORMATS:  # narrow integers: the held values and zero point are exact
        return [node]
    _refuse_attrs(node, facts)
    b = NodeBuilder(node.output[0])
    scale = b.op("Cast", _broadcast_scale(b, node, facts), to=T.FLOAT)
    out_type = _attr(node, "output_dtype", 0) or facts.types.get(node.input[1], T.FLOAT)
    if out_type == T.FLOAT:
        b.op("Mul", node.input[0], scale, output=node.output[0])
    else:
        b.op("Cast", b.op("Mul", node.input[0], scale), to=out_type, output=node.output[0])
    return b.nodes


def _refuse_attrs(node: onnx.NodeProto, facts: GraphFacts) -> None:
    """Blocked quantization of narrow floats, a precision, and a non-zero float zero point."""
    if _attr(node, "block_size", 0) or _attr(node, "precision", 0):
        raise UnsupportedOperatorError(f"{node.op_type} node {_label(node)}: blocked quantization and the precision "
                                       "attribute are not computed for narrow types")
    zero_point = node.input[2] if len(node.input) > 2 else ""
    narrow_float = any(facts.types.get(n, 0) in FLOAT_FORMATS for n in (node.input[0], zero_point, node.output[0]))
    if not zero_point or not narrow_float or zero_point in facts.zeros:
        return
    if zero_point not in facts.inputs:
        raise UnsupportedOperatorError(f"{node.op_type} node {_label(node)}: a float8/float4 zero point must be 0 "
                                       "(ONNX requires it); this one is computed, so it cannot be checked")
    facts.must_be_zero.add(zero_point)  # a graph input: the runtime checks its values on every call


def _broadcast_scale(b: NodeBuilder, node: onnx.NodeProto, facts: GraphFacts) -> str:
    """The scale reshaped to broadcast along `axis` (a per-axis scale is 1-D)."""
    scale = node.input[1]
    rank, scale_rank = facts.ranks.get(node.input[0]), facts.ranks.get(scale)
    if scale_rank in (0, None) or rank in (None, 1):
        return scale
    axis = _attr(node, "axis", 1) % rank
    shape = [1] * rank
    shape[axis] = -1
    return b.op("Reshape", scale, b.op("Constant", value=onnx.helper.make_tensor(b.fresh(), T.INT64, [rank], shape)))


_HANDLERS: dict[str, Callable] = {
    "Cast": _cast, "CastLike": _cast, "QuantizeLinear": _quantize, "DequantizeLinear": _dequantize,
}
