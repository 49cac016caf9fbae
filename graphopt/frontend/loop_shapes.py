"""Static output shapes of a Loop whose trip count is fixed, for its fallback kernel.

ONNX shape inference leaves a Loop's scan outputs with an unknown first dimension (the
iteration count is data in general). When the trip count is a constant and the loop
cannot end early (no condition input, or a constant true one that the body passes on
unchanged or sets to a constant true), every run makes exactly that many iterations, so
the scan outputs are static and the loop can be planned like any other kernel.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper


def graph_constants(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    """Initializers and Constant-node values of a graph (scalars and shapes, mostly)."""
    values = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.output:
            value = next((a.t for a in node.attribute if a.name == "value" and a.HasField("t")), None)
            if value is not None:
                values[node.output[0]] = numpy_helper.to_array(value)
    return values


def loop_output_types(node: onnx.NodeProto, constants: dict[str, np.ndarray]) -> dict[str, onnx.TypeProto]:
    """The outputs' types when the iteration count is fixed (else empty): a carried value has
    its body output's type (static there), a scan output the trip count in front of it."""
    trips = _fixed_trip_count(node, constants)
    body = next((a.g for a in node.attribute if a.name == "body"), None)
    if trips is None or body is None or not _condition_stays_true(body):
        return {}
    carried = len(node.input) - 2
    types = {}
    for index, (name, body_out) in enumerate(zip(node.output, body.output[1:])):
        tensor = body_out.type.tensor_type
        dims = tensor.shape.dim if tensor.HasField("shape") else None
        if name and dims is not None and all(d.HasField("dim_value") for d in dims):
            shape = ([trips] if index >= carried else []) + [int(d.dim_value) for d in dims]
            types[name] = onnx.helper.make_tensor_type_proto(tensor.elem_type, shape)
    return types


def _fixed_trip_count(node: onnx.NodeProto, constants: dict[str, np.ndarray]) -> int | None:
    trip = node.input[0] if node.input else ""
    cond = node.input[1] if len(node.input) > 1 else ""
    if not trip or trip not in constants:
        return None
    if cond and not (cond in constants and bool(np.asarray(constants[cond]).reshape(-1)[0])):
        return None
    return int(np.asarray(constants[trip]).reshape(-1)[0])


def _condition_stays_true(body: onnx.GraphProto) -> bool:
    """The body's condition output is its condition input passed on, or a constant true."""
    cond_in, cond_out = body.input[1].name, body.output[0].name
    if cond_out == cond_in:
        return True
    producer = next((n for n in body.node if cond_out in n.output), None)
    if producer is None:
        return False
    if producer.op_type == "Identity":
        return producer.input[0] == cond_in
    constants = graph_constants(body)
    return cond_out in constants and bool(np.asarray(constants[cond_out]).reshape(-1)[0])
