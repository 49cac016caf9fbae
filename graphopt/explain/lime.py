"""LIME (Ribeiro et al. 2016) for images: switch superpixels on and off at random,
score each sample, and fit a weighted linear model of score on the on/off pattern;
a pixel's saliency is its superpixel's coefficient.

Sample 0 is the untouched image; the others switch each segment on with probability
1/2. A sample's weight is LIME's exponential kernel on its cosine distance to the
untouched image (width 0.25), so samples close to the input decide the fit. The
fit is a closed-form weighted ridge regression with an unpenalised intercept.
Segments and samples come from the image and the seed alone.
"""

from __future__ import annotations

import numpy as np

from graphopt.explain.perturb import CHUNK, Scorer, blend
from graphopt.explain.segments import slic

KERNEL_WIDTH = 0.25
RIDGE = 1.0


def lime_samples(segments: int, samples: int, rng: np.random.Generator) -> np.ndarray:
    """(samples, segments) 0/1 patterns; row 0 all ones (the input itself)."""
    patterns = (rng.random((samples, segments)) < 0.5).astype(np.float64)
    patterns[0] = 1.0
    return patterns


def kernel_weights(patterns: np.ndarray) -> np.ndarray:
    """exp(-d^2 / width^2) with d the cosine distance to the all-on pattern."""
    norms = np.linalg.norm(patterns, axis=1) * np.sqrt(patterns.shape[1])
    cosine = np.divide(patterns.sum(axis=1), norms, out=np.zeros(len(patterns)), where=norms > 0)
    return np.exp(-((1 - cosine) ** 2) / KERNEL_WIDTH ** 2)


def weighted_ridge(features: np.ndarray, targets: np.ndarray, weights: np.ndarray, alpha: float) -> np.ndarray:
    """Coefficients minimising sum w (y - b - x.c)^2 + alpha |c|^2 (intercept b free)."""
    total = weights.sum()
    x_mean = weights @ features / total
    y_mean = weights @ targets / total
    xc, yc = features - x_mean, targets - y_mean
    gram = (xc * weights[:, None]).T @ xc + alpha * np.eye(features.shape[1])
    return np.linalg.solve(gram, (xc * weights[:, None]).T @ yc)


def lime_map(score: Scorer, image: np.ndarray, baseline: np.ndarray, patch: int, samples: int,
             rng: np.random.Generator) -> np.ndarray:
    """(C, H, W) image -> (H, W) map of per-superpixel linear coefficients."""
    labels = slic(image, patch)
    count = int(labels.max()) + 1
    patterns = lime_samples(count, max(samples, 2), rng)
    scores = np.concatenate([score(blend(image, baseline, patterns[i:i + CHUNK][:, labels]))
                             for i in range(0, len(patterns), CHUNK)])
    coefficients = weighted_ridge(patterns, scores, kernel_weights(patterns), RIDGE)
    return coefficients[labels]
