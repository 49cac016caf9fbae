"""From a model's raw output to one score per class, the quantity every method perturbs.

Why log-odds: a confident classifier's softmax sits at 0.9999992, where float32
resolves steps of 6e-8, so covering half the text barely moves the probability and
two runtimes' maps would disagree in rounding noise. The log-odds log(p / (1 - p)),
with 1 - p taken as the SUM OF THE OTHER classes' probabilities (each stored with
full relative precision), stays smooth and sensitive there. Outputs that are not
probability rows (logits, regressions) are used raw.

Outputs of rank > 2 are reduced to (batch, classes) by averaging the axes that are
neither batch nor class: (N, T, C) sequences over T (class axis last), (N, C, H, W)
maps over H and W (channel axis 1).
"""

from __future__ import annotations

import numpy as np

from graphopt.errors import InputError

PROBABILITY_TOLERANCE = 1e-3  # rows summing to 1 within this are treated as probabilities
TINY = 1e-30  # keeps log() finite when a probability underflows to 0


def class_scores(output: np.ndarray) -> np.ndarray:
    """(N, ...) model output -> (N, C) float64 per-class scores."""
    out = np.asarray(output, dtype=np.float64)
    if out.ndim == 1:
        return out[:, None]
    if out.ndim == 2:
        return out
    if out.ndim == 3:
        return out.mean(axis=1)
    return out.reshape(out.shape[0], out.shape[1], -1).mean(axis=2)


def is_probability(scores: np.ndarray) -> bool:
    """True when every row is a distribution (the model ends in a Softmax)."""
    if scores.shape[1] < 2 or (scores < 0).any():
        return False
    return bool(np.all(np.abs(scores.sum(axis=1) - 1.0) < PROBABILITY_TOLERANCE))


def target_score(scores: np.ndarray, target: int, kind: str) -> np.ndarray:
    """(N, C) class scores -> (N,) score of `target`: 'log_odds' or 'raw'."""
    if kind == "raw":
        return scores[:, target]
    if kind != "log_odds":
        raise ValueError(f"unknown score kind {kind!r}")
    others = np.delete(scores, target, axis=1).sum(axis=1)
    return np.log(np.maximum(scores[:, target], TINY)) - np.log(np.maximum(others, TINY))


def check_target(target: int, num_classes: int) -> None:
    if not 0 <= target < num_classes:
        raise InputError(f"target {target} is out of range: the model scores {num_classes} class(es), "
                         f"0..{num_classes - 1}")
