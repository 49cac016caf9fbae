"""Is the map right? Two checks that can fail.

Agreement: Pearson correlation, over pixels, between the artifact's map and the map
the same method (same masks, same seed) gives on the source model in ONNX Runtime.
A compiler bug that shifts scores shows up here.

Faithfulness (deletion, Petsiuk et al. 2018): replace pixels by the baseline, most
salient first, and follow the target's output as the deleted fraction goes 0 -> 1.
A map that found the evidence makes it fall early: its area under the curve is
below that of deleting in random order (averaged over RANDOM_ORDERS seeds). The
curve follows the model's own output for the target, as RISE's metric does: the
class probability for a softmax model (AUC in [0, 1]), not the log-odds the maps are
computed on, which are unbounded and make areas hard to read. Both curves start
at the untouched image and end at the all-baseline image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from graphopt.explain.perturb import CHUNK, Scorer, blend

STEPS = 40  # points on the deletion curve after the start: fractions 0, 1/40, ..., 1
RANDOM_ORDERS = 3


def pearson(a: np.ndarray, b: np.ndarray) -> float | None:
    """Correlation over all pixels; None when either map is constant (undefined)."""
    x, y = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    x, y = x - x.mean(), y - y.mean()
    denominator = float(np.sqrt((x @ x) * (y @ y)))
    return float(x @ y) / denominator if denominator > 0 else None


def salient_order(saliency: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Pixel indices, most salient first; ties (LIME's flat segments) in random order."""
    tiebreak = rng.random(saliency.size)
    return np.lexsort((tiebreak, -saliency.ravel()))


def deletion_curve(score: Scorer, image: np.ndarray, baseline: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Target scores after deleting the first round(f * HW) pixels of `order`, f = 0..1."""
    _, height, width = image.shape
    counts = np.round(np.linspace(0, 1, STEPS + 1) * height * width).astype(int)
    masks = np.ones((len(counts), height * width), dtype=np.float32)
    for i, count in enumerate(counts):
        masks[i, order[:count]] = 0
    masks = masks.reshape(len(counts), height, width)
    return np.concatenate([score(blend(image, baseline, masks[i:i + CHUNK])) for i in range(0, len(masks), CHUNK)])


@dataclass(frozen=True)
class Deletion:
    deletion_auc: float
    random_deletion_auc: float
    curve: list[float]
    random_curve: list[float]


def _auc(curve: np.ndarray) -> float:
    fractions = np.linspace(0, 1, len(curve))
    return float(np.sum((curve[1:] + curve[:-1]) / 2 * np.diff(fractions)))


def deletion_check(score: Scorer, image: np.ndarray, baseline: np.ndarray, saliency: np.ndarray,
                   seed: int) -> Deletion:
    """The map's deletion curve and the mean of RANDOM_ORDERS random ones, with their areas."""
    curve = deletion_curve(score, image, baseline, salient_order(saliency, np.random.default_rng([seed, 1])))
    randoms = [deletion_curve(score, image, baseline, np.random.default_rng([seed, 2, k]).permutation(saliency.size))
               for k in range(RANDOM_ORDERS)]
    random_curve = np.mean(randoms, axis=0)
    return Deletion(_auc(curve), _auc(random_curve), curve.tolist(), random_curve.tolist())
