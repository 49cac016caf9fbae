"""Occlusion (Zeiler & Fergus): cover one window at a time with the baseline and
record how much the target's score drops; a pixel's saliency is the mean drop over
the windows that cover it.

Deterministic (no randomness), so the seed is unused; cost is one model run per
window: ((H - w) / s + 1) * ((W - w) / s + 1) with stride s = w / 2.
"""

from __future__ import annotations

import numpy as np

from graphopt.explain.perturb import CHUNK, Scorer


def window_starts(size: int, window: int, stride: int) -> list[int]:
    """Start offsets that tile [0, size) with windows of `window`, the last flush with the edge."""
    if window >= size:
        return [0]
    starts = list(range(0, size - window + 1, stride))
    if starts[-1] != size - window:
        starts.append(size - window)
    return starts


def occlusion_map(score: Scorer, image: np.ndarray, baseline: np.ndarray, patch: int) -> np.ndarray:
    """(C, H, W) image -> (H, W) map of mean score drop when the pixel is covered."""
    _, height, width = image.shape
    window = max(1, min(patch, height, width))
    stride = max(1, window // 2)
    boxes = [(y, x) for y in window_starts(height, window, stride) for x in window_starts(width, window, stride)]
    reference = float(score(image[None])[0])
    total = np.zeros((height, width))
    count = np.zeros((height, width))
    for start in range(0, len(boxes), CHUNK):
        chunk = boxes[start:start + CHUNK]
        batch = np.repeat(image[None], len(chunk), axis=0)
        for i, (y, x) in enumerate(chunk):
            batch[i, :, y:y + window, x:x + window] = baseline[:, y:y + window, x:x + window]
        drops = reference - score(batch)
        for (y, x), drop in zip(chunk, drops):
            total[y:y + window, x:x + window] += drop
            count[y:y + window, x:x + window] += 1
    return total / np.maximum(count, 1)
