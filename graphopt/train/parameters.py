"""Which float initializers a training step trains, and which it keeps as they are.

Why: folding (onnxslim) turns Constant nodes, and whatever is computed from them
alone, into initializers, and a training step trains every float initializer. So
an attention scale `Div(x, Sqrt(Constant 64))` or a LayerNorm epsilon got a
gradient and an SGD update: the "constant" drifted from step to step (a silent
change of the user's function), and its gradient kept the tensor it multiplies
alive through the whole backward (each layer's 64 MiB attention scores in the
swap benchmark's transformer). Here a value the user's model computes from
constants only stays fixed, and `frozen` names weights the user wants fixed too
(ONNX Runtime's training artifacts call them frozen_params).

Only names the original model defines as constants are fixed: a folded
initializer with a name the original does not have stays trained, as before, so
that no weight is ever frozen by a guess.
"""

from __future__ import annotations

import onnx

from graphopt.errors import InputError

FLOATS = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE, onnx.TensorProto.BFLOAT16)


def constant_names(model: onnx.ModelProto) -> set[str]:
    """Tensors of the main graph computed from Constant nodes and non-float initializers
    alone (no graph input, no float initializer, no subgraph: those may read weights)."""
    graph = model.graph
    constant = {t.name for t in graph.initializer if t.data_type not in FLOATS}
    constant -= {i.name for i in graph.input}  # an initializer that is also an input may be fed
    for node in graph.node:  # topological (onnx.checker's rule)
        has_subgraph = any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute)
        reads = [i for i in node.input if i]
        if not has_subgraph and (node.op_type == "Constant" or (reads and all(i in constant for i in reads))):
            constant.update(o for o in node.output if o)
    return constant


def fixed_parameters(original: onnx.ModelProto, prepared: onnx.ModelProto, frozen: tuple[str, ...]) -> set[str]:
    """Float initializers of `prepared` (the folded model) to keep fixed: those the original
    computes from constants, and the `frozen` weights; an unknown frozen name is an InputError."""
    weights = {t.name for t in original.graph.initializer if t.data_type in FLOATS}
    kept = {t.name for t in prepared.graph.initializer if t.data_type in FLOATS}
    for name in frozen:
        if name not in weights:
            raise InputError(f"--frozen {name}: the model has no float initializer of that name")
        if name not in kept:
            raise InputError(f"--frozen {name}: folding (onnxslim) merged or renamed it, so it cannot be kept "
                             "apart")
    return (constant_names(original) & kept) | set(frozen)
