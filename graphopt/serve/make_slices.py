"""Train the sliced MLP on scikit-learn's digits with graphopt's training step, then compile
every width as an inference artifact and measure its held-out accuracy (its `quality`).

    make_slices(OUT, SliceSpec(...)) ->
        OUT/train-art/          the training-step artifact (graphopt compile --train)
        OUT/weights.npz         the ONE trained weights file every width is sliced from
        OUT/w{k}.onnx, OUT/w{k}/  each width as ONNX and as a compiled artifact
        OUT/slicing.json        weights sha-256, widths, accuracy per width, training log

Why digits: a real data set that ships inside scikit-learn (no download), small enough
that one training run takes seconds on a CPU.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from graphopt.serve.slicing import (
    SliceSpec,
    export_width,
    save_weights,
    training_model,
    width_mask,
    width_schedule,
    write_record,
)


@dataclass(frozen=True)
class Digits:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def digits(test_fraction: float = 0.3, seed: int = 0) -> Digits:
    """Digits scaled to [0, 1], a stratified held-out split (the test split is never trained on)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x = (data.data / 16.0).astype(np.float32)
    x_tr, x_te, y_tr, y_te = train_test_split(x, data.target.astype(np.int64), test_size=test_fraction,
                                              random_state=seed, stratify=data.target)
    return Digits(x_tr, y_tr, x_te, y_te)


def train_sliced(out: Path, spec: SliceSpec, data: Digits, steps: int, batch: int, lr: float) -> tuple[dict, list]:
    """One training run with a random width per step; returns (trained weights by name, losses)."""
    from graphopt.compiler import compile_model
    from graphopt.options import TrainOptions
    from graphopt.train.runner import TrainRunner

    art = out / "train-art"
    compile_model(training_model(spec, batch), art,
                        TrainOptions(optimizer=f"adam:lr={lr}", fold=False, time_limit=2.0))
    runner = TrainRunner(art)
    rng = np.random.default_rng(spec.seed)
    order = rng.permutation(len(data.x_train))
    losses = []
    for step, width in enumerate(width_schedule(spec.widths, steps, spec.seed)):
        start = (step * batch) % (len(order) - batch + 1)
        if start < batch and step:
            order = rng.permutation(len(data.x_train))
        idx = order[start:start + batch]
        losses.append(runner.step({"x": data.x_train[idx], "mask": width_mask(spec.hidden, width),
                                   "target": data.y_train[idx]}))
    names = runner.session.manifest["param_names"][:runner.num_params]
    return dict(zip(names, runner.weights())), losses


def accuracy(session, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy through the runtime, in batches of the artifact's batch size (last one padded)."""
    batch = session.inputs[0]["shape"][0]
    correct = 0
    for start in range(0, len(x), batch):
        rows = x[start:start + batch]
        padded = np.zeros((batch, x.shape[1]), np.float32)
        padded[:len(rows)] = rows
        logits = next(iter(session.run({"x": padded}).values()))
        correct += int((logits[:len(rows)].argmax(1) == y[start:start + batch]).sum())
    return correct / len(x)


def make_slices(out: Path, spec: SliceSpec, steps: int = 600, train_batch: int = 64, serve_batch: int = 32,
                lr: float = 1e-3, say=print) -> dict:
    """Train once, compile each width, measure each width's accuracy; returns the slicing record."""
    from graphopt.compiler import CompileOptions, compile_model
    from graphopt.runtime import load

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = digits(seed=spec.seed)
    began = time.perf_counter()
    weights, losses = train_sliced(out, spec, data, steps, train_batch, lr)
    say(f"trained {steps} steps in {time.perf_counter() - began:.1f}s, loss {losses[0]:.3f} -> "
        f"{np.mean(losses[-20:]):.3f}")
    digest = save_weights(out / "weights.npz", weights)
    widths = {}
    for width in spec.widths:
        model_path, art = out / f"w{width}.onnx", out / f"w{width}"
        onnx.save(export_width(weights, width, serve_batch), str(model_path))
        compile_model(model_path, art, CompileOptions(time_limit=2.0))
        acc = accuracy(load(art), data.x_test, data.y_test)
        widths[str(width)] = {"artifact": str(art), "accuracy": acc}
        say(f"width {width}: held-out accuracy {acc:.4f}")
    record = {"weights": "weights.npz", "weights_sha256": digest, "hidden": spec.hidden, "widths": widths,
              "serve_batch": serve_batch, "train": {"steps": steps, "batch": train_batch, "lr": lr,
                                                     "first_loss": losses[0], "last_loss": float(np.mean(losses[-20:]))},
              "test_samples": len(data.y_test)}
    write_record(out / "slicing.json", record)
    return record
