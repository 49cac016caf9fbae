"""Greedy by size (TFLite's GreedyBySize): biggest buffers first, each best-fit.

Cases handled: ties in size go to the longer lifetime first (it constrains
more), then to the earlier start, so the result is deterministic. Alignment is
respected by the shared core (`best_fit.fit_offset`).
"""

from __future__ import annotations

import numpy as np

from graphopt.passes.base import DEFAULT_TIME_LIMIT
from graphopt.passes.best_fit import ProblemArrays, plan_in_order
from graphopt.plan.placement import Placement
from graphopt.plan.problem import MemoryProblem


def by_size(arrays: ProblemArrays) -> np.ndarray:
    """Size descending, then lifetime length descending, then start ascending."""
    durations = arrays.ends - arrays.starts
    return np.lexsort((arrays.starts, -durations, -arrays.sizes))


class GreedyBySize:
    """Best fit in order of decreasing size; one pass, no search."""

    name = "greedy_by_size"

    def plan(self, problem: MemoryProblem, time_limit: float = DEFAULT_TIME_LIMIT) -> Placement:
        return plan_in_order(problem, by_size, self.name)
