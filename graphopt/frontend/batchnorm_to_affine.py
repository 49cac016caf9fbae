"""Inference BatchNormalization with constant statistics as Mul + Add.

Why: onnxslim folds a BatchNormalization into the convolution before it; one that
follows a Concat (DenseNet's pre-activation: BN -> ReLU -> Conv) stays, and TVM 0.27
legalizes it as (x - mean) / sqrt(var + eps) * scale + bias, evaluated per element
(a square root and a division for every value) and split over two kernels. With the
per-channel factor s = scale / sqrt(var + eps) and shift bias - mean * s computed once
here (float64, stored as float32), what is left is x * s + shift, which FuseOps puts
in one kernel with the ReLU after it. DenseNet-121 has 58 such layers.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from graphopt.transforms.result import RewriteResult


def batchnorms_to_affine(model: onnx.ModelProto) -> RewriteResult[onnx.ModelProto]:
    """A copy of `model` with every eligible BatchNormalization rewritten (record: how
    many); not modified, the model itself, when none is. Eligible: inference form (one output), its
    four parameters initializers, the input's rank known."""
    initializers = {t.name: t for t in model.graph.initializer}
    ranks = _ranks(model)
    if not any(_eligible(n, initializers, ranks) for n in model.graph.node):
        return RewriteResult(model, False, {"rewritten": 0})
    rewritten = onnx.ModelProto()
    rewritten.CopyFrom(model)
    graph = rewritten.graph
    nodes, count = [], 0
    for node in graph.node:
        if not _eligible(node, initializers, ranks):
            nodes.append(node)
            continue
        factor, shift = _affine(node, initializers, ranks[node.input[0]])
        graph.initializer.extend([factor, shift])
        scaled = f"{node.output[0]}__bn_scaled"
        nodes += [helper.make_node("Mul", [node.input[0], factor.name], [scaled], name=f"{node.name}__mul"),
                  helper.make_node("Add", [scaled, shift.name], [node.output[0]], name=f"{node.name}__add")]
        count += 1
    del graph.node[:]
    graph.node.extend(nodes)
    _drop_unused_initializers(graph)
    return RewriteResult(rewritten, True, {"rewritten": count})


def _eligible(node: onnx.NodeProto, initializers: dict, ranks: dict) -> bool:
    if node.op_type != "BatchNormalization" or node.domain not in ("", "ai.onnx"):
        return False
    training = any(a.name == "training_mode" and a.i for a in node.attribute)
    return (not training and len([o for o in node.output if o]) == 1 and len(node.input) == 5
            and all(name in initializers for name in node.input[1:]) and ranks.get(node.input[0], 0) >= 2)


def _affine(node: onnx.NodeProto, initializers: dict, rank: int) -> tuple[onnx.TensorProto, onnx.TensorProto]:
    """(factor, shift) initializers shaped [C, 1, ...] to broadcast over N x C x ..."""
    stored = [numpy_helper.to_array(initializers[n]) for n in node.input[1:]]
    scale, bias, mean, var = (a.astype(np.float64) for a in stored)
    epsilon = next((a.f for a in node.attribute if a.name == "epsilon"), 1e-5)
    factor = scale / np.sqrt(var + epsilon)
    shift = bias - mean * factor
    shape = (-1,) + (1,) * (rank - 2)
    dtype = stored[0].dtype
    base = node.name or node.output[0]
    return (numpy_helper.from_array(factor.reshape(shape).astype(dtype), f"{base}__bn_factor"),
            numpy_helper.from_array(shift.reshape(shape).astype(dtype), f"{base}__bn_shift"))


def _ranks(model: onnx.ModelProto) -> dict[str, int]:
    """Tensor name -> rank, from the shapes the graph declares (inferred ones included)."""
    ranks = {}
    for vi in (*model.graph.input, *model.graph.value_info, *model.graph.output):
        if vi.type.tensor_type.HasField("shape"):
            ranks[vi.name] = len(vi.type.tensor_type.shape.dim)
    return ranks


def _drop_unused_initializers(graph: onnx.GraphProto) -> None:
    """The statistics the rewritten nodes read are no longer needed (not stored in the artifact)."""
    used = {name for node in graph.node for name in node.input}
    used |= {vi.name for vi in graph.output}
    kept = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
