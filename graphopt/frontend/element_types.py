"""Element types graphopt compiles: refuse the rest in one line, before anything computes.

TVM's importer accepts the sub-byte and 8-bit float types (FLOAT8*, FLOAT4E2M1, INT4, UINT4,
INT2, UINT2) but does not compute them as ONNX Runtime does: the conformance suite's casts to
and from float8 came back with NaNs in other places than the reference, and the sub-byte
integers crashed when the runtime copied them. So graphopt never hands them to TVM: the ones
narrow_formats.py lists are held widened and computed by graphopt's own rewrites
(narrow_types.py) when `narrow_ok`; FLOAT8E8M0, the float6 types and complex numbers have no
kernels at all. A model that holds a type it cannot compute (an input, an output, a weight, an
intermediate, a Cast target) is refused naming the type and where it appears.
"""

from __future__ import annotations

from collections.abc import Iterator

import onnx

from graphopt.errors import UnsupportedOperatorError
from graphopt.frontend.narrow_formats import is_narrow

_UNSUPPORTED_PREFIXES = ("FLOAT8", "FLOAT6", "FLOAT4", "INT4", "UINT4", "INT2", "UINT2", "COMPLEX")


def unsupported_type(elem_type: int, narrow_ok: bool = False) -> str | None:
    """The ONNX name of `elem_type` when graphopt cannot compute it, else None."""
    try:
        name = onnx.TensorProto.DataType.Name(elem_type)
    except ValueError:
        return f"element type {elem_type}"
    if narrow_ok and is_narrow(elem_type):
        return None
    return name if name.startswith(_UNSUPPORTED_PREFIXES) else None


def check_element_types(model: onnx.ModelProto, narrow_ok: bool = False) -> None:
    """Raises UnsupportedOperatorError at the first tensor of a type graphopt cannot compute.

    `narrow_ok`: the float8/float4/int4/int2 types narrow_types.py computes pass (fixed-shape
    compiles; a shape-range compile does not widen them yet)."""
    for where, elem_type in _element_types(model.graph):
        name = unsupported_type(elem_type, narrow_ok)
        if name is not None:
            also = "" if narrow_ok else " (and float8/float4/int4/int2 at fixed shapes)"
            raise UnsupportedOperatorError(f"{where} is {name}: graphopt compiles 8-bit and wider integer, "
                                           f"float16/bfloat16/float32/float64 and bool tensors only{also}")


def _element_types(graph: onnx.GraphProto) -> Iterator[tuple[str, int]]:
    for vi in [*graph.input, *graph.output, *graph.value_info]:
        if vi.type.HasField("tensor_type"):
            yield f"value {vi.name!r}", vi.type.tensor_type.elem_type
    for tensor in graph.initializer:
        yield f"weight {tensor.name!r}", tensor.data_type
    for node in graph.node:
        for attr in node.attribute:
            if node.op_type == "Cast" and attr.name == "to":
                yield f"the target of Cast node {node.name or node.output[0]!r}", attr.i
            if attr.HasField("t"):
                yield f"a tensor attribute of {node.op_type} node {node.name or node.output[0]!r}", attr.t.data_type
            for sub in [attr.g] if attr.HasField("g") else list(attr.graphs):
                yield from _element_types(sub)
