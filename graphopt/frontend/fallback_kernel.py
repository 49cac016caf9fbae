"""One fallback kernel: a node TVM cannot import, as a one-node ONNX model ONNX Runtime runs.

Why a model per node: the runtime hands each kernel's inputs to an onnxruntime session
and writes its outputs into the tensors the memory plan placed in the arena, so the
kernel must be a closed program: its inputs are the node's inputs plus every value its
subgraphs (Loop, Scan, If bodies) read from the enclosing graph; its outputs are the
node's named outputs. Types come from shape inference on the prepared model (or a declared
graph output); an output without a static shape is data-dependent and cannot be planned, so it
is refused. A static type that depends on the values of a non-constant input (a Split whose
`split` is an input) holds only for the values it was inferred or declared for: the runtime
checks every result's shape and dtype and raises KernelError on any other, never a wrong answer.

Only onnx and numpy are imported here: the compile driver builds these before TVM sees
the model.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import onnx

from graphopt.errors import ShapeError, UnsupportedOperatorError, first_line
from graphopt.frontend.loop_shapes import graph_constants, loop_output_types

KERNEL_PREFIX = "graphopt.fallback."
# The ONNX IR version the kernels are stamped with when the model's is newer: ONNX Runtime
# refuses IR versions it does not know.
MAX_KERNEL_IR = 10
# Element types a planned arena can hold (onnx.TensorProto data types); strings cannot.
_UNPLANNABLE = {onnx.TensorProto.STRING, onnx.TensorProto.UNDEFINED}
_ORT_TYPES = {f"tensor({name})": elem for name, elem in (
    ("float", onnx.TensorProto.FLOAT), ("double", onnx.TensorProto.DOUBLE), ("float16", onnx.TensorProto.FLOAT16),
    ("int8", onnx.TensorProto.INT8), ("int16", onnx.TensorProto.INT16), ("int32", onnx.TensorProto.INT32),
    ("int64", onnx.TensorProto.INT64), ("uint8", onnx.TensorProto.UINT8), ("uint16", onnx.TensorProto.UINT16),
    ("uint32", onnx.TensorProto.UINT32), ("uint64", onnx.TensorProto.UINT64), ("bool", onnx.TensorProto.BOOL))}


@dataclass(frozen=True)
class FallbackKernel:
    """A node that runs with onnxruntime: its one-node model and the call's signature."""

    name: str  # the packed-function name the program calls (KERNEL_PREFIX + content hash)
    op_type: str
    domain: str
    node_name: str
    inputs: tuple[str, ...]  # values passed, in call order
    outputs: tuple[str, ...]  # values written, in call order
    output_types: tuple[tuple[tuple[int, ...], int], ...]  # (shape, onnx elem type) per output
    model_bytes: bytes
    reason: str  # why the node is not compiled by TVM

    def record(self) -> dict:
        """The node as plan.json and `graphopt inspect` report it."""
        return {"kernel": self.name, "op_type": self.op_type, "domain": self.domain or "ai.onnx",
                "node": self.node_name, "inputs": len(self.inputs), "outputs": len(self.outputs),
                "reason": self.reason}


def build_kernel(model: onnx.ModelProto, node: onnx.NodeProto, types: dict[str, onnx.TypeProto],
                 reason: str) -> FallbackKernel:
    """The one-node model of `node`; `types` maps every value of the main graph to its type."""
    inputs = _distinct([name for name in node.input if name] + sorted(outer_scope_reads(node)))
    outputs = [name for name in node.output if name]
    for name in inputs:
        _check_plannable(node, name, types.get(name))
    out_types = {n: types[n] for n in outputs if _is_static_tensor(types.get(n))}
    if node.op_type == "Loop" and len(out_types) < len(outputs):
        constants = graph_constants(model.graph, names=set(node.input[:2]))  # the trip count and condition
        out_types = {**loop_output_types(node, constants, types), **out_types}
    if len(out_types) < len(outputs):  # shape inference did not reach them (an op onnx has no schema for)
        inferred = _types_from_onnxruntime(_kernel_model(model, node, inputs, outputs, types, out_types), node)
        out_types = {**inferred, **out_types}
    for name in outputs:
        _check_plannable(node, name, out_types.get(name))
    data = _kernel_model(model, node, inputs, outputs, types, out_types).SerializeToString(deterministic=True)
    _check_loads(data, node)
    name = KERNEL_PREFIX + hashlib.sha256(data).hexdigest()[:20]
    output_types = tuple((_static_shape(node, n, out_types[n]), out_types[n].tensor_type.elem_type)
                         for n in outputs)
    return FallbackKernel(name, node.op_type, node.domain, node.name, tuple(inputs), tuple(outputs),
                          output_types, data, reason)


def _kernel_model(model: onnx.ModelProto, node: onnx.NodeProto, inputs: list[str], outputs: list[str],
                  types: dict[str, onnx.TypeProto], out_types: dict[str, onnx.TypeProto]) -> onnx.ModelProto:
    """The one-node model; outputs missing from `out_types` are left untyped for onnxruntime to infer."""
    graph = onnx.helper.make_graph(
        [node], f"fallback_{node.op_type}",
        [onnx.helper.make_value_info(n, types[n]) for n in inputs],
        [onnx.helper.make_value_info(n, out_types.get(n, onnx.TypeProto())) for n in outputs])
    kernel_model = onnx.helper.make_model(graph, opset_imports=list(model.opset_import),
                                          ir_version=min(max(model.ir_version, 4), MAX_KERNEL_IR))
    kernel_model.functions.extend(model.functions)
    return kernel_model


def _session(data: bytes, node: onnx.NodeProto):
    """An onnxruntime session of the kernel: a node ORT cannot run is refused at compile time."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    try:
        return onnxruntime.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own types
        raise UnsupportedOperatorError(f"{node.op_type} node {node.name or '(unnamed)'}: TVM cannot import it and "
                                       f"onnxruntime cannot run it ({first_line(exc)})") from None


def _check_loads(data: bytes, node: onnx.NodeProto) -> None:
    _session(data, node)


def _types_from_onnxruntime(kernel_model: onnx.ModelProto, node: onnx.NodeProto) -> dict[str, onnx.TypeProto]:
    """Output types as onnxruntime's own shape inference sees them (it knows its contrib ops).

    onnxruntime reports an output of unknown rank with the same empty shape as a scalar, so
    an empty shape from it is not trusted: such an output stays untyped (and is refused).
    Whatever is taken from it is checked again at run time (graphopt.runtime.fallback)."""
    session = _session(kernel_model.SerializeToString(), node)
    types = {}
    for out in session.get_outputs():
        elem = _ORT_TYPES.get(out.type)
        if elem is not None and out.shape:
            dims = [d if isinstance(d, int) and d >= 0 else None for d in out.shape]
            types[out.name] = onnx.helper.make_tensor_type_proto(elem, dims)
    return types


def _is_static_tensor(value_type: onnx.TypeProto | None) -> bool:
    if value_type is None or not value_type.HasField("tensor_type"):
        return False
    tensor = value_type.tensor_type
    return tensor.HasField("shape") and all(d.HasField("dim_value") for d in tensor.shape.dim)


def outer_scope_reads(node: onnx.NodeProto) -> set[str]:
    """Values the node's subgraphs read from the enclosing graph (at any depth)."""
    reads: set[str] = set()
    for graph in _subgraphs(node):
        reads |= _free_values(graph)
    return reads


def _subgraphs(node: onnx.NodeProto) -> list[onnx.GraphProto]:
    graphs = []
    for attr in node.attribute:
        if attr.HasField("g"):
            graphs.append(attr.g)
        graphs.extend(attr.graphs)
    return graphs


def _free_values(graph: onnx.GraphProto) -> set[str]:
    """Names a graph reads that it neither receives as input nor defines."""
    defined = {vi.name for vi in graph.input} | {t.name for t in graph.initializer}
    defined |= {t.name for t in graph.sparse_initializer}
    free: set[str] = set()
    for node in graph.node:
        free |= {name for name in node.input if name and name not in defined}
        free |= outer_scope_reads(node) - defined
        defined |= set(node.output)
    free |= {vi.name for vi in graph.output if vi.name not in defined}
    return free


def _distinct(names: list[str]) -> list[str]:
    return list(dict.fromkeys(names))


def _check_plannable(node: onnx.NodeProto, name: str, value_type: onnx.TypeProto | None) -> None:
    where = f"{node.op_type} node {node.name or '(unnamed)'}"
    if value_type is None:
        raise ShapeError(f"{where}: neither shape inference nor onnxruntime gives value {name!r} a static type; "
                         "graphopt plans static shapes only")
    if not value_type.HasField("tensor_type"):
        raise UnsupportedOperatorError(
            f"{where}: value {name!r} is not a tensor of known type (sequences, maps and optionals cannot be "
            "planned); graphopt cannot run this node")
    if value_type.tensor_type.elem_type in _UNPLANNABLE:
        raise UnsupportedOperatorError(f"{where}: value {name!r} is a string tensor; graphopt plans numeric "
                                       "tensors only")


def _static_shape(node: onnx.NodeProto, name: str, value_type: onnx.TypeProto) -> tuple[int, ...]:
    tensor = value_type.tensor_type
    dims = tensor.shape.dim if tensor.HasField("shape") else None
    if dims is None or any(not d.HasField("dim_value") for d in dims):
        raise ShapeError(f"output {name!r} of {node.op_type} node {node.name or '(unnamed)'} has no static shape "
                         "(data-dependent or not inferable); graphopt plans static shapes only")
    return tuple(int(d.dim_value) for d in dims)
