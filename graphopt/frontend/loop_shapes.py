"""Static output shapes of a Loop, for its fallback kernel.

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


def graph_constants(graph: onnx.GraphProto, names: set[str] | None = None) -> dict[str, np.ndarray]:
    """Initializers and Constant-node values of a graph, or only those in `names` (a big model's
    weights are not copied to read a trip count)."""
    values = {t.name: numpy_helper.to_array(t) for t in graph.initializer if names is None or t.name in names}
    for node in graph.node:
        if node.op_type == "Constant" and node.output and (names is None or node.output[0] in names):
            value = next((a.t for a in node.attribute if a.name == "value" and a.HasField("t")), None)
            if value is not None:
                values[node.output[0]] = numpy_helper.to_array(value)
    return values


def loop_output_types(node: onnx.NodeProto, constants: dict[str, np.ndarray],
                      types: dict[str, onnx.TypeProto]) -> dict[str, onnx.TypeProto]:
    """The outputs' types that do not depend on the data: a carried value whose body output
    has the static type of its initial value keeps it at every iteration count; a scan output
    is static when the iteration count is fixed (the trip count in front of the body's type)."""
    body = next((a.g for a in node.attribute if a.name == "body"), None)
    if body is None:
        return {}
    carried = len(node.input) - 2
    trips = _fixed_trip_count(node, constants) if _condition_stays_true(body) else None
    result = {}
    for index, (name, body_out) in enumerate(zip(node.output, body.output[1:])):
        shape = _static_dims(body_out.type)
        if not name or shape is None:
            continue
        elem = body_out.type.tensor_type.elem_type
        if index < carried and _static_dims(types.get(node.input[2 + index])) == shape:
            result[name] = onnx.helper.make_tensor_type_proto(elem, shape)
        elif index >= carried and trips is not None:
            result[name] = onnx.helper.make_tensor_type_proto(elem, [trips] + shape)
    return result


def _static_dims(value_type: onnx.TypeProto | None) -> list[int] | None:
    if value_type is None or not value_type.HasField("tensor_type"):
        return None
    tensor = value_type.tensor_type
    dims = tensor.shape.dim if tensor.HasField("shape") else None
    if dims is None or not all(d.HasField("dim_value") for d in dims):
        return None
    return [int(d.dim_value) for d in dims]


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
