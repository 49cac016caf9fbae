"""RISE (Petsiuk et al. 2018): score the image under many random smooth masks; a
pixel's saliency is the score-weighted average of how visible it was.

Each mask is a random binary grid of cells of `patch` pixels (each cell on with
probability P_KEEP), upsampled bilinearly and shifted by a random sub-cell offset so
the cell edges fall everywhere. Scores are centred on their mean before weighting:
the expectation is unchanged up to a constant, the sampling noise is smaller.
Masks come from the seed alone, so two engines given one seed see the same masks.
"""

from __future__ import annotations

import numpy as np

from graphopt.explain.perturb import CHUNK, Scorer, blend

P_KEEP = 0.5


def _interp_matrix(size: int, cells: int, cell: int, offset: int) -> np.ndarray:
    """(size, cells) bilinear weights: pixel i reads grid coordinate (i + offset) / cell."""
    coord = (np.arange(size) + offset) / cell
    low = np.clip(np.floor(coord).astype(int), 0, cells - 2)
    frac = coord - low
    matrix = np.zeros((size, cells))
    matrix[np.arange(size), low] = 1 - frac
    matrix[np.arange(size), low + 1] = frac
    return matrix


def draw_grids(height: int, width: int, count: int, patch: int, rng: np.random.Generator):
    """The random part of `count` masks: on/off grids and sub-cell offsets (small arrays)."""
    rows, cols = -(-height // patch) + 2, -(-width // patch) + 2
    return (rng.random((count, rows, cols)) < P_KEEP).astype(np.float64), rng.integers(0, patch, size=(count, 2))


def masks_from_grids(grids: np.ndarray, offsets: np.ndarray, height: int, width: int, patch: int) -> np.ndarray:
    """(n, H, W) smooth masks in [0, 1] from n grids and offsets."""
    _, rows, cols = grids.shape
    masks = np.empty((len(grids), height, width), dtype=np.float32)
    for i, grid in enumerate(grids):
        ry = _interp_matrix(height, rows, patch, int(offsets[i, 0]))
        rx = _interp_matrix(width, cols, patch, int(offsets[i, 1]))
        masks[i] = ry @ grid @ rx.T
    return masks


def rise_masks(height: int, width: int, count: int, patch: int, rng: np.random.Generator) -> np.ndarray:
    """(count, H, W) smooth masks in [0, 1], all at once (small inputs, tests)."""
    return masks_from_grids(*draw_grids(height, width, count, patch, rng), height, width, patch)


def rise_map(score: Scorer, image: np.ndarray, baseline: np.ndarray, patch: int, samples: int,
             rng: np.random.Generator) -> np.ndarray:
    """(C, H, W) image -> (H, W) map: E[(score - mean score) * mask] / P_KEEP.

    Masks are built CHUNK at a time and folded into two running sums (sum of
    score * mask, sum of mask), so memory does not grow with `samples`:
    sum((s - mean s) * m) = sum(s * m) - mean(s) * sum(m)."""
    _, height, width = image.shape
    patch = max(1, patch)
    grids, offsets = draw_grids(height, width, samples, patch, rng)
    weighted, coverage, total = np.zeros((height, width)), np.zeros((height, width)), 0.0
    for start in range(0, samples, CHUNK):
        masks = masks_from_grids(grids[start:start + CHUNK], offsets[start:start + CHUNK], height, width, patch)
        scores = score(blend(image, baseline, masks))
        weighted += np.tensordot(scores, masks.astype(np.float64), axes=1)
        coverage += masks.sum(axis=0, dtype=np.float64)
        total += float(scores.sum())
    return (weighted - total / samples * coverage) / (samples * P_KEEP)
