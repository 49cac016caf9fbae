"""One black-box interface, `predict(images) -> (N, C) class scores`, on two engines.

The artifact (graphopt.runtime) is what is explained; the source ONNX model through
ONNX Runtime is the reference the map is checked against. Both reduce outputs with
the same `class_scores`, so a difference between the maps can only come from the
engines' numbers.

Artifacts have fixed shapes: one whose batch dimension B > 1 gets the perturbed
images B at a time (the last call padded by repeating an image, the padding's scores
dropped); B = 1 runs them one by one. ONNX Runtime takes a chunk at once when the
model's batch dimension is dynamic.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from graphopt.errors import InputError, ModelLoadError, first_line
from graphopt.explain.scores import class_scores

ORT_CHUNK = 16  # images per ONNX Runtime call when its batch is dynamic (bigger is not faster on 2 cores)


class Predictor(Protocol):
    """Scores images of shape (N, C, H, W); `image_shape` is (C, H, W)."""

    image_shape: tuple[int, ...]

    def predict(self, images: np.ndarray) -> np.ndarray: ...


def _in_batches(run_fixed, images: np.ndarray, batch: int) -> np.ndarray:
    """Runs `run_fixed` on exactly `batch` images at a time; pads the last call."""
    parts = []
    for start in range(0, len(images), batch):
        chunk = images[start:start + batch]
        real = len(chunk)
        if real < batch:
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], batch - real, axis=0)])
        parts.append(class_scores(run_fixed(np.ascontiguousarray(chunk)))[:real])
    return np.concatenate(parts)


class ArtifactPredictor:
    """A compiled artifact with one NCHW (or NC..) input; its first output is scored."""

    def __init__(self, art_dir: str | Path) -> None:
        from graphopt.runtime import load

        self.session = load(art_dir)
        inputs = self.session.inputs
        if len(inputs) != 1:
            raise InputError(f"explain needs a single-input model; {art_dir} has {len(inputs)} inputs")
        sig = inputs[0]
        if len(sig["shape"]) < 3 or not sig["dtype"].startswith("float"):
            raise InputError(f"explain needs an image input (N, C, H, W floats); {art_dir} takes "
                             f"{'x'.join(map(str, sig['shape']))} {sig['dtype']}")
        self.name, self.dtype = sig["name"], np.dtype(sig["dtype"])
        self.batch = int(sig["shape"][0])
        self.image_shape = tuple(int(d) for d in sig["shape"][1:])
        self.output = self.session.outputs[0]["name"]

    @property
    def source_sha256(self) -> str:
        return self.session.manifest["source_sha256"]

    def predict(self, images: np.ndarray) -> np.ndarray:
        def run(chunk):
            return self.session.run({self.name: chunk.astype(self.dtype, copy=False)})[self.output]

        return _in_batches(run, images, self.batch)


class OnnxPredictor:
    """The source ONNX model through ONNX Runtime (CPU), fed the artifact's image shape."""

    def __init__(self, model_path: str | Path, image_shape: tuple[int, ...], dtype: str = "float32") -> None:
        import onnxruntime as ort

        path = Path(model_path)
        if not path.is_file():
            raise ModelLoadError(f"{path}: no such reference model")
        try:
            self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001  (ORT raises its own exception types; one line for the user)
            raise ModelLoadError(f"{path}: ONNX Runtime cannot load it ({first_line(exc)})") from None
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise InputError(f"reference {path} has {len(inputs)} inputs; explain needs one")
        self.name = inputs[0].name
        first = inputs[0].shape[0] if inputs[0].shape else None
        self.dynamic = not (isinstance(first, int) and first > 0)
        self.batch = ORT_CHUNK if self.dynamic else int(first)
        self.image_shape, self.dtype = tuple(image_shape), np.dtype(dtype)
        self.output = self.session.get_outputs()[0].name

    def predict(self, images: np.ndarray) -> np.ndarray:
        def run(chunk):
            return self.session.run([self.output], {self.name: chunk.astype(self.dtype, copy=False)})[0]

        if self.dynamic:  # any batch size goes: no padding needed
            return np.concatenate([class_scores(run(images[i:i + ORT_CHUNK]))
                                   for i in range(0, len(images), ORT_CHUNK)])
        return _in_batches(run, images, self.batch)
