"""Which nodes of a model stamped with a standard opset newer than ONNX Runtime's mean the same at its opset.

Why: onnx 1.23 stamps new models with opset 27 or 28, past the 26 that ONNX Runtime 1.31 loads,
and graphopt runs ORT as its reference and its fallback kernels. Most operators did not change
after 26; most of those that did only gained element types (float6, int2, bfloat16 for a few
ops) that a given model may not use. A node means the same at 26 when (`why_not_at`):

- the operator's schema is the same at both opsets, or
- every attribute the node sets exists in the older schema, and every value it binds to a type
  parameter has a type the older schema allows (types from onnx shape inference), and the
  operator's own rule below holds (a changed definition, not only new types).

Rules by operator (onnx 1.23's changelog and docs, read against the opset-26 schema):

    Mod           opset 28 defines fmod=0 on floats (floor-rounded, with special cases); before,
                  fmod=0 was integer-only: such a node is rewritten (graphopt.frontend.opset_rewrites)
    SpaceToDepth  opset 28 adds `mode` (CRD); the older op is DCR: mode must be absent or DCR
    Range         opset 27 adds `stash_type`, which only acts on float16/bfloat16, types the
                  older schema lacks: ignored once the types check passes
    BitShift      opset 28 adds signed types (an arithmetic right shift): such a node is rewritten
                  (graphopt.frontend.opset_rewrites); it also defines shifts of the type's width or
                  more, which older opsets left open: graphopt's own converter
                  (graphopt.frontend.converters.bitshift) gives the opset 28 answer at every opset

A node whose types cannot be told (shape inference failed, a local function's body) keeps the
model refused, as before: nothing is lowered on a guess.
"""

from __future__ import annotations

from collections.abc import Callable

import onnx
import onnx.shape_inference

from graphopt.frontend import opset_rewrites

INTEGER_TYPES = {f"tensor({t})" for t in ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")}


def _mod_rule(node: onnx.NodeProto, types: dict[str, str]) -> str:
    """fmod=0 on what is neither an integer nor (rewritten before this rule runs) a float."""
    floor_mod = next((a.i for a in node.attribute if a.name == "fmod"), 0) == 0
    operand = types.get(node.input[0], "")
    if not floor_mod or operand in INTEGER_TYPES:
        return ""
    return f"fmod=0 on {operand or 'an unknown type'} is defined only from opset 28"


def _space_to_depth_rule(node: onnx.NodeProto, types: dict[str, str]) -> str:
    mode = next((a.s.decode() for a in node.attribute if a.name == "mode"), "DCR")
    return "" if mode == "DCR" else f"mode={mode} is defined only from opset 28"


# operator -> (extra rule, attributes the older schema lacks that the rule makes moot)
OWN_RULES: dict[str, tuple[Callable[[onnx.NodeProto, dict[str, str]], str] | None, frozenset]] = {
    "Mod": (_mod_rule, frozenset()),
    "SpaceToDepth": (_space_to_depth_rule, frozenset({"mode"})),
    "Range": (None, frozenset({"stash_type"})),
}


def value_types(model: onnx.ModelProto) -> dict[str, str]:
    """Value name -> type string ('tensor(float)', 'seq(tensor(int64))', ...) from onnx shape
    inference over the main graph and its subgraphs ({} when inference fails)."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    except Exception:  # noqa: BLE001 - unknown types keep the model refused, which is the safe side
        return {}
    types: dict[str, str] = {}
    _collect(inferred.graph, types)
    return types


def _collect(graph: onnx.GraphProto, types: dict[str, str]) -> None:
    for info in list(graph.input) + list(graph.value_info) + list(graph.output):
        text = type_string(info.type)
        if text:
            types[info.name] = text
    for init in graph.initializer:
        types[init.name] = f"tensor({_elem_name(init.data_type)})"
    for node in graph.node:
        for attr in node.attribute:
            for sub in ([attr.g] if attr.HasField("g") else list(attr.graphs)):
                _collect(sub, types)


def type_string(proto: onnx.TypeProto) -> str:
    """A TypeProto as the schemas write it; '' when it is not fully known."""
    which = proto.WhichOneof("value")
    if which == "tensor_type":
        return f"tensor({_elem_name(proto.tensor_type.elem_type)})" if proto.tensor_type.elem_type else ""
    if which == "sequence_type":
        inner = type_string(proto.sequence_type.elem_type)
        return f"seq({inner})" if inner else ""
    if which == "optional_type":
        inner = type_string(proto.optional_type.elem_type)
        return f"optional({inner})" if inner else ""
    return ""


def _elem_name(elem_type: int) -> str:
    return onnx.TensorProto.DataType.Name(elem_type).lower()


def why_not_at(node: onnx.NodeProto, older: int, newer: int, types: dict[str, str]) -> str:
    """'' when standard `node` at opset `newer` means the same at opset `older`; else why not."""
    try:
        new = onnx.defs.get_schema(node.op_type, newer, "")
    except onnx.defs.SchemaError:
        return ""  # not a standard op: judged elsewhere
    if new.since_version <= older:
        return ""
    try:
        old = onnx.defs.get_schema(node.op_type, older, "")
    except onnx.defs.SchemaError:
        return f"it is defined only from opset {new.since_version}"
    rule, moot = OWN_RULES.get(node.op_type, (None, frozenset()))
    extra = [a.name for a in node.attribute if a.name not in old.attributes and a.name not in moot]
    if extra:
        return f"attribute {extra[0]!r} is defined only from opset {new.since_version}"
    if opset_rewrites.rewrites(node, types):
        return ""  # rewritten into opset-26 operators that compute the new definition
    why = _types_outside(node, old, types)
    return why or (rule(node, types) if rule else "")


def _types_outside(node: onnx.NodeProto, old, types: dict[str, str]) -> str:
    """Why a value the node binds to a type parameter has a type the older schema does not allow."""
    allowed = {c.type_param_str: set(c.allowed_type_strs) for c in old.type_constraints}
    for values, formals in ((node.input, old.inputs), (node.output, old.outputs)):
        for position, name in enumerate(values):
            if not name or not formals:
                continue
            formal = formals[min(position, len(formals) - 1)]
            if formal.type_str not in allowed:
                continue  # a fixed type, not a parameter
            actual = types.get(name)
            if actual is None:
                return f"the type of {name!r} is unknown"
            if actual not in allowed[formal.type_str]:
                return f"{name!r} is {actual}, allowed only from a later opset"
    return ""
