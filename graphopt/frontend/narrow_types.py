"""Narrow element types (float8, float4, 4- and 2-bit integers) held widened, computed exactly.

The pass: every narrow value, weight and constant is retyped to the type that holds it
exactly (narrow_formats.py), the operators that touch one are rewritten (narrow_ops.py),
and the graph inputs and outputs that were narrow are returned, so the artifact's manifest
can record the type a caller passes and gets (`dtype`) beside the one the arena holds
(`held_as`). A model with no narrow tensor comes back untouched (its artifact id does not move).

What stays refused, in one line, by element_types.py: FLOAT8E8M0, the float6 types, complex
numbers, and a narrow tensor inside a subgraph (If, Loop, Scan bodies).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx

from graphopt.errors import ModelLoadError, UnsupportedOperatorError
from graphopt.frontend.narrow_formats import held_type, is_narrow, numpy_name, type_name
from graphopt.frontend.narrow_ops import GraphFacts, rewrite


@dataclass(frozen=True)
class Widened:
    """The rewritten model; for each narrow graph input/output, the dtype callers pass or get
    (`callers`) and the one the arena holds (`held`); and the graph inputs whose values must be all
    zero (float8/float4 zero points: the runtime checks)."""

    model: onnx.ModelProto
    callers: dict[str, str] = field(default_factory=dict)
    held: dict[str, str] = field(default_factory=dict)
    must_be_zero: frozenset[str] = frozenset()


def widen_narrow_types(model: onnx.ModelProto) -> Widened:
    """See the module docstring; raises UnsupportedOperatorError for what it cannot compute."""
    graph = model.graph
    facts = _facts(graph)
    if not any(is_narrow(t) for t in facts.types.values()):
        return Widened(model)
    _refuse_in_subgraphs(graph)
    out = onnx.ModelProto()
    out.CopyFrom(model)
    new_nodes = [replacement for node in out.graph.node for replacement in rewrite(node, facts)]
    del out.graph.node[:]
    out.graph.node.extend(new_nodes)
    _widen_weights(out.graph)
    narrow_io = {vi.name: t for vi in [*graph.input, *graph.output] if is_narrow(t := vi.type.tensor_type.elem_type)}
    for vi in [*out.graph.input, *out.graph.output, *out.graph.value_info]:
        vi.type.tensor_type.elem_type = held_type(vi.type.tensor_type.elem_type)
    return Widened(out, {n: numpy_name(t) for n, t in narrow_io.items()},
                   {n: numpy_name(held_type(t)) for n, t in narrow_io.items()}, frozenset(facts.must_be_zero))


def _facts(graph: onnx.GraphProto) -> GraphFacts:
    """Types and ranks of every value; all-zero constants only among the (de)quantizations' zero
    points, and only when a narrow type is present (a weight is never decoded for nothing)."""
    types, ranks = {}, {}
    inputs = {vi.name for vi in graph.input} - {t.name for t in graph.initializer}
    for vi in [*graph.input, *graph.output, *graph.value_info]:
        tensor_type = vi.type.tensor_type
        types[vi.name] = tensor_type.elem_type
        if tensor_type.HasField("shape"):
            ranks[vi.name] = len(tensor_type.shape.dim)
    for name, tensor in _constants(graph):
        types[name], ranks[name] = tensor.data_type, len(tensor.dims)
    zeros: set[str] = set()
    if any(is_narrow(t) for t in types.values()):
        zero_points = {n.input[2] for n in graph.node
                       if n.op_type in ("QuantizeLinear", "DequantizeLinear") and len(n.input) > 2}
        zeros = {name for name, tensor in _constants(graph) if name in zero_points and _all_zero(name, tensor)}
    return GraphFacts(types, ranks, zeros, inputs)


def _all_zero(name: str, tensor: onnx.TensorProto) -> bool:
    return not np.any(_read(name, tensor).astype(np.float64))


def _read(name: str, tensor: onnx.TensorProto) -> np.ndarray:
    try:
        return onnx.numpy_helper.to_array(tensor)
    except ValueError as exc:  # dims that disagree with the data: a malformed model
        raise ModelLoadError(f"weight {name!r} cannot be read: {exc}") from None


def _constants(graph: onnx.GraphProto):
    """(name, tensor) of every initializer and Constant node holding a tensor."""
    yield from ((t.name, t) for t in graph.initializer)
    for node in graph.node:
        if node.op_type == "Constant":
            yield from ((node.output[0], a.t) for a in node.attribute if a.name == "value")


def _widen_weights(graph: onnx.GraphProto) -> None:
    """Initializers and Constant tensors of narrow types, converted to their held type (exact)."""
    for tensor in [*graph.initializer,
                   *(a.t for n in graph.node if n.op_type == "Constant" for a in n.attribute if a.name == "value")]:
        if is_narrow(tensor.data_type):
            array = _read(tensor.name, tensor)
            held = onnx.helper.tensor_dtype_to_np_dtype(held_type(tensor.data_type))
            tensor.CopyFrom(onnx.numpy_helper.from_array(array.astype(held), tensor.name))


def _refuse_in_subgraphs(graph: onnx.GraphProto) -> None:
    for node in graph.node:
        for attr in node.attribute:
            for sub in [attr.g] if attr.HasField("g") else list(attr.graphs):
                narrow = [t for t in _facts(sub).types.values() if is_narrow(t)]
                if narrow:
                    raise UnsupportedOperatorError(
                        f"{node.op_type} node {node.name or node.output[0]!r}: its subgraph holds a "
                        f"{type_name(narrow[0])} tensor; graphopt computes narrow types in the main graph only")
