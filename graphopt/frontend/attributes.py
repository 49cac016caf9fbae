"""Attribute rules that onnx.checker and ONNX shape inference do not enforce, checked once the
input shapes are inferred.

Why: a model that breaks one is invalid (ONNX Runtime and onnx.reference refuse it), yet it passes
the checker and strict shape inference, and TVM's importer then builds *something* from it: a
wrong answer where an error is due. Each rule here was found that way (tests/test_fuzz.py):

    Transpose  `perm`, when given, is a permutation of 0 .. rank-1 of its input
               (a short or empty perm compiled to an arbitrary transposition)
"""

from __future__ import annotations

import onnx

from graphopt.errors import ModelLoadError


def check_attributes(model: onnx.ModelProto) -> None:
    """ModelLoadError (one line, naming the node) for the first node that breaks a rule above."""
    ranks = _ranks(model.graph)
    for node in model.graph.node:
        if node.op_type == "Transpose" and node.domain in ("", "ai.onnx") and node.input:
            _check_perm(node, ranks.get(node.input[0]))


def _check_perm(node: onnx.NodeProto, rank: int | None) -> None:
    perm = next((a for a in node.attribute if a.name == "perm"), None)
    if perm is None or rank is None:
        return
    values = list(perm.ints)
    if sorted(values) != list(range(rank)):
        name = node.name or (node.output[0] if node.output else "?")
        raise ModelLoadError(f"invalid ONNX model: Transpose node {name!r} has perm {values}, "
                             f"which is not a permutation of its input's {rank} axes")


def _ranks(graph: onnx.GraphProto) -> dict[str, int]:
    """Rank of every tensor whose shape is known (inputs, initializers, inferred value_info)."""
    ranks = {t.name: len(t.dims) for t in graph.initializer}
    for vi in (*graph.input, *graph.value_info, *graph.output):
        tensor_type = vi.type.tensor_type
        if vi.type.HasField("tensor_type") and tensor_type.HasField("shape"):
            ranks[vi.name] = len(tensor_type.shape.dim)
    return ranks
