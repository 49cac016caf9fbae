"""A LayerNorm spelled out in primitives, as one LayerNormalization node (inference compiles, opset >= 17).

Why: models exported before opset 17, and graphopt.train.models' transformer (TVM has no layer_norm
gradient), write LayerNorm as ReduceMean, Sub, Mul (or Pow 2), ReduceMean, Add eps, Sqrt, Div and then,
optionally, Mul gamma, Add beta. TVM imports each op, and FuseOps makes three kernels of them (the centred
input, its square, the variance and the division): in the zoo encoder they took 0.26 ms of a 4.4 ms
inference, 2.5-6.9x their warm time, each a pass over the activations. One LayerNormalization is one
row kernel (graphopt.kernels.schedules.rows). ONNX Runtime and OpenVINO fuse the same subgraph.

Same arithmetic: TVM 0.27 legalizes layer_norm in two passes, the mean and then the mean of squared
deviations, as the graph computes them (not E[x^2] - E[x]^2); the division by sqrt(var + eps) becomes a
multiplication by its reciprocal, as the rows rule does for the unfused graph too.

Only an exact match is rewritten: both means over the last axis with keepdims, the square of the centred
value, a one-element constant epsilon, float32, every intermediate used only inside the subgraph (none a
graph output), gamma and beta (when present) constants of the last axis' length.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from graphopt.transforms.result import RewriteResult

MIN_OPSET = 17  # LayerNormalization's first version


def fuse_layer_norms(model: onnx.ModelProto) -> RewriteResult[onnx.ModelProto]:
    """A copy of `model` with every matching subgraph rewritten (record: how many); the model itself,
    not modified, when none matches or its opset has no LayerNormalization."""
    ops = {node.op_type for node in model.graph.node}
    if _default_opset(model) < MIN_OPSET or not {"ReduceMean", "Sqrt", "Div"} <= ops:
        return RewriteResult(model, False, {"fused": 0})
    graph = _Graph(model)
    divisions = [node for node in model.graph.node if node.op_type == "Div" and node.domain in ("", "ai.onnx")]
    matches = [m for m in map(graph.match, divisions) if m]
    if not matches:
        return RewriteResult(model, False, {"fused": 0})
    rewritten = onnx.ModelProto()
    rewritten.CopyFrom(model)
    dropped = {id_ for match in matches for id_ in match.node_ids}
    fused = {match.anchor: match for match in matches}  # in the place of each match's last node
    nodes = []
    for index, node in enumerate(rewritten.graph.node):
        if index in fused:
            nodes.append(fused[index].node(rewritten.graph))
        elif index not in dropped:
            nodes.append(node)
    del rewritten.graph.node[:]
    rewritten.graph.node.extend(nodes)
    return RewriteResult(rewritten, True, {"fused": len(matches)})


def _default_opset(model: onnx.ModelProto) -> int:
    return max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)


class _Match:
    """One matched subgraph: its node indices, the LayerNormalization's inputs and attributes."""

    def __init__(self, node_ids: list[int], x: str, output: str, epsilon: float, length: int,
                 gamma: str | None, beta: str | None) -> None:
        self.node_ids, self.anchor = node_ids, max(node_ids)  # after every input, before every consumer
        self.x, self.output, self.epsilon, self.length = x, output, epsilon, length
        self.gamma, self.beta = gamma, beta

    def node(self, graph: onnx.GraphProto) -> onnx.NodeProto:
        """The LayerNormalization node; ones / zeros added to `graph` where the subgraph had no gamma / beta."""
        base = f"{self.output}__layer_norm"
        scale = self.gamma or _add_constant(graph, f"{base}_scale", np.ones(self.length, np.float32))
        bias = self.beta or _add_constant(graph, f"{base}_bias", np.zeros(self.length, np.float32))
        return helper.make_node("LayerNormalization", [self.x, scale, bias], [self.output], name=base, axis=-1,
                                epsilon=self.epsilon)


# Input counts of the matched operators (ReduceMean: axes as an attribute, or as an input from opset 18).
_ARITY = {"ReduceMean": (1, 2), "Sub": (2,), "Mul": (2,), "Pow": (2,), "Add": (2,), "Sqrt": (1,)}


def _array(tensor: onnx.TensorProto) -> np.ndarray | None:
    """The tensor's value; None for one that cannot be read (a malformed initializer: the importer reports
    it, this rewrite only leaves the subgraph alone)."""
    try:
        return numpy_helper.to_array(tensor)
    except (ValueError, TypeError):
        return None


def _add_constant(graph: onnx.GraphProto, name: str, value: np.ndarray) -> str:
    graph.initializer.append(numpy_helper.from_array(value, name))
    return name


class _Graph:
    """The lookups a match needs: producers, consumers, constants, ranks and element types."""

    def __init__(self, model: onnx.ModelProto) -> None:
        graph = model.graph
        self.nodes = list(graph.node)
        self.producer = {out: (i, node) for i, node in enumerate(graph.node) for out in node.output}
        self.consumers: dict[str, list[int]] = {}
        for i, node in enumerate(graph.node):
            for name in set(node.input):
                self.consumers.setdefault(name, []).append(i)
        self.outputs = {o.name for o in graph.output}
        self.tensors = {t.name: t for t in graph.initializer}
        for node in graph.node:
            if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
                self.tensors[node.output[0]] = node.attribute[0].t
        self.types = {vi.name: vi.type.tensor_type for vi in [*graph.input, *graph.value_info, *graph.output]}

    def match(self, div: onnx.NodeProto) -> _Match | None:
        """The LayerNorm ending at `div` (and its affine tail, when present), or None."""
        if len(div.input) != 2:
            return None
        centred, std = div.input
        sqrt = self._only(std, "Sqrt")
        add_eps = sqrt and self._only(sqrt[1].input[0], "Add")
        if not add_eps:
            return None
        var_name, epsilon = self._variable_and_scalar(add_eps[1])
        variance = var_name and self._only(var_name, "ReduceMean")
        square = variance and self._only(variance[1].input[0], "Mul", "Pow")
        sub = self._only(centred, "Sub", allowed=2)
        if not (variance and square and sub and epsilon is not None and self._is_square_of(square[1], centred)):
            return None
        x, mean_name = sub[1].input
        mean = self._only(mean_name, "ReduceMean")
        length = self._last_axis_length(x)
        if not (mean and mean[1].input[0] == x and length and self._last_axis_mean(mean[1], x)
                and self._last_axis_mean(variance[1], x)):
            return None
        div_id = self.producer[div.output[0]][0]
        ids = [mean[0], sub[0], square[0], variance[0], add_eps[0], sqrt[0], div_id]
        output, gamma, beta, tail = self._affine_tail(div.output[0], length)
        if any(name in self.outputs for name in (mean_name, centred, square[1].output[0], var_name,
                                                 add_eps[1].output[0], std)):
            return None
        return _Match(ids + tail, x, output, epsilon, length, gamma, beta)

    def constant(self, name: str) -> np.ndarray | None:
        """The value of an initializer or Constant output, read when asked (a model's weights are not
        converted for the few scalars and vectors a match looks at); None for anything else."""
        tensor = self.tensors.get(name)
        return None if tensor is None else _array(tensor)

    def _only(self, name: str, *ops: str, allowed: int = 1) -> tuple[int, onnx.NodeProto] | None:
        """The producer of `name` when it is one of `ops` in the default domain, with its operator's input
        count, and `name` has exactly `allowed` consuming nodes and is no graph output."""
        found = self.producer.get(name)
        if found is None or found[1].op_type not in ops or found[1].domain not in ("", "ai.onnx"):
            return None
        if len(found[1].input) not in _ARITY[found[1].op_type]:
            return None
        if len(self.consumers.get(name, [])) != allowed or name in self.outputs:
            return None
        return found

    def _variable_and_scalar(self, add: onnx.NodeProto) -> tuple[str | None, float | None]:
        """(the non-constant input, the one-element constant) of an Add, else (None, None)."""
        for variable, constant in (add.input, reversed(add.input)):
            value = self.constant(constant)
            if value is not None and value.size == 1 and variable not in self.tensors:
                return variable, float(value.reshape(()))
        return None, None

    def _is_square_of(self, node: onnx.NodeProto, name: str) -> bool:
        if node.op_type == "Mul":
            return list(node.input) == [name, name]
        exponent = self.constant(node.input[1]) if len(node.input) > 1 else None
        return node.input[0] == name and exponent is not None and exponent.size == 1 and float(exponent) == 2.0

    def _last_axis_length(self, name: str) -> int | None:
        """The static last-axis length of a float32 tensor, else None."""
        tensor_type = self.types.get(name)
        if tensor_type is None or tensor_type.elem_type != onnx.TensorProto.FLOAT:
            return None
        dims = tensor_type.shape.dim
        return int(dims[-1].dim_value) if dims and dims[-1].HasField("dim_value") else None

    def _last_axis_mean(self, node: onnx.NodeProto, x: str) -> bool:
        """A ReduceMean over only the last axis of `x`, keeping it (axes as attribute or as input)."""
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if attrs.get("keepdims", 1) != 1 or attrs.get("noop_with_empty_axes", 0):
            return False
        axes = attrs.get("axes")
        if axes is None and len(node.input) > 1:
            value = self.constant(node.input[1])
            axes = None if value is None else [int(a) for a in value.reshape(-1)]
        rank = len(self.types[x].shape.dim) if x in self.types else None
        return axes is not None and rank is not None and [a % rank for a in axes] == [rank - 1]

    def _affine_tail(self, normed: str, length: int) -> tuple[str, str | None, str | None, list[int]]:
        """(the subgraph's output, gamma, beta, the tail's node ids): Mul by a constant of shape [length], then
        Add of one, both optional (beta only after gamma)."""
        mul = self._only_consumer(normed, "Mul")
        gamma = mul and self._vector_operand(mul[1], normed, length)
        if not gamma:
            return normed, None, None, []
        add = self._only_consumer(mul[1].output[0], "Add")
        beta = add and self._vector_operand(add[1], mul[1].output[0], length)
        if not beta:
            return mul[1].output[0], gamma, None, [mul[0]]
        return add[1].output[0], gamma, beta, [mul[0], add[0]]

    def _only_consumer(self, name: str, op: str) -> tuple[int, onnx.NodeProto] | None:
        users = self.consumers.get(name, [])
        if len(users) != 1 or name in self.outputs:
            return None
        node = self.nodes[users[0]]
        return (users[0], node) if node.op_type == op and node.domain in ("", "ai.onnx") else None

    def _vector_operand(self, node: onnx.NodeProto, variable: str, length: int) -> str | None:
        """The other input of a binary node when it is a float32 constant of shape [length]."""
        others = [name for name in node.input if name != variable]
        if len(node.input) != 2 or len(others) != 1:
            return None
        value = self.constant(others[0])
        ok = value is not None and value.dtype == np.float32 and value.shape == (length,)
        return others[0] if ok else None
