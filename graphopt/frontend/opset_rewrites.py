"""Nodes that opset 28 defines and opset 26 cannot say, rewritten into opset-26 operators.

Why: ONNX Runtime 1.31 loads opset 26 at most, and graphopt runs ORT as its reference and
its fallback kernels (graphopt.frontend.domains lowers newer models when every node means the
same at 26). Two definitions added at opset 28 have exact equivalents in older operators:

    Mod, fmod=0 on floats   fmod(a, b), plus b where the remainder is non-zero and its sign
                            differs from b's, and a zero with b's sign: Python's float %, which
                            opset 28 follows, special cases included (fmod gives NaN for an
                            infinite a or a zero b, and a for an infinite b, to which b is added,
                            giving b, exactly when the signs differ)
    BitShift on signed      through the unsigned type of the same width (a two's complement
                            reinterpretation both ways); a right shift of a negative x is
                            ~((~x) >> y), which fills with sign bits; a shift amount that is
                            negative becomes a huge unsigned one, whose answer (0, so -1 for a
                            negative x shifted right) is opset 28's for both

Each rewrite keeps the node's output name, so the rest of the graph is untouched.
"""

from __future__ import annotations

from collections.abc import Callable

import onnx

REWRITE_OPSET = 28  # the opset whose definitions these rewrites compute
FLOAT_TYPES = {"tensor(float)", "tensor(double)", "tensor(float16)", "tensor(bfloat16)"}
SIGNED = {"tensor(int8)": 8, "tensor(int16)": 16, "tensor(int32)": 32, "tensor(int64)": 64}
_UNSIGNED = {8: onnx.TensorProto.UINT8, 16: onnx.TensorProto.UINT16, 32: onnx.TensorProto.UINT32,
             64: onnx.TensorProto.UINT64}
_SIGNED_ENUM = {8: onnx.TensorProto.INT8, 16: onnx.TensorProto.INT16, 32: onnx.TensorProto.INT32,
                64: onnx.TensorProto.INT64}


def _is_float_floor_mod(node: onnx.NodeProto, types: dict[str, str]) -> bool:
    fmod = next((a.i for a in node.attribute if a.name == "fmod"), 0)
    return fmod == 0 and types.get(node.input[0], "") in FLOAT_TYPES


def _is_signed_shift(node: onnx.NodeProto, types: dict[str, str]) -> bool:
    return types.get(node.input[0], "") in SIGNED


class _Names:
    """Fresh value and node names derived from the rewritten node's output."""

    def __init__(self, node: onnx.NodeProto, tag: str) -> None:
        self.base, self.count, self.tag = node.output[0], 0, tag

    def __call__(self) -> str:
        self.count += 1
        return f"{self.base}_graphopt_{self.tag}{self.count}"


def floor_mod_nodes(node: onnx.NodeProto, types: dict[str, str]) -> list[onnx.NodeProto]:
    """Opset 28's floating-point Mod with fmod=0 (see the module docstring)."""
    a, b, out = node.input[0], node.input[1], node.output[0]
    new, make = _Names(node, "mod"), onnx.helper.make_node
    trunc, zero, zero_c, is_zero, r_neg, b_neg, differ, nonzero, adjust, shifted, magnitude, negated, signed_zero, \
        adjusted = (new() for _ in range(14))
    return [
        make("Mod", [a, b], [trunc], fmod=1),
        make("Constant", [], [zero], value=onnx.helper.make_tensor("v", onnx.TensorProto.FLOAT, [], [0.0])),
        make("CastLike", [zero, b], [zero_c]),
        make("Equal", [trunc, zero_c], [is_zero]),
        make("Less", [trunc, zero_c], [r_neg]),
        make("Less", [b, zero_c], [b_neg]),
        make("Xor", [r_neg, b_neg], [differ]),
        make("Not", [is_zero], [nonzero]),
        make("And", [nonzero, differ], [adjust]),
        make("Add", [trunc, b], [shifted]),
        # a zero with b's sign, computed from r (a -0.0 constant would be merged with 0.0 by folding,
        # which compares values): where r is a zero, |r| is +0 and -|r| is -0
        make("Abs", [trunc], [magnitude]),
        make("Neg", [magnitude], [negated]),
        make("Where", [b_neg, negated, magnitude], [signed_zero]),
        make("Where", [adjust, shifted, trunc], [adjusted]),
        make("Where", [is_zero, signed_zero, adjusted], [out]),
    ]


def signed_shift_nodes(node: onnx.NodeProto, types: dict[str, str]) -> list[onnx.NodeProto]:
    """Opset 28's BitShift on a signed type (see the module docstring)."""
    x, y, out = node.input[0], node.input[1], node.output[0]
    bits = SIGNED[types[x]]
    unsigned, signed = _UNSIGNED[bits], _SIGNED_ENUM[bits]
    direction = next((a.s.decode() for a in node.attribute if a.name == "direction"), "LEFT")
    new, make = _Names(node, "shift"), onnx.helper.make_node
    amount = new()
    nodes = [make("Cast", [y], [amount], to=unsigned)]
    if direction == "LEFT":
        as_unsigned, shifted = new(), new()
        return nodes + [make("Cast", [x], [as_unsigned], to=unsigned),
                        make("BitShift", [as_unsigned, amount], [shifted], direction="LEFT"),
                        make("Cast", [shifted], [out], to=signed)]
    zero, zero_c, negative, inverted, source, as_unsigned, shifted, back, back_inverted = (new() for _ in range(9))
    return nodes + [
        make("Constant", [], [zero], value=onnx.helper.make_tensor("v", onnx.TensorProto.INT64, [], [0])),
        make("CastLike", [zero, x], [zero_c]),
        make("Less", [x, zero_c], [negative]),
        make("BitwiseNot", [x], [inverted]),  # ~x >= 0 where x < 0
        make("Where", [negative, inverted, x], [source]),
        make("Cast", [source], [as_unsigned], to=unsigned),
        make("BitShift", [as_unsigned, amount], [shifted], direction="RIGHT"),
        make("Cast", [shifted], [back], to=signed),
        make("BitwiseNot", [back], [back_inverted]),
        make("Where", [negative, back_inverted, back], [out]),
    ]


# op type -> (whether the node needs the rewrite, its replacement nodes)
REWRITES: dict[str, tuple[Callable[[onnx.NodeProto, dict[str, str]], bool],
                          Callable[[onnx.NodeProto, dict[str, str]], list[onnx.NodeProto]]]] = {
    "Mod": (_is_float_floor_mod, floor_mod_nodes),
    "BitShift": (_is_signed_shift, signed_shift_nodes),
}


def rewrites(node: onnx.NodeProto, types: dict[str, str]) -> bool:
    """Whether `node` (a standard node at opset 28) is one this module rewrites."""
    entry = REWRITES.get(node.op_type)
    return entry is not None and node.domain in ("", "ai.onnx") and entry[0](node, types)


def rewrite_graph(graph: onnx.GraphProto, types: dict[str, str]) -> None:
    """Replace, in `graph` and its subgraphs, every node `rewrites` selects by its opset-26 equivalent."""
    result = []
    for node in graph.node:
        for attr in node.attribute:
            for sub in ([attr.g] if attr.HasField("g") else list(attr.graphs)):
                rewrite_graph(sub, types)
        if not rewrites(node, types):
            result.append(node)
            continue
        for index, new in enumerate(REWRITES[node.op_type][1](node, types)):
            new.name = f"{node.name or node.output[0]}_graphopt_{index}"
            result.append(new)
    if len(result) != len(graph.node):
        del graph.node[:]
        graph.node.extend(result)
