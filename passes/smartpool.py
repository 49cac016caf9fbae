"""Lifetime-aware best fit in the spirit of SINGA's SmartPool, and a portfolio
of orderings around the same core.

SmartPool (Zhang et al.) colours the interval graph of one training
iteration's allocations: each variable gets the best address range that is
free throughout its lifetime, taken in the order the variables are allocated.
`SmartPool` does exactly that with the shared best-fit core (ties at one start:
bigger first). `BestOfOrderings` runs the core over several orders and fit
rules and keeps the lowest arena: each order wins on some instances (size
first on a few huge tensors, start order on long chains, "pressure" order on
peaks made of many medium tensors), and a pass costs only O(n log n + overlaps).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from graphopt.passes.base import DEFAULT_TIME_LIMIT
from graphopt.passes.best_fit import (
    OverlapIndex,
    ProblemArrays,
    offsets_by_id,
    place_in_order,
    plan_in_order,
)
from graphopt.passes.greedy_by_size import by_size
from graphopt.plan.placement import Placement
from graphopt.plan.problem import MemoryProblem


def by_start(arrays: ProblemArrays) -> np.ndarray:
    """Allocation order (SmartPool): start ascending, then size descending."""
    return np.lexsort((-arrays.sizes, arrays.starts))


def by_duration(arrays: ProblemArrays) -> np.ndarray:
    """Longest-lived first: they block an address range for the most steps."""
    return np.lexsort((-arrays.sizes, -(arrays.ends - arrays.starts)))


def by_area(arrays: ProblemArrays) -> np.ndarray:
    """Largest size x lifetime first: the biggest rectangles in the strip."""
    return np.lexsort((-arrays.sizes, -arrays.sizes * (arrays.ends - arrays.starts)))


def by_pressure(arrays: ProblemArrays) -> np.ndarray:
    """Buffers live at the busiest moments first (TFLite's greedy by breadth).

    A buffer's pressure is the most bytes live at any time within its lifetime;
    the buffers of the peak go in first, packed tightly, bigger first.
    """
    times = np.unique(np.concatenate((arrays.starts, arrays.ends)))
    delta = np.zeros(len(times) + 1, dtype=np.int64)
    np.add.at(delta, np.searchsorted(times, arrays.starts), arrays.sizes)
    np.add.at(delta, np.searchsorted(times, arrays.ends), -arrays.sizes)
    live = np.cumsum(delta)[:-1]  # live[k]: bytes live during [times[k], times[k+1])
    first = np.searchsorted(times, arrays.starts)
    last = np.searchsorted(times, arrays.ends)  # exclusive
    pressure = np.array([live[a:b].max() for a, b in zip(first.tolist(), last.tolist())], dtype=np.int64)
    return np.lexsort((arrays.starts, -arrays.sizes, -pressure))


Ordering = Callable[[ProblemArrays], np.ndarray]

# (name, order, fit rule); tried in this order, the first two are the classics.
ORDERINGS: tuple[tuple[str, Ordering, str], ...] = (
    ("size", by_size, "best"),
    ("start", by_start, "best"),
    ("pressure", by_pressure, "best"),
    ("area", by_area, "best"),
    ("duration", by_duration, "best"),
    ("size-first-fit", by_size, "first"),
    ("start-first-fit", by_start, "first"),
)


class SmartPool:
    """Best fit in allocation (start) order."""

    name = "smartpool"

    def plan(self, problem: MemoryProblem, time_limit: float = DEFAULT_TIME_LIMIT) -> Placement:
        return plan_in_order(problem, by_start, self.name)


class BestOfOrderings:
    """Runs the core over every entry of ORDERINGS, keeps the lowest arena.

    Stops trying further orderings once `time_limit` is spent (the first one
    always runs) or an arena reaches `target` (callers pass the lower bound:
    nothing can beat it).
    """

    name = "best_of_orderings"

    def __init__(self, orderings: tuple[tuple[str, Ordering, str], ...] = ORDERINGS) -> None:
        self.orderings = orderings

    def plan(self, problem: MemoryProblem, time_limit: float = DEFAULT_TIME_LIMIT, target: int = 0) -> Placement:
        began = time.perf_counter()
        arrays = ProblemArrays.of(problem)
        index = OverlapIndex(arrays)
        best, best_name = None, ""
        for label, order, rule in self.orderings:
            offsets = place_in_order(arrays, index, order(arrays), rule)
            height = int((offsets + arrays.sizes).max(initial=0))
            if best is None or height < best[0]:
                best, best_name = (height, offsets), label
            if height <= target or time.perf_counter() - began > time_limit:
                break
        return Placement.from_offsets(
            problem, offsets_by_id(arrays, best[1]), f"{self.name}[{best_name}]",
            seconds=time.perf_counter() - began,
        )
