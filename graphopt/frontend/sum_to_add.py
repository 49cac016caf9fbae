"""ONNX `Sum` nodes as left-to-right chains of `Add`.

Why: TVM 0.27's importer turns Sum into broadcast_to + stack + sum, a kernel of its
own that copies every input into a stacked tensor and reduces it, and that nothing
fuses with. An Add is elementwise: FuseOps puts it into the producing convolution's
epilogue (ResNet's residual connection then runs as conv + add + relu in one
kernel, as ONNX Runtime's fused Conv does), and the stacked copy disappears.
Same result: Sum adds its inputs left to right with multidirectional broadcasting,
which is what ((a + b) + c) computes.
"""

from __future__ import annotations

import onnx
from onnx import helper

from graphopt.transforms.result import RewriteResult


def sums_to_adds(model: onnx.ModelProto) -> RewriteResult[onnx.ModelProto]:
    """A copy of `model` with every Sum of the main graph rewritten (record: how many);
    not modified, the model itself, when there is none."""
    if not any(node.op_type == "Sum" and node.domain in ("", "ai.onnx") for node in model.graph.node):
        return RewriteResult(model, False, {"rewritten": 0})
    rewritten = onnx.ModelProto()
    rewritten.CopyFrom(model)
    nodes, count = [], 0
    for node in rewritten.graph.node:
        if node.op_type == "Sum" and node.domain in ("", "ai.onnx"):
            nodes += _as_adds(node)
            count += 1
        else:
            nodes.append(node)
    del rewritten.graph.node[:]
    rewritten.graph.node.extend(nodes)
    return RewriteResult(rewritten, True, {"rewritten": count})


def _as_adds(node: onnx.NodeProto) -> list[onnx.NodeProto]:
    """Sum(x0, ..., xn) -> Add(...Add(Add(x0, x1), x2)..., xn); Sum(x0) -> Identity."""
    inputs, output = list(node.input), node.output[0]
    base = node.name or output
    if len(inputs) == 1:
        return [helper.make_node("Identity", inputs, [output], name=base)]
    adds, running = [], inputs[0]
    for i, operand in enumerate(inputs[1:], start=1):
        last = i == len(inputs) - 1
        result = output if last else f"{output}__sum_partial{i}"
        adds.append(helper.make_node("Add", [running, operand], [result], name=f"{base}__add{i}"))
        running = result
    return adds
