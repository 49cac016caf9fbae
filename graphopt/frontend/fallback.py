"""Fallback kernels: the nodes TVM cannot import run with ONNX Runtime, inside the plan.

A model ONNX Runtime runs should compile, not be refused for one operator TVM lacks. So
`partition` replaces each such node by a `GraphoptFallback` node (domain ai.graphopt) that
graphopt's converter (graphopt.frontend.converters.fallback) turns into a
`call_dps_packed` of a kernel named after the node's one-node model
(graphopt.frontend.fallback_kernel). From there on it is a kernel like any other: its
outputs are arena tensors the planner places and the validator checks; at run time the
runtime's onnxruntime kernel reads its inputs and writes its outputs there in place
(graphopt.runtime.fallback).

A node falls back when its domain is not the default one, when TVM's converter table has
no entry for its op, when TVM's converter is known to compute it differently from ONNX
Runtime (graphopt.frontend.known_wrong), or when TVM's converter raised on it (the importer retries with that
node falling back: `graphopt.frontend.importer.import_with_fallback`).

Only onnx is imported here; the list of ops TVM converts is read lazily.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import NamedTuple

import onnx

from graphopt.frontend.fallback_kernel import FallbackKernel, build_kernel
from graphopt.frontend.known_wrong import Declared, known_wrong

FALLBACK_DOMAIN = "ai.graphopt"
FALLBACK_OP = "GraphoptFallback"
_DEFAULT_DOMAINS = ("", "ai.onnx")


class Partition(NamedTuple):
    """The model TVM imports (fallback nodes replaced) and the kernels that replaced them."""

    model: onnx.ModelProto
    kernels: tuple[FallbackKernel, ...]


def with_unique_node_names(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy whose main-graph nodes all have distinct, non-empty names.

    Why: TVM reports a converter failure by node name, and the importer must know which
    node to hand to ONNX Runtime; names do not change what a model computes."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    seen: set[str] = set()
    for index, node in enumerate(copy.graph.node):
        if not node.name or node.name in seen:
            node.name = f"{node.op_type}_graphopt_{index}"
        seen.add(node.name)
    return copy


def native_failure(node: onnx.NodeProto, tvm_ops: frozenset[str], declared: Mapping[str, Declared] | None = None
                   ) -> str | None:
    """Why TVM cannot import `node` (None when it can, as far as its table says); `declared`: the
    declared rank and element type of the model's values (some rules depend on them)."""
    if node.domain not in _DEFAULT_DOMAINS:
        return f"domain {node.domain}"
    if node.op_type not in tvm_ops:
        return "TVM's ONNX importer has no converter for it"
    first = (declared or {}).get(node.input[0]) if node.input else None
    return known_wrong(node, first or Declared(None, None))


def partition(model: onnx.ModelProto, tvm_ops: frozenset[str], forced: Mapping[str, str]) -> Partition:
    """Replaces every node TVM cannot import (and those in `forced`: name -> reason) by a call
    of its fallback kernel; returns the model unchanged when there is none."""
    reasons = {}
    constants = {t.name for t in model.graph.initializer} | {
        n.output[0] for n in model.graph.node if n.op_type == "Constant" and n.output}  # names only: no weight copies
    declared = declared_values(model.graph)
    for node in model.graph.node:
        reason = (forced.get(node.name) or native_failure(node, tvm_ops, declared)
                  or _shape_from_data(node, constants))
        if reason:
            reasons[node.name] = reason
    if not reasons:
        return Partition(model, ())
    types = value_types(model)
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    kernels, nodes = [], []
    for node in copy.graph.node:
        if node.name not in reasons:
            nodes.append(node)
            continue
        if any(name and name not in types for name in node.input):  # downstream of a type only ORT knew
            types = value_types(model, known=types)
        kernel = build_kernel(model, node, types, reasons[node.name])
        types.update({n: onnx.helper.make_tensor_type_proto(elem, list(shape))
                      for n, (shape, elem) in zip(kernel.outputs, kernel.output_types)})
        kernels.append(kernel)
        nodes.append(_call_node(kernel))
    del copy.graph.node[:]
    copy.graph.node.extend(nodes)
    copy.opset_import.append(onnx.helper.make_opsetid(FALLBACK_DOMAIN, 1))
    return Partition(copy, tuple(kernels))


def _shape_from_data(node: onnx.NodeProto, constants: set[str]) -> str | None:
    """A ConstantOfShape whose shape is not a constant: TVM's build fails on it deep inside, so it
    runs as a fallback kernel, at the static shape its declared or inferred output type gives."""
    if node.op_type == "ConstantOfShape" and node.input and node.input[0] not in constants:
        return "its output shape is the value of a non-constant input, which TVM's build cannot take"
    return None


def declared_values(graph: onnx.GraphProto) -> dict[str, Declared]:
    """The rank and element type of every value whose type the graph declares (inputs, value_info,
    outputs, weights)."""
    declared = {t.name: Declared(len(t.dims), t.data_type) for t in graph.initializer}
    for vi in [*graph.input, *graph.value_info, *graph.output]:
        tensor = vi.type.tensor_type
        if vi.type.HasField("tensor_type"):
            rank = len(tensor.shape.dim) if tensor.HasField("shape") else None
            declared[vi.name] = Declared(rank, tensor.elem_type or None)
    return declared


def _call_node(kernel: FallbackKernel) -> onnx.NodeProto:
    types = [[list(shape), onnx.helper.tensor_dtype_to_np_dtype(elem).name] for shape, elem in kernel.output_types]
    return onnx.helper.make_node(FALLBACK_OP, list(kernel.inputs), list(kernel.outputs), name=kernel.node_name,
                                 domain=FALLBACK_DOMAIN, kernel=kernel.name, output_types=json.dumps(types))


def value_types(model: onnx.ModelProto, known: Mapping[str, onnx.TypeProto] | None = None
                ) -> dict[str, onnx.TypeProto]:
    """The type of every value of the main graph, from shape inference on the model, seeded
    with `known` types (outputs of fallback kernels that only onnxruntime could type)."""
    if known:
        seeded = onnx.ModelProto()
        seeded.CopyFrom(model)
        declared = {vi.name for vi in [*model.graph.input, *model.graph.output, *model.graph.value_info]}
        seeded.graph.value_info.extend(onnx.helper.make_value_info(n, t) for n, t in known.items()
                                       if n not in declared)
        model = seeded
    try:
        inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception:  # noqa: BLE001 - a model whose inference fails keeps the types it declares
        inferred = model
    graph = inferred.graph
    types = {vi.name: vi.type for vi in [*graph.input, *graph.value_info, *graph.output]}
    for tensor in graph.initializer:
        types.setdefault(tensor.name, onnx.helper.make_tensor_type_proto(tensor.data_type, list(tensor.dims)))
    for node in graph.node:
        if node.op_type == "Constant" and node.output and node.output[0] not in types:
            value = next((a.t for a in node.attribute if a.name == "value" and a.HasField("t")), None)
            if value is not None:
                types[node.output[0]] = onnx.helper.make_tensor_type_proto(value.data_type, list(value.dims))
    return types
