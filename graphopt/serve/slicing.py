"""Width-sliced variants of one MLP (model slicing, Cai et al. VLDB 2019): train once, serve at several widths.

Why this shape: a slice of width k keeps the first k units of every hidden layer, so the
narrow network is a prefix of the wide one and its cost falls with k^2 in the
hidden-to-hidden layers. Training makes every prefix a good model on its own:

    training model   x[B,F], mask[1,H] -> h1 = relu(x W1 + b1) * mask
                                         -> h2 = relu(h1 W2 + b2) * mask -> logits = h2 W3 + b3
    each step        a width k drawn at random (the full and the narrowest width in turn
                     every few steps, as in the paper's scheduling), mask = first k ones

With mask = first k ones the masked network equals the plain network whose weights are
the prefixes W1[:, :k], b1[:k], W2[:k, :k], b2[:k], W3[:k, :]: `export_width` writes that
network as ONNX, so a narrow artifact really does less work. All widths derive from ONE
trained weights file (`weights.npz`); each artifact's params.npz holds the prefix slices
of it, and `slicing.json` records the weights file's sha-256, the widths and each
width's accuracy on the held-out split.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from graphopt.artifact import sha256_file
from graphopt.errors import InputError

IR_VERSION, OPSET = 10, 17
FEATURES, CLASSES = 64, 10  # scikit-learn's digits: 8x8 images, 10 classes
WEIGHT_NAMES = ("w1", "b1", "w2", "b2", "w3", "b3")


@dataclass(frozen=True)
class SliceSpec:
    """The network and its widths; `widths` ascending, the last one the full hidden width."""

    hidden: int = 1024
    widths: tuple[int, ...] = (64, 256, 1024)
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.widths or list(self.widths) != sorted(set(self.widths)) or self.widths[-1] != self.hidden:
            raise InputError(f"widths {self.widths} must be ascending, distinct and end at the hidden width {self.hidden}")


def initial_weights(spec: SliceSpec) -> dict[str, np.ndarray]:
    """He-scaled weights (std sqrt(2 / fan_in)) so ReLU activations stay of order one."""
    rng = np.random.default_rng(spec.seed)
    h = spec.hidden

    def he(rows: int, cols: int) -> np.ndarray:
        return rng.normal(0.0, np.sqrt(2.0 / rows), size=(rows, cols)).astype(np.float32)

    return {"w1": he(FEATURES, h), "b1": np.zeros(h, np.float32), "w2": he(h, h), "b2": np.zeros(h, np.float32),
            "w3": he(h, CLASSES), "b3": np.zeros(CLASSES, np.float32)}


def _graph_model(nodes: list, inputs: list, weights: dict[str, np.ndarray], name: str) -> onnx.ModelProto:
    out = helper.make_tensor_value_info("logits", TensorProto.FLOAT, None)
    inits = [numpy_helper.from_array(np.ascontiguousarray(weights[n]), n) for n in WEIGHT_NAMES]
    graph = helper.make_graph(nodes, name, inputs, [out], initializer=inits)
    model = helper.make_model(graph, ir_version=IR_VERSION, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="graphopt.serve.slicing")
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    onnx.checker.check_model(model, full_check=True)
    return model


def _mlp_nodes(masked: bool) -> list:
    nodes = []
    x = "x"
    for layer in (1, 2):
        nodes += [helper.make_node("MatMul", [x, f"w{layer}"], [f"mm{layer}"]),
                  helper.make_node("Add", [f"mm{layer}", f"b{layer}"], [f"pre{layer}"]),
                  helper.make_node("Relu", [f"pre{layer}"], [f"act{layer}"])]
        x = f"act{layer}"
        if masked:
            nodes.append(helper.make_node("Mul", [x, "mask"], [f"h{layer}"]))
            x = f"h{layer}"
    nodes += [helper.make_node("MatMul", [x, "w3"], ["mm3"]), helper.make_node("Add", ["mm3", "b3"], ["logits"])]
    return nodes


def training_model(spec: SliceSpec, batch: int, weights: dict[str, np.ndarray] | None = None) -> onnx.ModelProto:
    """The masked full-width network that is trained (the mask is an input, not a weight)."""
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, FEATURES]),
              helper.make_tensor_value_info("mask", TensorProto.FLOAT, [1, spec.hidden])]
    return _graph_model(_mlp_nodes(True), inputs, weights or initial_weights(spec), "sliced_mlp_train")


def sliced_weights(weights: dict[str, np.ndarray], width: int) -> dict[str, np.ndarray]:
    """The prefix of every hidden dimension: the width-`width` network, exactly."""
    k = width
    return {"w1": weights["w1"][:, :k], "b1": weights["b1"][:k], "w2": weights["w2"][:k, :k],
            "b2": weights["b2"][:k], "w3": weights["w3"][:k, :], "b3": weights["b3"]}


def export_width(weights: dict[str, np.ndarray], width: int, batch: int) -> onnx.ModelProto:
    """A plain MLP of hidden width `width` (no mask): the artifact a slice compiles to."""
    hidden = weights["w2"].shape[0]
    if not 0 < width <= hidden:
        raise InputError(f"width {width} is outside 1..{hidden}")
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, FEATURES])]
    return _graph_model(_mlp_nodes(False), inputs, sliced_weights(weights, width), f"sliced_mlp_w{width}")


def width_mask(hidden: int, width: int) -> np.ndarray:
    mask = np.zeros((1, hidden), np.float32)
    mask[0, :width] = 1.0
    return mask


def width_schedule(widths: tuple[int, ...], steps: int, seed: int) -> list[int]:
    """One width per step: random, with the full and the narrowest width forced in turn every
    fourth step (the paper trains the extremes every step; this keeps one step per batch)."""
    rng = np.random.default_rng(seed)
    schedule = []
    for step in range(steps):
        if step % 4 == 0:
            schedule.append(widths[-1] if (step // 4) % 2 == 0 else widths[0])
        else:
            schedule.append(int(widths[rng.integers(0, len(widths))]))
    return schedule


def save_weights(path: Path, weights: dict[str, np.ndarray]) -> str:
    """Writes the one shared weights file; returns its sha-256 (recorded with every slice)."""
    np.savez(path, **weights)
    return sha256_file(Path(path))


def load_weights(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {n: data[n] for n in WEIGHT_NAMES}
    except (OSError, KeyError, ValueError) as exc:
        raise InputError(f"cannot read sliced weights {path} ({exc})") from None


def write_record(path: Path, record: dict) -> None:
    Path(path).write_text(json.dumps(record, indent=1, sort_keys=True))
