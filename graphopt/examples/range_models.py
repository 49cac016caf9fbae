"""Small models with symbolic dims (dim_params "batch", "seq"), built with onnx.helper, for the
shape-range tests and benchmark (graphopt.frontend.ranges, benchmarks/shape_range.py). Weights are seeded random, not the 0.02 of onnx's
sample models, so a wrong kernel cannot agree with ONNX Runtime by accident."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def _weight(name: str, shape: tuple[int, ...], rng: np.random.Generator) -> onnx.TensorProto:
    return numpy_helper.from_array((rng.standard_normal(shape) * 0.1).astype(np.float32), name)


def _model(nodes: list, name: str, inputs: list, outputs: list, weights: list) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, name, inputs, outputs, weights)
    return helper.make_model(graph, ir_version=10, opset_imports=[helper.make_opsetid("", 17)])


def batch_mlp(seed: int = 0) -> onnx.ModelProto:
    """x[batch, 64] -> MatMul+Add+Relu -> MatMul+Add -> y[batch, 10]."""
    rng = np.random.default_rng(seed)
    weights = [_weight("w1", (64, 128), rng), _weight("b1", (128,), rng), _weight("w2", (128, 10), rng),
               _weight("b2", (10,), rng)]
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"]), helper.make_node("Add", ["h", "b1"], ["hb"]),
             helper.make_node("Relu", ["hb"], ["r"]), helper.make_node("MatMul", ["r", "w2"], ["o"]),
             helper.make_node("Add", ["o", "b2"], ["y"])]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 64])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 10])
    return _model(nodes, "batch_mlp", [x], [y], weights)


def batch_cnn(seed: int = 1, size: int = 16, channels: tuple[int, int] = (8, 16)) -> onnx.ModelProto:
    """x[batch, 3, size, size] -> Conv+Relu -> MaxPool -> Conv+Relu -> GlobalAveragePool -> Gemm -> y[batch, 10]."""
    rng = np.random.default_rng(seed)
    c1, c2 = channels
    weights = [_weight("c1", (c1, 3, 3, 3), rng), _weight("cb1", (c1,), rng), _weight("c2", (c2, c1, 3, 3), rng),
               _weight("fc", (c2, 10), rng), _weight("fb", (10,), rng)]
    nodes = [helper.make_node("Conv", ["x", "c1", "cb1"], ["a"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["a"], ["ar"]),
             helper.make_node("MaxPool", ["ar"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Conv", ["p", "c2"], ["b"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["b"], ["br"]),
             helper.make_node("GlobalAveragePool", ["br"], ["g"]),
             helper.make_node("Flatten", ["g"], ["f"]),
             helper.make_node("Gemm", ["f", "fc", "fb"], ["y"])]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, size, size])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 10])
    return _model(nodes, "batch_cnn", [x], [y], weights)


def two_inputs(seed: int = 2) -> onnx.ModelProto:
    """a[batch, 8] + b[batch, 8] -> MatMul -> y[batch, 4]: two inputs sharing the symbol `batch`."""
    rng = np.random.default_rng(seed)
    nodes = [helper.make_node("Add", ["a", "b"], ["s"]), helper.make_node("MatMul", ["s", "w"], ["y"])]
    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, ["batch", 8])
    b = helper.make_tensor_value_info("b", TensorProto.FLOAT, ["batch", 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])
    return _model(nodes, "two_inputs", [a, b], [y], [_weight("w", (8, 4), rng)])


def _const(name: str, values: list[int]) -> onnx.TensorProto:
    return numpy_helper.from_array(np.array(values, dtype=np.int64), name)


def encoder_block(seed: int = 3, dim: int = 32, heads: int = 4) -> onnx.ModelProto:
    """x[batch, seq, 32] -> one pre-norm transformer encoder block (4-head attention, ReLU MLP) -> y."""
    rng = np.random.default_rng(seed)
    head = dim // heads
    weights = [_weight(n, (dim, dim), rng) for n in ("wq", "wk", "wv", "wo")]
    weights += [_weight("w1", (dim, 2 * dim), rng), _weight("w2", (2 * dim, dim), rng),
                numpy_helper.from_array(np.ones(dim, np.float32), "g"),
                numpy_helper.from_array(np.zeros(dim, np.float32), "beta"),
                numpy_helper.from_array(np.array(1 / np.sqrt(head), np.float32), "scale"),
                _const("split_heads", [0, 0, heads, head]), _const("merge_heads", [0, 0, dim])]
    node = helper.make_node
    nodes = [node("LayerNormalization", ["x", "g", "beta"], ["n1"], axis=-1)]
    for name in ("q", "k", "v"):
        nodes += [node("MatMul", ["n1", f"w{name}"], [f"{name}2"]),
                  node("Reshape", [f"{name}2", "split_heads"], [f"{name}4"]),
                  node("Transpose", [f"{name}4"], [f"{name}h"], perm=[0, 2, 3, 1] if name == "k" else [0, 2, 1, 3])]
    nodes += [node("MatMul", ["qh", "kh"], ["scores"]), node("Mul", ["scores", "scale"], ["scaled"]),
              node("Softmax", ["scaled"], ["attn"], axis=-1), node("MatMul", ["attn", "vh"], ["ctx"]),
              node("Transpose", ["ctx"], ["ctx_t"], perm=[0, 2, 1, 3]),
              node("Reshape", ["ctx_t", "merge_heads"], ["ctx2"]), node("MatMul", ["ctx2", "wo"], ["proj"]),
              node("Add", ["x", "proj"], ["r1"]), node("LayerNormalization", ["r1", "g", "beta"], ["n2"], axis=-1),
              node("MatMul", ["n2", "w1"], ["f1"]), node("Relu", ["f1"], ["f1r"]),
              node("MatMul", ["f1r", "w2"], ["f2"]), node("Add", ["r1", "f2"], ["y"])]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", dim])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "seq", dim])
    return _model(nodes, "encoder_block", [x], [y], weights)


def _layer_norm(nodes: list, weights: list, x: str, prefix: str, dim: int) -> str:
    """LayerNorm from primitives, as graphopt.train.models (and so benchmarks.model_zoo's encoder) builds it."""
    node = helper.make_node
    weights += [numpy_helper.from_array(np.array(1e-5, np.float32), f"{prefix}_eps"),
                numpy_helper.from_array(np.ones(dim, np.float32), f"{prefix}_g"),
                numpy_helper.from_array(np.zeros(dim, np.float32), f"{prefix}_b")]
    nodes += [node("ReduceMean", [x], [f"{prefix}_mean"], axes=[-1], keepdims=1),
              node("Sub", [x, f"{prefix}_mean"], [f"{prefix}_c"]),
              node("Mul", [f"{prefix}_c", f"{prefix}_c"], [f"{prefix}_sq"]),
              node("ReduceMean", [f"{prefix}_sq"], [f"{prefix}_var"], axes=[-1], keepdims=1),
              node("Add", [f"{prefix}_var", f"{prefix}_eps"], [f"{prefix}_ve"]),
              node("Sqrt", [f"{prefix}_ve"], [f"{prefix}_std"]),
              node("Div", [f"{prefix}_c", f"{prefix}_std"], [f"{prefix}_n"]),
              node("Mul", [f"{prefix}_n", f"{prefix}_g"], [f"{prefix}_s"]),
              node("Add", [f"{prefix}_s", f"{prefix}_b"], [f"{prefix}_out"])]
    return f"{prefix}_out"


def _linear(nodes: list, weights: list, x: str, name: str, shape: tuple[int, int], rng: np.random.Generator) -> str:
    weights += [_weight(f"{name}_w", shape, rng), _weight(f"{name}_b", (shape[1],), rng)]
    nodes += [helper.make_node("MatMul", [x, f"{name}_w"], [f"{name}_mm"]),
              helper.make_node("Add", [f"{name}_mm", f"{name}_b"], [name])]
    return name


def _encoder_layer(nodes: list, weights: list, x: str, layer: int, dim: int, heads: int,
                   rng: np.random.Generator) -> str:
    """One pre-norm layer of benchmarks.model_zoo's encoder: attention + residual, ReLU MLP x4 + residual."""
    node, p = helper.make_node, f"l{layer}"
    n1 = _layer_norm(nodes, weights, x, f"{p}_ln1", dim)
    parts = []
    for name, perm in (("q", [0, 2, 1, 3]), ("k", [0, 2, 3, 1]), ("v", [0, 2, 1, 3])):
        proj = _linear(nodes, weights, n1, f"{p}_{name}", (dim, dim), rng)
        nodes += [node("Reshape", [proj, "split_heads"], [f"{proj}4"]),
                  node("Transpose", [f"{proj}4"], [f"{proj}h"], perm=perm)]
        parts.append(f"{proj}h")
    nodes += [node("MatMul", parts[:2], [f"{p}_scores"]), node("Mul", [f"{p}_scores", "scale"], [f"{p}_scaled"]),
              node("Softmax", [f"{p}_scaled"], [f"{p}_attn"], axis=-1),
              node("MatMul", [f"{p}_attn", parts[2]], [f"{p}_ctx"]),
              node("Transpose", [f"{p}_ctx"], [f"{p}_ctxt"], perm=[0, 2, 1, 3]),
              node("Reshape", [f"{p}_ctxt", "merge_heads"], [f"{p}_ctx2"])]
    out = _linear(nodes, weights, f"{p}_ctx2", f"{p}_o", (dim, dim), rng)
    nodes.append(node("Add", [x, out], [f"{p}_r1"]))
    hidden = _linear(nodes, weights, _layer_norm(nodes, weights, f"{p}_r1", f"{p}_ln2", dim), f"{p}_f1",
                     (dim, 4 * dim), rng)
    nodes.append(node("Relu", [hidden], [f"{p}_f1r"]))
    down = _linear(nodes, weights, f"{p}_f1r", f"{p}_f2", (4 * dim, dim), rng)
    nodes.append(node("Add", [f"{p}_r1", down], [f"{p}_out"]))
    return f"{p}_out"


def transformer_encoder(seed: int = 4, layers: int = 4, dim: int = 256, heads: int = 4,
                        classes: int = 10) -> onnx.ModelProto:
    """x[batch, seq, dim] -> `layers` pre-norm encoder layers -> mean over seq -> logits[batch, classes].

    The structure of benchmarks.model_zoo's `encoder` (graphopt.train.models.transformer: 4 layers, dim 256,
    4 heads, ReLU MLP x4, LayerNorm from primitives), with batch and seq as symbols: its head split and merge
    copy the leading dims (Reshape with 0), where the zoo's model bakes them in."""
    rng = np.random.default_rng(seed)
    head = dim // heads
    weights = [numpy_helper.from_array(np.array(1 / np.sqrt(head), np.float32), "scale"),
               _const("split_heads", [0, 0, heads, head]), _const("merge_heads", [0, 0, dim])]
    nodes: list = []
    x = "x"
    for layer in range(layers):
        x = _encoder_layer(nodes, weights, x, layer, dim, heads, rng)
    nodes.append(helper.make_node("ReduceMean", [x], ["pooled"], axes=[1], keepdims=0))
    logits = _linear(nodes, weights, "pooled", "head", (dim, classes), rng)
    nodes.append(helper.make_node("Identity", [logits], ["y"]))
    x_info = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", dim])
    y_info = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", classes])
    return _model(nodes, "transformer_encoder", [x_info], [y_info], weights)
