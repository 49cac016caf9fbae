"""Synthetic allocation traces of one pipelined, sharded training step.

Why: the traces of `synthetic_traces.py` split into many independent pieces
(points in time nothing crosses), which the planner solves piece by piece.
Real training traces from production compilers do not: weights, optimizer
state and gradient accumulators live across the whole step, so the timeline
never comes apart, and the planner must pack tens of thousands of buffers at
once. This generator builds that shape, deterministic for a seed:

1. Model: `layers` layers in groups whose widths differ (many distinct
   sizes); each layer has a parameter shard, two optimizer-state shards and
   a gradient accumulator shard. Shards (the sharded-training part) live
   the whole step; a layer's full weights are gathered just before each use
   (forward and backward) and freed right after.
2. Micro-batches with varying token counts run in a one-forward-one-backward
   pipeline: `in_flight` micro-batches are in flight at once, so the saved
   activations of several micro-batches overlap in time.
3. Forward of a layer: gathered weights, 1-4 short temporaries (1-3 steps),
   2-4 saved activations freed by that layer's backward (activations nest:
   first saved, last freed). The loss makes a few huge buffers (logits over a
   vocabulary) that live from the end of forward into the start of backward.
4. Backward of a layer: gathered weights, gradient temporaries, an input
   gradient handed to the next (earlier) layer, a weight-gradient buffer
   reduced into the accumulator shard two steps later.
5. Optimizer step at the end: per layer, 2-3 update temporaries of shard size.

Sizes are bytes of bf16/fp32 tensors rounded up to 512 bytes. The trace grows
micro-batch by micro-batch until it has at least `buffers` buffers.

    python -m benchmarks.training_traces --buffers 30000 --seed 3 --out train30k.csv
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from graphopt.plan.problem import Buffer, MemoryProblem

ROUND = 512  # bytes: production allocators hand out aligned blocks
HIDDEN = (768, 1024, 1536, 2048, 2560, 3072, 4096)
SEQUENCES = (128, 256, 384, 512, 768, 1024)


def _bytes(elements: float, width: int = 2) -> int:
    """Bytes of `elements` values of `width` bytes, rounded up to ROUND."""
    raw = max(1, int(elements)) * width
    return -(-raw // ROUND) * ROUND


@dataclass
class Layer:
    """One layer's shapes: hidden width, expansion of its widest tensor, shard count."""

    hidden: int
    expand: int
    shards: int

    @property
    def params(self) -> int:
        return self.hidden * self.hidden * (2 + 2 * self.expand)

    @property
    def shard_bytes(self) -> int:
        return _bytes(self.params / self.shards, 4)


@dataclass
class Trace:
    """Rows (start, end, size) and the clock."""

    rows: list[tuple[int, int, int]] = field(default_factory=list)
    t: int = 0

    def add(self, start: int, end: int, size: int) -> None:
        self.rows.append((start, max(end, start + 1), size))

    def tick(self) -> int:
        self.t += 1
        return self.t - 1


def _model(rng: np.random.Generator, layers: int) -> list[Layer]:
    """Layers in groups of equal width (stages of a network), widths varying by group."""
    out: list[Layer] = []
    shards = int(rng.choice([4, 8, 16]))
    while len(out) < layers:
        hidden = int(rng.choice(HIDDEN))
        expand = int(rng.choice([2, 3, 4]))
        out += [Layer(hidden, expand, shards) for _ in range(int(rng.integers(2, 9)))]
    return out[:layers]


def _forward(rng: np.random.Generator, tr: Trace, layers: list[Layer], tokens: int, vocab: int) -> list[list]:
    """One micro-batch's forward; returns each layer's saved activations [(start, size)]."""
    saved = []
    for layer in layers:
        t = tr.tick()
        tr.add(t, t + 1, _bytes(layer.params))  # gathered weights
        for _ in range(int(rng.integers(1, 5))):
            width = layer.hidden * int(rng.choice([1, 1, 2, layer.expand]))
            tr.add(t, t + int(rng.integers(1, 4)), _bytes(tokens * width * rng.uniform(0.5, 1.0)))
        acts = []
        for _ in range(int(rng.integers(2, 5))):
            width = layer.hidden * int(rng.choice([1, 1, 3, layer.expand]))
            acts.append((t, _bytes(tokens * width)))
        saved.append(acts)
    t = tr.tick()  # loss: huge logits over the vocabulary, in chunks
    for _ in range(int(rng.integers(1, 4))):
        saved[-1].append((t, _bytes(tokens * vocab * rng.uniform(0.3, 1.0), 4)))
    return saved


def _backward(rng: np.random.Generator, tr: Trace, layers: list[Layer], tokens: int, saved: list[list],
              accum: list[list[int]]) -> None:
    """One micro-batch's backward in reverse layer order; frees its saved activations."""
    grad_in = None
    for k in range(len(layers) - 1, -1, -1):
        layer, t = layers[k], tr.tick()
        tr.add(t, t + 1, _bytes(layer.params))  # gathered again
        for start, size in reversed(saved[k]):
            tr.add(start, t + 1, size)
        for _ in range(int(rng.integers(1, 4))):
            tr.add(t, t + int(rng.integers(1, 3)), _bytes(tokens * layer.hidden * rng.uniform(0.5, 2.0)))
        if grad_in is not None:
            tr.add(grad_in[0], t + 1, grad_in[1])
        grad_in = (t, _bytes(tokens * layer.hidden))
        tr.add(t, t + 2, _bytes(layer.params))  # full weight gradient, reduce-scattered
        accum[k].append(t)
    if grad_in is not None:
        tr.add(grad_in[0], tr.t + 1, grad_in[1])


def _optimizer(rng: np.random.Generator, tr: Trace, layers: list[Layer]) -> None:
    """The update: per layer a few temporaries of shard size (Adam's moments, the step)."""
    for layer in layers:
        t = tr.tick()
        for _ in range(int(rng.integers(2, 4))):
            tr.add(t, t + int(rng.integers(1, 3)), layer.shard_bytes)


def _pipeline(rng: np.random.Generator, tr: Trace, layers: list[Layer], buffers: int, in_flight: int,
              vocab: int) -> list[list[int]]:
    """Micro-batches, one forward then one backward once `in_flight` are in flight,
    until the trace has `buffers` rows; returns each layer's weight-gradient times."""
    accum: list[list[int]] = [[] for _ in layers]
    pending: list[tuple[int, list]] = []
    while len(tr.rows) < buffers:
        tokens = int(rng.choice(SEQUENCES)) * int(rng.integers(1, 5))
        pending.append((tokens, _forward(rng, tr, layers, tokens, vocab)))
        if len(pending) >= in_flight:
            tokens, saved = pending.pop(0)
            _backward(rng, tr, layers, tokens, saved, accum)
    for tokens, saved in pending:
        _backward(rng, tr, layers, tokens, saved, accum)
    return accum


def training_trace(buffers: int, seed: int = 0) -> MemoryProblem:
    """At least `buffers` buffers of one pipelined, sharded training step (see module doc)."""
    rng = np.random.default_rng(seed)
    layers = _model(rng, int(rng.integers(24, 97)))
    vocab = int(rng.choice([32000, 50257, 128256])) // 8  # vocabulary shard
    tr = Trace()
    accum = _pipeline(rng, tr, layers, buffers, int(rng.integers(1, 5)), vocab)
    first_update = tr.t
    _optimizer(rng, tr, layers)
    end = tr.t + 1
    for k, layer in enumerate(layers):  # shards and state live through the whole step
        for _ in range(3):
            tr.add(0, end, layer.shard_bytes)
        tr.add(min(accum[k]), first_update + k + 1, layer.shard_bytes)  # gradient accumulator
    rows = tr.rows
    return MemoryProblem(tuple(Buffer(i, s, e, z, alignment=1) for i, (s, e, z) in enumerate(rows)),
                         name=f"training{len(rows) // 1000}k-s{seed}")


def main() -> None:
    from graphopt.plan.csv_io import write_problem

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--buffers", type=int, default=30000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    write_problem(training_trace(args.buffers, args.seed), args.out)


if __name__ == "__main__":
    main()
