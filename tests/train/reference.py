"""Float64 reference for gradient checks: the ONNX model under onnx's own
reference evaluator (numpy; ONNX Runtime has no double Conv) with its weights as
inputs, differentiated by central finite differences."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper


def float64_model(model: onnx.ModelProto) -> tuple[onnx.ModelProto, list[str]]:
    """A double-precision copy whose float initializers are graph inputs (fed per run)."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    g = out.graph
    weights = [t for t in g.initializer if t.data_type == TensorProto.FLOAT]
    keep = [t for t in g.initializer if t.data_type != TensorProto.FLOAT]
    g.ClearField("initializer")
    g.initializer.extend(keep)
    for vi in list(g.input) + list(g.output):
        if vi.type.tensor_type.elem_type == TensorProto.FLOAT:
            vi.type.tensor_type.elem_type = TensorProto.DOUBLE
    g.input.extend(onnx.helper.make_tensor_value_info(t.name, TensorProto.DOUBLE, list(t.dims)) for t in weights)
    for node in g.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.TENSOR and attr.t.data_type == TensorProto.FLOAT:
                attr.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(attr.t).astype(np.float64), attr.t.name))
    del g.value_info[:]
    return out, [t.name for t in weights]


class Reference:
    """loss(weights) in float64 for one batch, and its finite-difference gradient."""

    def __init__(self, model: onnx.ModelProto, loss: str, x: np.ndarray, target: np.ndarray) -> None:
        from onnx.reference import ReferenceEvaluator

        m64, self.names = float64_model(model)
        self.sess = ReferenceEvaluator(m64)
        self.input = model.graph.input[0].name
        self.loss, self.x, self.target = loss, x.astype(np.float64), target

    def __call__(self, weights: dict[str, np.ndarray]) -> float:
        feeds = {self.input: self.x, **{n: weights[n].astype(np.float64) for n in self.names}}
        out = self.sess.run(None, feeds)[0]
        if self.loss == "mse":
            return float(np.mean((out - self.target) ** 2))
        shifted = out - out.max(axis=1, keepdims=True)
        logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        return float(-np.mean(logp[np.arange(len(self.target)), self.target]))

    def gradient(self, weights: dict[str, np.ndarray], name: str, index: tuple, h: float = 1e-6) -> float:
        plus = {k: v.astype(np.float64).copy() for k, v in weights.items()}
        minus = {k: v.copy() for k, v in plus.items()}
        plus[name][index] += h
        minus[name][index] -= h
        return (self(plus) - self(minus)) / (2 * h)
