"""The ResNet-style training model of the swap benchmark: its shape, and that it runs."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

from graphopt.train.models import resnet


def _ops(model, op_type: str) -> int:
    return sum(1 for n in model.graph.node if n.op_type == op_type)


def test_default_resnet_has_21_convolutions_and_a_residual_add_per_block() -> None:
    """Stem + 3 stages x 3 blocks x 2 + 2 strided 1x1 projections; BN as Mul + Add per convolution."""
    model = resnet()
    assert _ops(model, "Conv") == 21
    assert _ops(model, "Mul") == 21 and _ops(model, "Add") == 21 + 9 + 1  # BN shifts, residuals, logits bias
    assert _ops(resnet(norm=False), "Mul") == 0


def test_resnet_runs_and_halves_the_image_per_stage() -> None:
    model = resnet(batch=2, size=8, widths=(4, 8, 16), blocks=1, classes=3)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    (logits,) = session.run(None, {"x": x})
    assert logits.shape == (2, 3) and np.isfinite(logits).all()
    strides = [a.ints for n in model.graph.node if n.op_type == "Conv" for a in n.attribute if a.name == "strides"]
    assert sum(1 for s in strides if list(s) == [2, 2]) == 4  # two stages down: a 3x3 and a 1x1 projection each
