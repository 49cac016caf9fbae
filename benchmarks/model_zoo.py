"""Real models for benchmarks: name -> how to get it, its fixed input shapes.

Light models come from the onnx wheel (random weights, see
graphopt.examples.real_models); OCR models from the pinned rapidocr wheel, at the
sizes the OCR pipeline really uses (det 640x640, rec 48x320, cls 48x192); the
transformer encoder is built with onnx.helper (graphopt.train.models.transformer:
4 pre-norm layers, 128 tokens x 256, 4 heads, ReLU MLP x4; random weights).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx

from graphopt.examples.real_models import LIGHT_MODELS, light_model, rapidocr_model

OCR_BENCH_SHAPES = {"det": (1, 3, 640, 640), "cls": (1, 3, 48, 192), "rec": (1, 3, 48, 320)}
ENCODER = {"batch": 1, "seq": 128, "dim": 256, "heads": 4, "layers": 4, "classes": 10}
ZOO = tuple(f"light_{n}" for n in LIGHT_MODELS) + tuple(f"ocr_{n}" for n in OCR_BENCH_SHAPES) + ("encoder",)


def materialize(name: str, work: Path) -> tuple[Path, dict, dict]:
    """Writes the model under `work`; returns (path, input shapes, random feeds)."""
    path = work / f"{name}.onnx"
    if name.startswith("light_"):
        model = light_model(name.removeprefix("light_"), seed=0)
        onnx.save(model, path)
        shapes = {}
        feed_shapes = {i.name: [d.dim_value for d in i.type.tensor_type.shape.dim] for i in model.graph.input}
    elif name.startswith("ocr_"):
        kind = name.removeprefix("ocr_")
        path = rapidocr_model(kind)
        shapes = {"x": OCR_BENCH_SHAPES[kind]}
        feed_shapes = shapes
    elif name == "encoder":
        from graphopt.train.models import transformer

        model = transformer(**ENCODER)
        onnx.save(model, path)
        shapes = {}
        feed_shapes = {"x": [ENCODER["batch"], ENCODER["seq"], ENCODER["dim"]]}
    else:
        raise SystemExit(f"unknown model {name!r}; known: {', '.join(ZOO)}")
    rng = np.random.default_rng(0)
    feeds = {k: rng.standard_normal(v).astype(np.float32) for k, v in feed_shapes.items()}
    return path, shapes, feeds
