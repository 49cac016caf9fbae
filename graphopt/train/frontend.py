"""ONNX-side preparation of a forward model for training.

Why: TVM's Gradient needs every op to have a registered gradient and every
parameter to be a float tensor. Inference-only details get in the way:
* non-float initializers (Reshape shapes, indices) would become parameters the
  optimizer refuses: they become Constant nodes;
* Dropout is an identity at inference and has no gradient here: removed;
* GlobalAveragePool imports as adaptive_avg_pool2d (no gradient): rewritten to
  the equal ReduceMean over H, W;
* a final Softmax is dropped for cross_entropy, whose loss applies log-softmax
  to the logits itself (keeping it would apply softmax twice);
* float initializers that are not weights (`fixed`: graphopt.train.parameters)
  become Constant nodes too, so they get no gradient and no update.
"""

from __future__ import annotations

import onnx
from onnx import helper

from graphopt.train.parameters import FLOATS


def for_training(model: onnx.ModelProto, loss: str, fixed: set[str] = frozenset()) -> onnx.ModelProto:
    """A copy of `model` ready for relax.transform.Gradient; see the module docstring."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    constants = [helper.make_node("Constant", [], [t.name], value=t) for t in graph.initializer
                 if t.data_type not in FLOATS or t.name in fixed]
    weights = [t for t in graph.initializer if t.data_type in FLOATS and t.name not in fixed]
    rename: dict[str, str] = {}
    nodes = []
    for node in graph.node:
        if node.op_type == "Dropout":
            rename[node.output[0]] = node.input[0]
            continue
        if node.op_type == "GlobalAveragePool":
            node = helper.make_node("ReduceMean", list(node.input), list(node.output), name=node.name,
                                    axes=[2, 3], keepdims=1)
        nodes.append(node)
    if loss == "cross_entropy" and nodes and nodes[-1].op_type == "Softmax":
        last = nodes.pop()
        rename[last.output[0]] = last.input[0]
    _apply_renames(nodes, graph, rename)
    graph.ClearField("initializer")
    graph.initializer.extend(weights)
    graph.ClearField("node")
    graph.node.extend(constants + nodes)
    del graph.value_info[:]
    return out


def _apply_renames(nodes: list[onnx.NodeProto], graph: onnx.GraphProto, rename: dict[str, str]) -> None:
    """Reconnects consumers of removed nodes; a removed graph output keeps its name."""
    def resolve(name: str) -> str:
        while name in rename:
            name = rename[name]
        return name

    outputs = {o.name for o in graph.output}
    for out in outputs & set(rename):
        source = resolve(out)
        for node in nodes:  # the producer of `source` now writes the output name directly
            node.output[:] = [out if o == source else o for o in node.output]
            node.input[:] = [out if i == source else i for i in node.input]
        rename = {k: v for k, v in rename.items() if k != out}
    for node in nodes:
        node.input[:] = [resolve(i) for i in node.input]
