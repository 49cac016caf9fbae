"""Small forward models to train, built with onnx.helper: an MLP, a CNN, a residual
CNN (ResNet-style) and a transformer encoder.

Why here: tests and the swap benchmark need training steps that compile in
seconds and use only ops whose gradients TVM registers (MatMul, Conv, MaxPool,
ReduceMean, Softmax, Relu, Transpose, Reshape...). Every model ends in logits
(no Softmax): the cross-entropy loss applies log-softmax itself. Weights are
seeded and He-scaled so activations stay O(1).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

from graphopt.examples.models import IR_VERSION, OPSET, OnnxModelBuilder


def _finish(b: OnnxModelBuilder, name: str, inputs: list[tuple[str, list[int]]], out: str) -> onnx.ModelProto:
    graph = helper.make_graph(
        b.nodes, name, [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)], initializer=b.inits)
    model = helper.make_model(graph, ir_version=IR_VERSION, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="graphopt.train")
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    onnx.checker.check_model(model, full_check=True)
    return model


def mlp(batch: int = 8, features: int = 16, hidden: tuple[int, ...] = (32, 32), classes: int = 4,
        seed: int = 0) -> onnx.ModelProto:
    """Gemm/ReLU stack: x[batch, features] -> logits[batch, classes]."""
    b = OnnxModelBuilder(seed)
    x, width = "x", features
    for h in hidden:
        w = b.he("w", (width, h), width)
        (y,) = b.op("MatMul", [x, w])
        (y,) = b.op("Add", [y, b.bias("b", h)])
        (x,) = b.op("Relu", [y])
        width = h
    (y,) = b.op("MatMul", [x, b.he("w", (width, classes), width)])
    b.op("Add", [y, b.bias("b", classes)], out="logits")
    return _finish(b, "mlp", [("x", [batch, features])], "logits")


def cnn(batch: int = 2, channels: int = 3, size: int = 8, width: int = 8, classes: int = 4,
        seed: int = 0) -> onnx.ModelProto:
    """conv-relu-maxpool-conv-relu-global-mean-linear: a CNN in miniature."""
    b = OnnxModelBuilder(seed)
    y = b.conv("x", channels, width, 3)
    (y,) = b.op("MaxPool", [y], kernel_shape=[2, 2], strides=[2, 2])
    y = b.conv(y, width, 2 * width, 3)
    (y,) = b.op("ReduceMean", [y], axes=[2, 3], keepdims=0)
    (y,) = b.op("MatMul", [y, b.he("w", (2 * width, classes), 2 * width)])
    b.op("Add", [y, b.bias("b", classes)], out="logits")
    return _finish(b, "cnn", [("x", [batch, channels, size, size])], "logits")


def _layer_norm(b: OnnxModelBuilder, x: str, dim: int) -> str:
    """LayerNorm from primitives (TVM has no layer_norm gradient): (x - mean) / sqrt(var + eps) * g + beta."""
    (mean,) = b.op("ReduceMean", [x], axes=[-1], keepdims=1)
    (centered,) = b.op("Sub", [x, mean])
    (square,) = b.op("Mul", [centered, centered])
    (var,) = b.op("ReduceMean", [square], axes=[-1], keepdims=1)
    (var,) = b.op("Add", [var, b.fixed("eps", np.array(1e-5, np.float32))])
    (std,) = b.op("Sqrt", [var])
    (normed,) = b.op("Div", [centered, std])
    (scaled,) = b.op("Mul", [normed, b.const("gamma", np.ones(dim, np.float32))])
    return b.op("Add", [scaled, b.const("beta", np.zeros(dim, np.float32))])[0]


def _linear(b: OnnxModelBuilder, x: str, d_in: int, d_out: int) -> str:
    (y,) = b.op("MatMul", [x, b.he("w", (d_in, d_out), d_in)])
    return b.op("Add", [y, b.bias("b", d_out)])[0]


def _attention(b: OnnxModelBuilder, x: str, batch: int, seq: int, dim: int, heads: int) -> str:
    hd = dim // heads
    split = b.const("shape", np.array([batch, seq, heads, hd], np.int64))
    parts = []
    for perm in ([0, 2, 1, 3], [0, 2, 3, 1], [0, 2, 1, 3]):  # q, k transposed, v
        (h,) = b.op("Reshape", [_linear(b, x, dim, dim), split])
        parts.append(b.op("Transpose", [h], perm=perm)[0])
    q, k, v = parts
    (scores,) = b.op("MatMul", [q, k])
    (scores,) = b.op("Mul", [scores, b.fixed("scale", np.array(1.0 / np.sqrt(hd), np.float32))])
    (probs,) = b.op("Softmax", [scores], axis=-1)
    (ctx,) = b.op("MatMul", [probs, v])
    (ctx,) = b.op("Transpose", [ctx], perm=[0, 2, 1, 3])
    (ctx,) = b.op("Reshape", [ctx, b.const("shape", np.array([batch, seq, dim], np.int64))])
    return _linear(b, ctx, dim, dim)


def transformer(batch: int = 2, seq: int = 8, dim: int = 16, heads: int = 2, layers: int = 2,
                classes: int = 4, seed: int = 0) -> onnx.ModelProto:
    """Pre-norm encoder layers (attention + ReLU MLP, residuals), mean-pooled to logits."""
    b = OnnxModelBuilder(seed)
    x = "x"
    for _ in range(layers):
        (x,) = b.op("Add", [x, _attention(b, _layer_norm(b, x, dim), batch, seq, dim, heads)])
        (h,) = b.op("Relu", [_linear(b, _layer_norm(b, x, dim), dim, 4 * dim)])
        (x,) = b.op("Add", [x, _linear(b, h, 4 * dim, dim)])
    (pooled,) = b.op("ReduceMean", [x], axes=[1], keepdims=0)
    (y,) = b.op("MatMul", [pooled, b.he("w", (dim, classes), dim)])
    b.op("Add", [y, b.bias("b", classes)], out="logits")
    return _finish(b, "transformer", [("x", [batch, seq, dim])], "logits")


def _conv_bn(b: OnnxModelBuilder, x: str, c_in: int, c_out: int, k: int, stride: int, norm: bool) -> str:
    """k x k convolution ('same' padding, `stride`), then, with `norm`, BatchNormalization in its
    inference form (a per-channel scale and shift): the elementwise kernels a real ResNet adds."""
    w = b.he("w", (c_out, c_in, k, k), c_in * k * k)
    (y,) = b.op("Conv", [x, w, b.bias("b", c_out)], kernel_shape=[k, k], pads=[k // 2] * 4, strides=[stride] * 2)
    if not norm:
        return y
    (y,) = b.op("Mul", [y, b.const("gamma", np.ones((c_out, 1, 1), np.float32))])
    return b.op("Add", [y, b.const("beta", np.zeros((c_out, 1, 1), np.float32))])[0]


def _basic_block(b: OnnxModelBuilder, x: str, c_in: int, c_out: int, stride: int, norm: bool) -> str:
    """conv-bn-relu-conv-bn, plus the input (a strided 1x1 projection where the shape changes), then ReLU."""
    (h,) = b.op("Relu", [_conv_bn(b, x, c_in, c_out, 3, stride, norm)])
    h = _conv_bn(b, h, c_out, c_out, 3, 1, norm)
    shortcut = x if stride == 1 and c_in == c_out else _conv_bn(b, x, c_in, c_out, 1, stride, norm)
    (y,) = b.op("Add", [h, shortcut])
    return b.op("Relu", [y])[0]


def resnet(batch: int = 2, channels: int = 3, size: int = 8, widths: tuple[int, ...] = (8, 16, 32),
           blocks: int = 3, classes: int = 4, norm: bool = True, seed: int = 0) -> onnx.ModelProto:
    """A CIFAR-style ResNet: a 3x3 stem, `blocks` basic blocks per stage (each stage after the
    first halves the image), global mean, linear. With the defaults, 1 + 2 x 9 + 2 = 21 convolutions.

    Why: the swap benchmark needs a deep CNN with many activations to rematerialize (issue #21:
    small nets have little). Its strided 1x1 projections' weight gradients found a GEMM schedule
    bug (graphopt.kernels.schedules.gemm_match._unit_steps); tests/train/test_train_step.py checks its
    gradients against finite differences."""
    b = OnnxModelBuilder(seed)
    (x,) = b.op("Relu", [_conv_bn(b, "x", channels, widths[0], 3, 1, norm)])
    width = widths[0]
    for stage, w in enumerate(widths):
        for block in range(blocks):
            x = _basic_block(b, x, width, w, 2 if stage and not block else 1, norm)
            width = w
    (y,) = b.op("ReduceMean", [x], axes=[2, 3], keepdims=0)
    (y,) = b.op("MatMul", [y, b.he("w", (width, classes), width)])
    b.op("Add", [y, b.bias("b", classes)], out="logits")
    return _finish(b, "resnet", [("x", [batch, channels, size, size])], "logits")


MODELS = {"mlp": mlp, "cnn": cnn, "transformer": transformer, "resnet": resnet}


def light_cnn(name: str = "squeezenet", size: int = 64, batch: int = 1, seed: int = 0) -> onnx.ModelProto:
    """One of the onnx package's light CNNs (random weights) as a trainable model.

    Why the surgery: the file pins a 224x224 input and ends in Softmax over
    [N, 1000, 1, 1]; training wants a smaller image (fast) and logits [N, 1000].
    Works for fully-convolutional nets ending in global pooling (squeezenet).
    """
    from graphopt.examples.real_models import light_model

    model = light_model(name, seed)
    graph = model.graph
    dims = graph.input[0].type.tensor_type.shape.dim
    dims[0].dim_value, dims[2].dim_value, dims[3].dim_value = batch, size, size
    producer = {o: n for n in graph.node for o in n.output}
    tail = producer[graph.output[0].name]
    if tail.op_type == "Reshape":  # the opset converter's Flatten -> Softmax -> Reshape back
        tail = producer[tail.input[0]]
    if tail.op_type == "Softmax":
        logits = producer[tail.input[0]]
        keep = [n for n in graph.node if n is not tail and n.output[0] not in (graph.output[0].name,)]
        keep = [n for n in keep if n.op_type != "Shape" or any(n.output[0] in m.input for m in keep)]
        logits.output[0] = graph.output[0].name
        graph.ClearField("node")
        graph.node.extend(keep)
    del graph.value_info[:]
    out = graph.output[0]
    out.type.tensor_type.ClearField("shape")
    return onnx.shape_inference.infer_shapes(model)
