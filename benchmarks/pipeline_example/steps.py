"""The preprocessing component: `preprocess(inputs, out, params)`, used as `--kind python`.

Methods (params["method"]):
    scale        pixels / 16 -> 64 features
    standardize  zero mean, unit variance with train statistics -> 64 features
    pool2        2x2 average pooling of the 8x8 image, / 16 -> 16 features (a new schema)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

METHODS = ("scale", "standardize", "pool2")


def _pool2(x: np.ndarray) -> np.ndarray:
    return x.reshape(len(x), 4, 2, 4, 2).mean(axis=(2, 4)).reshape(len(x), 16)


def transform(method: str, x_train: np.ndarray, x: np.ndarray) -> np.ndarray:
    x_train, x = x_train.astype(np.float64), x.astype(np.float64)
    if method == "scale":
        return (x / 16.0).astype(np.float32)
    if method == "standardize":
        mean, std = x_train.mean(axis=0), x_train.std(axis=0) + 1e-6
        return ((x - mean) / std).astype(np.float32)
    if method == "pool2":
        return (_pool2(x) / 16.0).astype(np.float32)
    raise ValueError(f"unknown method {method!r} (one of {', '.join(METHODS)})")


def preprocess(inputs: dict[str, Path], out: Path, params: dict) -> None:
    """Reads digits.npz from the single input, writes features.npz (float32 x, int64 y)."""
    (src,) = inputs.values()
    with np.load(next(src.rglob("*.npz")), allow_pickle=False) as data:
        split = {k: data[k] for k in data.files}
    method = params.get("method", "scale")
    np.savez(out / "features.npz",
             x_train=transform(method, split["x_train"], split["x_train"]),
             x_test=transform(method, split["x_train"], split["x_test"]),
             y_train=split["y_train"].astype(np.int64), y_test=split["y_test"].astype(np.int64))


def _accepts(spec: dict, inputs: dict[str, dict]) -> str | None:
    """Needs 64-pixel rows in x_train/x_test; any numeric dtype."""
    for signature in inputs.values():
        for desc in signature.get("files", {}).values():
            for key in ("x_train", "x_test"):
                shape = desc.get("arrays", {}).get(key, [None])[0]
                if shape is not None and shape[1:] != [64]:
                    return f"{key} rows are {shape[1:]}, preprocess needs 64 pixels"
    return None


preprocess.accepts = _accepts
