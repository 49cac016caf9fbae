"""Synthetic placement traces shaped like training steps of deep networks.

Design: a trace is a sequence of "layers" on a step counter. Each layer, in
the forward pass, makes a few short-lived temporaries (workspace, fused op
outputs: live 1-3 steps) and one activation that is saved until the matching
backward step (so activations nest: the first saved is freed last, the shape
of training memory). Networks are built from `blocks` with residual
branches: a skip tensor lives across the block. The backward pass frees the
saved activations in reverse and makes gradient temporaries. Several
independent micro-batches (pipelined steps) follow each other, so the
timeline has points nothing crosses, as real schedules do.
Sizes follow a realistic mix: powers of two times channel counts, with a
long tail (a few large tensors, many small), rounded to 64 bytes.
Deterministic for a seed. CSV in MiniMalloc's format.

    python -m benchmarks.synthetic_traces --buffers 60000 --out trace60k.csv
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from graphopt.plan.problem import Buffer, MemoryProblem


def _size(rng: np.random.Generator, scale: float) -> int:
    """Bytes of one tensor: batch x channels x spatial, long-tailed, 64-byte multiple."""
    channels = int(rng.choice([16, 32, 64, 128, 256, 512]))
    spatial = int(rng.choice([7, 14, 28, 56, 112])) ** 2
    raw = channels * spatial * 4 * scale * rng.lognormal(0.0, 0.5)
    return max(64, int(raw) // 64 * 64)


def _step(rng: np.random.Generator, t0: int, layers: int, out: list[tuple[int, int, int]]) -> int:
    """Appends one training step's buffers (start, end, size) from time t0; returns its end."""
    t = t0
    saved: list[tuple[int, int]] = []  # (start, size) of activations kept for backward
    skip_start, skip_size = None, 0
    scale = float(rng.uniform(0.5, 2.0))
    for layer in range(layers):
        if layer % 4 == 0:  # a residual block opens: its input lives across it
            if skip_start is not None:
                out.append((skip_start, t + 1, skip_size))
            skip_start, skip_size = t, _size(rng, scale)
        for _ in range(int(rng.integers(1, 4))):  # temporaries
            out.append((t, t + int(rng.integers(1, 4)), _size(rng, scale) // 2 + 64))
        saved.append((t, _size(rng, scale)))
        t += 1
    if skip_start is not None:
        out.append((skip_start, t + 1, skip_size))
    for start, size in reversed(saved):  # backward: gradients, then the activation is freed
        out.append((t, t + int(rng.integers(1, 3)), size))
        out.append((start, t + 1, size))
        t += 1
    return t + 1


def synthetic_trace(buffers: int, seed: int = 0, layers: tuple[int, int] = (20, 120)) -> MemoryProblem:
    """About `buffers` buffers in training steps of `layers` (min, max) layers each."""
    rng = np.random.default_rng(seed)
    rows: list[tuple[int, int, int]] = []
    t = 0
    while len(rows) < buffers:
        t = _step(rng, t, int(rng.integers(*layers)), rows)
    rows = rows[:buffers]
    return MemoryProblem(tuple(Buffer(i, s, e, z, alignment=1) for i, (s, e, z) in enumerate(rows)),
                         name=f"synthetic{buffers // 1000}k-s{seed}")


def main() -> None:
    from graphopt.plan.csv_io import write_problem

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--buffers", type=int, default=60000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    write_problem(synthetic_trace(args.buffers, args.seed), args.out)


if __name__ == "__main__":
    main()
