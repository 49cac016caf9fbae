"""Nodes TVM's importer converts without complaint but computes differently from ONNX Runtime.

Each rule was found by the ONNX backend conformance suite (benchmarks/conformance.py): TVM's
converter accepts the node and ignores an attribute or input that changes the answer. Such a
node is sent to a fallback kernel (graphopt.frontend.fallback), so onnxruntime computes it:
a silent wrong answer is the worst outcome, a slower kernel is not. A rule names the case that
showed it; delete it once TVM's converter (or a graphopt converter) gets it right.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import onnx


def node_attr(node: onnx.NodeProto, name: str, default=None):
    """The value of `node`'s attribute `name`, `default` when the node does not set it."""
    for attr in node.attribute:
        if attr.name == name:
            return onnx.helper.get_attribute_value(attr)
    return default


def _has_input(node: onnx.NodeProto, index: int) -> bool:
    return len(node.input) > index and bool(node.input[index])


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value or "")


class Declared(NamedTuple):
    """What the model declares about a node's first input (either may be unknown: None)."""

    rank: int | None
    elem_type: int | None


_INTEGER_TYPES = {onnx.TensorProto.INT8, onnx.TensorProto.INT16, onnx.TensorProto.INT32, onnx.TensorProto.INT64,
                  onnx.TensorProto.UINT8, onnx.TensorProto.UINT16, onnx.TensorProto.UINT32, onnx.TensorProto.UINT64}

# op type -> (predicate, why): the predicate, given the node and what the model declares about its
# first input, says whether this is a node TVM gets wrong
Rule = tuple[Callable[[onnx.NodeProto, Declared], bool], str]
RULES: dict[str, Rule] = {
    "IsInf": (lambda n, d: node_attr(n, "detect_negative", 1) == 0 or node_attr(n, "detect_positive", 1) == 0,
              "TVM ignores detect_negative/detect_positive (test_isinf_negative)"),
    "BatchNormalization": (lambda n, d: node_attr(n, "training_mode", 0) == 1,
                           "TVM ignores training_mode=1 (test_batchnorm_example_training_mode)"),
    "RoiAlign": (lambda n, d: _text(node_attr(n, "mode", b"avg")) == "max",
                 "TVM's max mode differs (test_roialign_mode_max)"),
    "Resize": (lambda n, d: _text(node_attr(n, "coordinate_transformation_mode", b"half_pixel")) == "align_corners",
               "TVM's align_corners downsampling differs (test_resize_downsample_scales_linear_align_corners)"),
    "Dropout": (lambda n, d: _has_input(n, 2) or (len(n.output) > 1 and bool(n.output[1])),
                "TVM ignores training_mode and returns the mask as float32, not bool (test_dropout_default_mask)"),
    "SequenceInsert": (lambda n, d: True, "TVM's result differs after an erase and an insert (test_sequence_model3)"),
    "LayerNormalization": (lambda n, d: any(n.output[1:]),
                           "TVM returns Mean and InvStdDev as scalars (test_layer_normalization_2d_axis0)"),
    "RMSNormalization": (lambda n, d: _normalizes_every_axis(n, d.rank),
                         "TVM's lowering fails when it normalizes over every axis (test_rms_normalization_2d_axis0)"),
    "Pow": (lambda n, d: d.elem_type in _INTEGER_TYPES,
            "TVM's power takes floats only; its build fails on an integer base (test_pow_types_int32_int32)"),
}


UNDECLARED = Declared(None, None)


def known_wrong(node: onnx.NodeProto, first_input: Declared = UNDECLARED) -> str | None:
    """Why TVM would compute (or fail to build) `node`, None when no rule says so;
    `first_input`: what the model declares about its first input."""
    rule = RULES.get(node.op_type)
    if rule is None or node.domain not in ("", "ai.onnx"):
        return None
    predicate, why = rule
    return f"TVM gets it wrong: {why}" if predicate(node, first_input) else None


def _normalizes_every_axis(node: onnx.NodeProto, rank: int | None) -> bool:
    axis = node_attr(node, "axis", -1)
    return axis == 0 or (rank is not None and axis == -rank)
