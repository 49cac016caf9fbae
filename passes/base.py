"""The interface every placement planner shares.

A planner is anything with a `name` and a `plan(problem, time_limit)` that
returns a `Placement`. Planners never see TVM and never judge themselves: the
caller runs `graphopt.plan.validator.validate` on what they return.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from graphopt.plan.placement import Placement
from graphopt.plan.problem import MemoryProblem

DEFAULT_TIME_LIMIT = 10.0  # seconds; heuristics may finish far sooner


@runtime_checkable
class Planner(Protocol):
    """Assigns an offset to every buffer of a problem."""

    name: str

    def plan(self, problem: MemoryProblem, time_limit: float = DEFAULT_TIME_LIMIT) -> Placement:
        """A placement; `time_limit` bounds the wall time of searching planners."""
        ...
