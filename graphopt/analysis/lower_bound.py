"""The lower bound on any placement's arena: the most bytes live at one moment.

Design: every buffer contributes +size at `start` and -size at `end`. Lifetimes
are half-open, so at equal times the frees must come before the allocations (a
buffer ending at t and one starting at t never coexist). Sorting the events by
(time, delta) puts the negative deltas first, and the running sum's maximum is
the bound. O(n log n) in the number of buffers, independent of the time range.
"""

from __future__ import annotations

import numpy as np

from graphopt.plan.problem import MemoryProblem


def _arrays(problem: MemoryProblem) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Starts, ends and sizes as int64 arrays (sizes beyond 2**63 do not occur)."""
    bufs = problem.buffers
    starts = np.fromiter((b.start for b in bufs), dtype=np.int64, count=len(bufs))
    ends = np.fromiter((b.end for b in bufs), dtype=np.int64, count=len(bufs))
    sizes = np.fromiter((b.size for b in bufs), dtype=np.int64, count=len(bufs))
    return starts, ends, sizes


def lower_bound(problem: MemoryProblem) -> int:
    """Max over time of the sum of sizes of the buffers live at that time."""
    if not problem.buffers:
        return 0
    starts, ends, sizes = _arrays(problem)
    times = np.concatenate((starts, ends))
    deltas = np.concatenate((sizes, -sizes))
    order = np.lexsort((deltas, times))  # by time, then frees (negative) first
    return int(np.cumsum(deltas[order]).max())


def live_bytes_per_step(problem: MemoryProblem) -> list[int]:
    """Bytes live at each step 0..num_steps-1, for plots beside the arena size.

    Memory is one int per step, so use it on execution-step problems, not on
    traces whose timestamps are nanoseconds.
    """
    if not problem.buffers:
        return [0] * problem.num_steps
    starts, ends, sizes = _arrays(problem)
    delta = np.zeros(problem.num_steps + 1, dtype=np.int64)
    np.add.at(delta, starts, sizes)
    np.add.at(delta, ends, -sizes)
    return [int(v) for v in np.cumsum(delta[:-1])]
