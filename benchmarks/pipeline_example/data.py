"""The digits data set (1797 8x8 images, shipped inside scikit-learn: no download)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

TEST_SIZE = 360
SPLIT_SEED = 0


def digits_split() -> dict[str, np.ndarray]:
    """A fixed, seeded train/test split of the raw pixel values (0..16)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    order = np.random.default_rng(SPLIT_SEED).permutation(len(digits.target))
    x, y = digits.data[order], digits.target[order]
    return {"x_train": x[TEST_SIZE:], "y_train": y[TEST_SIZE:], "x_test": x[:TEST_SIZE], "y_test": y[:TEST_SIZE]}


def write_dataset(path: Path, encoding: str = "float64") -> Path:
    """digits.npz as shipped (float64) or re-encoded as uint8: same content, another schema."""
    split = digits_split()
    if encoding == "uint8":
        split = {k: v.astype(np.uint8) for k, v in split.items()}
    elif encoding != "float64":
        raise ValueError(f"unknown encoding {encoding!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **split)
    return path
