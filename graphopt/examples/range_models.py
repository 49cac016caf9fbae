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
