"""The training-trace generator: deterministic, shaped like a training step, one piece."""

from __future__ import annotations

import numpy as np

from benchmarks.training_traces import training_trace
from graphopt.analysis.lower_bound import lower_bound
from graphopt.passes.decompose import split_timeline


def _columns(problem):
    return [np.array([getattr(b, a) for b in problem.buffers]) for a in ("start", "end", "size")]


def test_same_seed_same_trace_other_seed_other_trace():
    assert training_trace(800, seed=3) == training_trace(800, seed=3)
    assert training_trace(800, seed=3) != training_trace(800, seed=4)


def test_reaches_the_requested_buffers_and_never_splits():
    problem = training_trace(1500, seed=1)
    starts, ends, sizes = _columns(problem)
    assert len(problem) >= 1500
    assert (ends > starts).all() and (sizes > 0).all()
    assert len(split_timeline(starts, ends)) == 1  # shards live the whole step


def test_training_shape_long_lived_state_many_sizes_huge_tail():
    problem = training_trace(3000, seed=2)
    starts, ends, sizes = _columns(problem)
    span = ends.max() - starts.min()
    whole = (starts == starts.min()) & (ends == ends.max())
    assert 0 < whole.sum() < len(problem) // 10  # weights and optimizer state: few, always live
    assert np.median(ends - starts) < span / 20  # most buffers are short activations/temporaries
    assert len(np.unique(sizes)) > len(problem) // 10
    assert sizes.max() > 20 * np.median(sizes)  # a few huge buffers (logits)
    assert lower_bound(problem) < sizes.sum() // 4  # reuse matters
