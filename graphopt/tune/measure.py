"""Measuring a compiled artifact: latency (warm-up, then the median of timed runs), and
for training artifacts the loss after a few steps on the user's data.

Inputs for inference timing are seeded random arrays of the artifact's signature:
latency of these kernels does not depend on the values, and the tuner must not
need a data set to compare compile options.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np


def random_feeds(inputs: list[dict], seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    feeds = {}
    for sig in inputs:
        dtype = np.dtype(sig["dtype"])
        shape = tuple(int(d) for d in sig["shape"])
        if np.issubdtype(dtype, np.integer):
            feeds[sig["name"]] = rng.integers(0, 2, size=shape).astype(dtype)
        else:
            feeds[sig["name"]] = rng.standard_normal(shape).astype(dtype)
    return feeds


def inference_latency_ms(art: Path, repeat: int, warmup: int, expect_id: str | None = None) -> float:
    from graphopt.runtime import load

    session = load(art, expect_id=expect_id)
    feeds = random_feeds(session.inputs)
    for _ in range(max(warmup, 0)):
        session.run_timed(feeds)
    times = [session.run_timed(feeds).seconds for _ in range(max(repeat, 1))]
    return statistics.median(times) * 1e3


def train_measure(art: Path, data_path: Path, steps: int, warmup: int,
                  expect_id: str | None = None) -> tuple[float, float]:
    """(median step latency in ms after warm-up, mean loss of the last 3 steps)."""
    from graphopt.train.runner import TrainRunner, load_data

    runner = TrainRunner(art, expect_id=expect_id)
    log = runner.run(load_data(data_path), max(steps, 1) + max(warmup, 0))
    timed = log.seconds[max(warmup, 0):] or log.seconds
    last = log.losses[-min(3, len(log.losses)):]
    loss = float(np.mean(last))
    return statistics.median(timed) * 1e3, loss
