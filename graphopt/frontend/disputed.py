"""Nodes where ONNX Runtime's answer differs from ONNX's own reference (or ORT refuses them):
refused, not computed.

Why: graphopt runs a node TVM gets wrong as an ONNX Runtime fallback kernel
(graphopt.frontend.known_wrong). For the configurations below even ONNX Runtime disagrees
with the expected outputs of ONNX's backend suite (benchmarks/conformance.py ran both), so
either answer could be the wrong one for the user: a one-line refusal is better than a
believable number. A rule names the case that showed it; delete it once ORT agrees.

Rules read constant inputs (initializers and Constant nodes) and static shapes through `Facts`;
what a rule cannot read leaves it unable to prove the node safe, which refuses it too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import onnx
import onnx.numpy_helper

from graphopt.errors import UnsupportedOperatorError
from graphopt.frontend.known_wrong import node_attr

Constant = Callable[[str], "np.ndarray | None"]


class Facts(NamedTuple):
    """What a rule may read about the model: constant values, and static shapes (None: unknown)."""

    constant: Constant
    shape: Callable[[str], tuple[int, ...] | None]
    elem_type: Callable[[str], int | None]


def _input(node: onnx.NodeProto, index: int) -> str:
    return node.input[index] if len(node.input) > index else ""


def _random_dropout(node: onnx.NodeProto, facts: Facts) -> bool:
    """Training-mode Dropout draws a random mask: no two engines agree (test_training_dropout)."""
    mode_name, ratio_name = _input(node, 2), _input(node, 1)
    if not mode_name:
        return False
    mode = facts.constant(mode_name)
    if mode is not None and not bool(mode):
        return False
    ratio = facts.constant(ratio_name) if ratio_name else np.array(0.5)
    return ratio is None or float(ratio) != 0.0


def _align_corners_downsampling(node: onnx.NodeProto, facts: Facts) -> bool:
    """align_corners where some output dim is smaller than the input's, told by the static shapes
    (test_resize_downsample_scales_linear_align_corners)."""
    mode = node_attr(node, "coordinate_transformation_mode", b"half_pixel")
    if (mode.decode() if isinstance(mode, bytes) else mode) != "align_corners":
        return False
    before, after = facts.shape(node.input[0]), facts.shape(node.output[0])
    if before is None or after is None or len(before) != len(after):
        return True  # cannot tell: refused rather than guessed
    return any(out < dim for dim, out in zip(before, after))


def _causal_mask_with_past(node: onnx.NodeProto, facts: Facts) -> bool:
    """is_causal with an explicit mask and a past key
    (test_attention_4d_with_past_and_present_qk_matmul_bias_3d_mask_causal)."""
    return node_attr(node, "is_causal", 0) == 1 and bool(_input(node, 3)) and bool(_input(node, 4))


def _slope_not_broadcast(node: onnx.NodeProto, facts: Facts) -> bool:
    """A slope that does not broadcast to the input from the right, as ONNX defines PRelu from
    opset 7 (test_PReLU_1d_multiparam: slope 3 on 2x3x4, an old exporter's one slope per channel)."""
    x, slope = facts.shape(node.input[0]), facts.shape(node.input[1]) if len(node.input) > 1 else None
    if x is None or slope is None:
        return False  # unknown: TVM's build checks it and fails loudly
    if len(slope) > len(x):
        return True
    return any(s not in (1, d) for s, d in zip(reversed(slope), reversed(x)))


_FLOATS = {onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16}


def _float_floor_mod(node: onnx.NodeProto, facts: Facts) -> bool:
    """fmod=0 on floats before opset 28, which left it undefined (ONNX Runtime fails on it; TVM
    computed a floor remainder). A model at 28 reaches here rewritten (graphopt.frontend.opset_compat)."""
    return node_attr(node, "fmod", 0) == 0 and facts.elem_type(node.input[0]) in _FLOATS


RULES: dict[str, tuple[Callable[[onnx.NodeProto, Facts], bool], str]] = {
    "Mod": (_float_floor_mod, ("fmod=0 on floating-point values is defined only from opset 28 (ONNX Runtime "
                               "refuses it before)")),
    "PRelu": (_slope_not_broadcast,
              "its slope does not broadcast to its input as ONNX defines it (ONNX Runtime refuses it too)"),
    "Dropout": (_random_dropout, "training-mode Dropout draws a random mask, so its outputs cannot be checked"),
    "Resize": (_align_corners_downsampling,
               ("downsampling with coordinate_transformation_mode=align_corners: ONNX Runtime's result differs "
               "from ONNX's reference")),
    "MaxUnpool": (lambda node, facts: bool(_input(node, 2)),
                  "an output_shape input: ONNX Runtime's result differs from ONNX's reference"),
    "Attention": (_causal_mask_with_past,
                  "is_causal with attn_mask and past_key: ONNX Runtime's masking differs from ONNX's reference"),
}


def constants_of(graph: onnx.GraphProto) -> Constant:
    """A lookup of constant values by name: initializers and Constant nodes' `value`, read on demand."""
    tensors = {t.name: t for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.output:
            value = next((a.t for a in node.attribute if a.name == "value"), None)
            if value is not None:
                tensors[node.output[0]] = value
    return lambda name: onnx.numpy_helper.to_array(tensors[name]) if name in tensors else None


def elem_types_of(graph: onnx.GraphProto) -> Callable[[str], int | None]:
    """A lookup of the element types the graph declares or inference wrote (None: unknown)."""
    types = {t.name: t.data_type for t in graph.initializer}
    for vi in [*graph.input, *graph.value_info, *graph.output]:
        if vi.type.HasField("tensor_type") and vi.type.tensor_type.elem_type:
            types[vi.name] = vi.type.tensor_type.elem_type
    return types.get


def shapes_of(graph: onnx.GraphProto) -> Callable[[str], tuple[int, ...] | None]:
    """A lookup of the static shapes the graph declares or inference wrote (None: not static)."""
    shapes = {t.name: tuple(t.dims) for t in graph.initializer}
    for vi in [*graph.input, *graph.value_info, *graph.output]:
        tensor = vi.type.tensor_type
        if vi.type.HasField("tensor_type") and tensor.HasField("shape") and all(
                d.HasField("dim_value") for d in tensor.shape.dim):
            shapes[vi.name] = tuple(int(d.dim_value) for d in tensor.shape.dim)
    return shapes.get


def refuse_disputed(model: onnx.ModelProto) -> None:
    """UnsupportedOperatorError (one line) for the first node a rule disputes."""
    facts = Facts(constants_of(model.graph), shapes_of(model.graph), elem_types_of(model.graph))
    for node in model.graph.node:
        rule = RULES.get(node.op_type)
        if rule is None or node.domain not in ("", "ai.onnx"):
            continue
        predicate, why = rule
        if predicate(node, facts):
            raise UnsupportedOperatorError(f"{node.op_type} node {node.name or node.output[0]}: {why}")
