"""A seeded numpy classifier on preprocessed digits, exported to ONNX for graphopt.

Why numpy: the example must run offline in seconds with no framework. Full-batch
Adam on cross-entropy; `hidden=0` is softmax regression. The exported model has a
fixed batch (graphopt compiles static shapes); evaluate pads the last batch.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

BATCH = 120


def _forward(params: list[np.ndarray], x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    if len(params) == 2:
        return x @ params[0] + params[1], None
    h = np.maximum(x @ params[0] + params[1], 0.0)
    return h @ params[2] + params[3], h


def _grads(params, x, y1h):
    logits, h = _forward(params, x)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    d = (p - y1h) / len(x)
    if h is None:
        return [x.T @ d, d.sum(0)]
    dh = (d @ params[2].T) * (h > 0)
    return [x.T @ dh, dh.sum(0), h.T @ d, d.sum(0)]


def train(x: np.ndarray, y: np.ndarray, hidden: int = 32, epochs: int = 200, lr: float = 0.01,
          seed: int = 0) -> list[np.ndarray]:
    """Full-batch Adam; returns [W1, b1, W2, b2] (or [W, b] when hidden == 0), float32."""
    rng = np.random.default_rng(seed)
    dims = [x.shape[1], hidden, 10] if hidden else [x.shape[1], 10]
    params = []
    for a, b in itertools.pairwise(dims):
        params += [rng.normal(0, np.sqrt(2.0 / a), (a, b)), np.zeros(b)]
    y1h = np.eye(10)[y]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    for t in range(1, epochs + 1):
        for i, g in enumerate(_grads(params, x.astype(np.float64), y1h)):
            m[i] = 0.9 * m[i] + 0.1 * g
            v[i] = 0.999 * v[i] + 0.001 * g * g
            params[i] -= lr * (m[i] / (1 - 0.9 ** t)) / (np.sqrt(v[i] / (1 - 0.999 ** t)) + 1e-8)
    return [p.astype(np.float32) for p in params]


def export(params: list[np.ndarray], path: Path) -> Path:
    """ONNX (IR 10, opset 17: what ONNX Runtime and graphopt accept) with input x: BATCH x features."""
    names = ["W1", "b1", "W2", "b2"][: len(params)]
    nodes = [helper.make_node("MatMul", ["x", "W1"], ["z1"]), helper.make_node("Add", ["z1", "b1"], ["a1"])]
    last = "a1"
    if len(params) == 4:
        nodes += [helper.make_node("Relu", ["a1"], ["h1"]), helper.make_node("MatMul", ["h1", "W2"], ["z2"]),
                  helper.make_node("Add", ["z2", "b2"], ["a2"])]
        last = "a2"
    nodes.append(helper.make_node("Identity", [last], ["logits"]))
    graph = helper.make_graph(nodes, "digits_mlp",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [BATCH, params[0].shape[0]])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [BATCH, 10])],
                              initializer=[numpy_helper.from_array(p, n) for p, n in zip(params, names)])
    model = helper.make_model(graph, ir_version=10, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="graphopt.pipeline_example")
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def train_model(method: str, path: Path, hidden: int = 32, epochs: int = 200, seed: int = 0) -> Path:
    """What a user does on their branch: preprocess the train split their way, train, export."""
    from benchmarks.pipeline_example.data import digits_split
    from benchmarks.pipeline_example.steps import transform

    split = digits_split()
    x = transform(method, split["x_train"], split["x_train"])
    return export(train(x, split["y_train"], hidden=hidden, epochs=epochs, seed=seed), path)
