"""Shapes no run can have: refused once shapes are inferred, before they compile into NaN.

Why: ONNX shape inference computes a pooling or convolution output dim as
floor((in + pads - dilated kernel) / stride) + 1 and never checks the result, so a MaxPool
whose kernel is larger than its padded input infers a dim of -1. TVM compiled that model and
returned NaN; ONNX Runtime refuses it (negative output dims) when it runs the node. Any
negative dim after inference is a ShapeError naming the first node, in graph order, that
produces one: the cause, not a tensor downstream of it.

What ONNX Runtime refuses at session creation beyond this is its shape inference, which
graphopt runs in strict mode already (graphopt.frontend.shapes.infer_shapes: negative pads,
rank and type conflicts). One more it refuses when the node runs: a Reshape whose target
holds another number of elements than its input (inference does not compare them).
Zero-size dims are legal ONNX (empty tensors): they pass.

`check_resident` is the other shape a run cannot have here: inputs, outputs and weights larger
than the memory that would hold them (check 1 of graphopt.plan.memory_limit).
"""

from __future__ import annotations

import math

import onnx

from graphopt.errors import ShapeError
from graphopt.frontend.domains import subgraphs, walk
from graphopt.plan.memory_limit import MemoryLimit, check_fits


def forget_negative_output_dims(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy whose graph outputs declared with a negative dim have their shape cleared (the
    element type stays); the model itself when none has.

    Why: exporters write -1 for a dynamic dim (PP-OCR's classifier declares its output -1x2) and
    ONNX Runtime reads it so; left in place, the declared -1 would survive shape inference and be
    taken for a computed one. Cleared, inference writes the real shape, and a negative dim left
    after that is one the model computes.
    """
    def declared_negative(info: onnx.ValueInfoProto) -> bool:
        shape = info.type.tensor_type.shape
        return info.type.tensor_type.HasField("shape") and any(d.dim_value < 0 for d in shape.dim)

    if not any(declared_negative(info) for info in model.graph.output):
        return model
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    for info in copy.graph.output:
        if declared_negative(info):
            info.type.tensor_type.ClearField("shape")
    return copy


def check_dims(model: onnx.ModelProto) -> None:
    """ShapeError (one line) for a weight or an inferred tensor with a negative dim, or a Reshape
    that changes the number of elements."""
    graph = model.graph
    for tensor in graph.initializer:
        if any(d < 0 for d in tensor.dims):
            raise ShapeError(f"initializer {tensor.name} has a negative dim {list(tensor.dims)}")
    shapes = known_shapes(graph)
    for node in walk(graph.node):
        for name in node.output:
            dims = shapes.get(name, ())
            if any(d < 0 for d in dims if d is not None):
                raise ShapeError(f"node {node.name or name!r} ({node.op_type}) gives {name} the shape "
                                 f"{_fmt(dims)}: a negative dim (a kernel larger than its padded input?); "
                                 "ONNX Runtime refuses this model")
        if node.op_type == "Reshape" and node.domain in ("", "ai.onnx"):
            _check_reshape(node, shapes)


def _check_reshape(node: onnx.NodeProto, shapes: dict[str, tuple[int | None, ...]]) -> None:
    """ONNX shape inference takes a Reshape's target shape without comparing element counts;
    ONNX Runtime refuses the node when it runs, and a compiled program would read past its input."""
    before, after = shapes.get(node.input[0]), shapes.get(node.output[0])
    if before is None or after is None or None in before or None in after:
        return
    if math.prod(before) != math.prod(after):
        raise ShapeError(f"node {node.name or node.output[0]!r} (Reshape) reshapes {_fmt(before)} "
                         f"({math.prod(before)} elements) to {_fmt(after)} ({math.prod(after)}); "
                         "ONNX Runtime refuses this model")


def check_resident(model: onnx.ModelProto, limit: MemoryLimit) -> None:
    """MemoryLimitError when the graph's inputs, outputs and weights, which every run holds,
    cannot fit `limit`: before TVM spends minutes on a model no run here could load."""
    graph = model.graph
    weights = {t.name: _nbytes(t.data_type, tuple(t.dims)) for t in graph.initializer}
    shapes = known_shapes(graph)
    inputs = {vi.name: _value_bytes(vi, shapes) for vi in graph.input if vi.name not in weights}
    outputs = {vi.name: _value_bytes(vi, shapes) for vi in graph.output}
    parts = {"weights": sum(weights.values()), "inputs": sum(inputs.values()), "outputs": sum(outputs.values())}
    check_fits(parts, {**weights, **inputs, **outputs}, limit, "from the ONNX shapes")


def _value_bytes(info: onnx.ValueInfoProto, shapes: dict) -> int:
    """Bytes of a graph input/output once shapes are inferred; 0 while a dim is unknown
    (a data-dependent output is refused later, by the signature check)."""
    dims = shapes.get(info.name)
    if dims is None or any(d is None for d in dims):
        return 0
    return _nbytes(info.type.tensor_type.elem_type, dims)


def _nbytes(elem_type: int, dims: tuple[int, ...]) -> int:
    itemsize = onnx.helper.tensor_dtype_to_np_dtype(elem_type).itemsize
    return itemsize * math.prod(max(d, 0) for d in dims)


def known_shapes(graph: onnx.GraphProto) -> dict[str, tuple[int | None, ...]]:
    """Tensor name -> dims (None where symbolic) of every weight and typed value of `graph` and its subgraphs."""
    shapes: dict[str, tuple[int | None, ...]] = {t.name: tuple(t.dims) for t in graph.initializer}
    for info in (*graph.input, *graph.value_info, *graph.output):
        tensor_type = info.type.tensor_type
        if info.type.HasField("tensor_type") and tensor_type.HasField("shape"):
            shapes[info.name] = tuple(d.dim_value if d.HasField("dim_value") else None
                                      for d in tensor_type.shape.dim)
    for node in graph.node:
        for sub in subgraphs(node):
            shapes.update(known_shapes(sub))
    return shapes


def _fmt(dims: tuple[int | None, ...]) -> str:
    return "x".join("?" if d is None else str(d) for d in dims) if dims else "a scalar"
