"""What every perturbation method shares: the scorer type, the baseline, masking."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

CHUNK = 32  # perturbed images built and scored at a time: bounds memory, not results

Scorer = Callable[[np.ndarray], np.ndarray]
"""(N, C, H, W) images -> (N,) target scores; higher means more of the target class."""


def mean_baseline(image: np.ndarray) -> np.ndarray:
    """The image's per-channel mean everywhere: "no information", in the input's own range.

    Why not zeros: zero is an extreme colour for some normalisations (black for
    [0, 1] inputs), and deleting into an extreme colour measures the model's reaction
    to that colour, not to the loss of the pixels.
    """
    return np.broadcast_to(image.mean(axis=(1, 2), keepdims=True), image.shape).astype(image.dtype)


def blend(image: np.ndarray, baseline: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """(N, H, W) masks in [0, 1] -> N images: the image where 1, the baseline where 0."""
    m = masks[:, None, :, :].astype(image.dtype)
    return image[None] * m + baseline[None] * (1 - m)
