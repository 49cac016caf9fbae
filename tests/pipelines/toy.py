"""Tiny numpy components for fast pipeline tests (no compile): data -> prep -> fit -> score."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from graphopt.pipelines.errors import SchemaConflictError


def write_data(path: Path, rows: int = 8, width: int = 4, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, x=rng.normal(size=(rows, width)).astype(np.float32))
    return path


def _x(inputs: dict[str, Path]) -> np.ndarray:
    for d in inputs.values():
        for f in sorted(d.rglob("*.npz")):
            with np.load(f) as data:
                if "x" in data.files:
                    return data["x"]
    raise SchemaConflictError("no x in the inputs")


def prep(inputs: dict[str, Path], out: Path, params: dict) -> None:
    """Scales x; `repeat` > 1 widens it (a new schema)."""
    x = _x(inputs) * float(params.get("factor", 1.0))
    np.savez(out / "features.npz", x=np.tile(x, (1, int(params.get("repeat", 1)))))


def fit(inputs: dict[str, Path], out: Path, params: dict) -> None:
    """A 'model' that needs `width` columns: a wrong width is a schema conflict."""
    x = _x(inputs)
    if x.shape[1] != int(params.get("width", 4)):
        raise SchemaConflictError(f"fit needs width {params.get('width', 4)}, got {x.shape[1]}")
    np.savez(out / "weights.npz", x=x.mean(axis=0, keepdims=True) * float(params.get("gain", 1.0)))


def _fit_accepts(spec: dict, inputs: dict[str, dict]) -> str | None:
    width = int(spec.get("params", {}).get("width", 4))
    for sig in inputs.values():
        for desc in sig.get("files", {}).values():
            shape = desc.get("arrays", {}).get("x", [None])[0]
            if shape is not None and shape[1] != width:
                return f"fit needs width {width}, got {shape[1]}"
    return None


fit.accepts = _fit_accepts


def score(inputs: dict[str, Path], out: Path, params: dict) -> None:
    """score = |mean weight| * bonus; cost = columns * cost_per_col (for Pareto tests)."""
    w = _x(inputs)
    (out / "metrics.json").write_text(json.dumps({
        "score": float(abs(w.mean())) * float(params.get("bonus", 1.0)),
        "cost": float(w.shape[1]) * float(params.get("cost_per_col", 1.0))}))


def slow(inputs: dict[str, Path], out: Path, params: dict) -> None:
    """Writes part of its output, signals, then sleeps: a process to kill mid-commit."""
    (out / "part.bin").write_bytes(os.urandom(1 << 16))
    Path(params["marker"]).write_text("started")
    time.sleep(float(params.get("seconds", 30)))
    np.savez(out / "features.npz", x=_x(inputs))
