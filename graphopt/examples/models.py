"""Small ONNX models built in code, each shaped to exercise one planning situation.

Why hand-built: tests and demos need models that load instantly, compile in
seconds and make one memory-planning question obvious (parallel branches whose
order changes peak memory, multi-output ops, views that must alias their source).
Weights are seeded and He-scaled (std = sqrt(2 / fan_in)) so activations stay of
order one through ReLU stacks: outputs are finite and not all zero, which makes
numeric comparisons meaningful.

Every model is IR version 10, opset 17: onnx 1.23 would stamp IR 14 by default,
which ONNX Runtime 1.31 refuses.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

IR_VERSION = 10
OPSET = 17


class OnnxModelBuilder:
    """Collects nodes and seeded initializers; names tensors with a running counter.

    Shared with graphopt.train.models, whose training models are built the same way.
    """

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._count = 0

    def fresh(self, stem: str) -> str:
        self._count += 1
        return f"{stem}_{self._count}"

    def const(self, stem: str, value: np.ndarray) -> str:
        name = self.fresh(stem)
        self.inits.append(numpy_helper.from_array(value, name))
        return name

    def fixed(self, stem: str, value: np.ndarray) -> str:
        """A Constant node: a value that is part of the function, not a weight.

        Why apart from `const`: a training step trains every float initializer, so an
        attention scale or a LayerNorm epsilon made with `const` would get a gradient
        and an update (and keep what that gradient reads alive through the backward)."""
        name = self.fresh(stem)
        self.nodes.append(helper.make_node("Constant", [], [name], value=numpy_helper.from_array(value, name)))
        return name

    def he(self, stem: str, shape: tuple[int, ...], fan_in: int) -> str:
        """A weight drawn from N(0, 2 / fan_in): keeps ReLU activations O(1)."""
        value = self.rng.normal(0.0, np.sqrt(2.0 / fan_in), size=shape).astype(np.float32)
        return self.const(stem, value)

    def bias(self, stem: str, size: int) -> str:
        return self.const(stem, self.rng.normal(0.0, 0.1, size=(size,)).astype(np.float32))

    def op(self, op_type: str, inputs: list[str], n_out: int = 1, out: str | None = None,
           **attrs) -> list[str]:
        """Append a node; `out` names its (single) output, else names are generated."""
        outs = [out] if out else [self.fresh(op_type.lower()) for _ in range(n_out)]
        node = helper.make_node(op_type, inputs, outs, name=self.fresh(op_type), **attrs)
        self.nodes.append(node)
        return outs

    def conv(self, x: str, c_in: int, c_out: int, k: int, relu: bool = True,
             out: str | None = None) -> str:
        """k x k convolution, 'same' padding, bias, optional ReLU."""
        w = self.he("w", (c_out, c_in, k, k), c_in * k * k)
        (y,) = self.op("Conv", [x, w, self.bias("b", c_out)], out=None if relu else out,
                       kernel_shape=[k, k], pads=[k // 2] * 4)
        return self.op("Relu", [y], out=out)[0] if relu else y

    def model(self, name: str, inputs: list[tuple[str, list[int]]], outputs: list[str]):
        """Wrap up as a checked ModelProto; output shapes are left to inference."""
        graph = helper.make_graph(
            self.nodes, name,
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs],
            initializer=self.inits,
        )
        model = helper.make_model(graph, ir_version=IR_VERSION,
                                  opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="graphopt.examples")
        model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
        onnx.checker.check_model(model, full_check=True)
        return model


def residual_branch_net(seed: int = 0) -> onnx.ModelProto:
    """The demo: stem conv, a residual block (Add), two parallel branches
    concatenated, max and global pooling, Flatten and Gemm. Input 'input' 1x3x32x32.

    Each branch widens (1x1 conv to 64 channels) then narrows (3x3 conv to 8), and
    the file lists both widenings first, as exporters often do: in that order both
    wide tensors are live at once, which reordering undoes.
    """
    b = OnnxModelBuilder(seed)
    stem = b.conv("input", 3, 16, 3)
    body = b.conv(b.conv(stem, 16, 16, 3), 16, 16, 3, relu=False)
    res = b.op("Relu", b.op("Add", [body, stem]))[0]
    wide_left, wide_right = b.conv(res, 16, 64, 1), b.conv(res, 16, 64, 1)
    left, right = b.conv(wide_left, 64, 8, 3), b.conv(wide_right, 64, 8, 3)
    cat = b.op("Concat", [left, right], axis=1)[0]
    pooled = b.op("MaxPool", [cat], kernel_shape=[2, 2], strides=[2, 2])[0]
    flat = b.op("Flatten", b.op("GlobalAveragePool", [pooled]), axis=1)[0]
    b.op("Gemm", [flat, b.he("fc_w", (10, 16), 16), b.bias("fc_b", 10)], out="logits", transB=1)
    return b.model("residual_branch_net", [("input", [1, 3, 32, 32])], ["logits"])


def parallel_concat(seed: int = 0) -> onnx.ModelProto:
    """Four branches of different cost from one input, concatenated: the order in
    which branches run decides how many branch outputs are live at once.
    """
    b = OnnxModelBuilder(seed)
    x = b.conv("x", 8, 16, 3)
    pooled = b.op("MaxPool", [x], kernel_shape=[3, 3], pads=[1, 1, 1, 1])[0]
    branches = [b.conv(x, 16, 8, 1), b.conv(b.conv(x, 16, 16, 1), 16, 8, 3),
                b.conv(b.conv(x, 16, 4, 1), 4, 8, 5), b.conv(pooled, 16, 8, 1)]
    cat = b.op("Concat", branches, axis=1)[0]
    b.conv(cat, 32, 16, 1, relu=False, out="y")
    return b.model("parallel_concat", [("x", [1, 8, 16, 16])], ["y"])


def split_multi_output(seed: int = 0) -> onnx.ModelProto:
    """A Split with three outputs, each consumed later and one twice: a multi-output
    op whose results have different last uses.
    """
    b = OnnxModelBuilder(seed)
    x = b.conv("x", 12, 12, 3)
    s0, s1, s2 = b.op("Split", [x], n_out=3, axis=1)
    gated = b.op("Mul", [s1, b.op("Sigmoid", [s2])[0]])[0]
    mixed = b.op("Add", [s0, s2])[0]
    cat = b.op("Concat", [b.op("Relu", [s0])[0], gated, mixed], axis=1)[0]
    b.conv(cat, 12, 8, 3, relu=False, out="y")
    return b.model("split_multi_output", [("x", [1, 12, 8, 8])], ["y"])


def reshape_flatten_views(seed: int = 0) -> onnx.ModelProto:
    """Reshape and Flatten views whose source stays live after them: a planner that
    frees the source at the view would let later tensors overwrite the view's bytes.
    """
    b = OnnxModelBuilder(seed)
    r = b.conv("x", 4, 8, 3)
    rows = b.op("Reshape", [r, b.const("shape", np.array([1, 8, 64], np.int64))])[0]
    attn = b.op("Softmax", [rows], axis=-1)[0]
    back = b.op("Reshape", [attn, b.const("shape", np.array([1, 8, 8, 8], np.int64))])[0]
    mixed = b.op("Add", [b.op("Mul", [back, r])[0], r])[0]
    flat = b.op("Flatten", [mixed], axis=1)[0]
    b.op("Gemm", [flat, b.he("fc_w", (512, 10), 512), b.bias("fc_b", 10)], out="y")
    return b.model("reshape_flatten_views", [("x", [1, 4, 8, 8])], ["y"])


def mlp(seed: int = 0) -> onnx.ModelProto:
    """Gemm + Relu, then MatMul + Add + Relu, then Gemm: a plain chain of matmuls."""
    b = OnnxModelBuilder(seed)
    h = b.op("Relu", b.op("Gemm", ["x", b.he("w", (64, 128), 64), b.bias("b", 128)]))[0]
    h = b.op("MatMul", [h, b.he("w", (128, 128), 128)])[0]
    h = b.op("Relu", b.op("Add", [h, b.bias("b", 128)]))[0]
    b.op("Gemm", [h, b.he("w", (128, 10), 128), b.bias("b", 10)], out="y")
    return b.model("mlp", [("x", [4, 64])], ["y"])


def softmax_transpose(seed: int = 0) -> onnx.ModelProto:
    """One attention head: Q, K, V projections, Transpose(K), scaled Softmax(QK^T) V,
    residual Add. Input 'x' is (batch 1, 16 tokens, 32 features).
    """
    b = OnnxModelBuilder(seed)
    dim = 32
    q, k, v = (b.op("MatMul", ["x", b.he(n, (dim, dim), dim)])[0] for n in ("wq", "wk", "wv"))
    k_t = b.op("Transpose", [k], perm=[0, 2, 1])[0]
    scale = b.const("scale", np.array(1.0 / np.sqrt(dim), np.float32))
    scores = b.op("Mul", [b.op("MatMul", [q, k_t])[0], scale])[0]
    probs = b.op("Softmax", [scores], axis=-1)[0]
    b.op("Add", [b.op("MatMul", [probs, v])[0], "x"], out="y")
    return b.model("softmax_transpose", [("x", [1, 16, dim])], ["y"])


EXAMPLES: dict[str, Callable[..., onnx.ModelProto]] = {
    "residual_branch_net": residual_branch_net,
    "parallel_concat": parallel_concat,
    "split_multi_output": split_multi_output,
    "reshape_flatten_views": reshape_flatten_views,
    "mlp": mlp,
    "softmax_transpose": softmax_transpose,
}
