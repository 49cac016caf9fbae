"""The `auto` portfolio: cheap heuristics first, CP-SAT on what time is left.

Design: each heuristic in HEURISTICS runs in turn and its placement goes
through the validator; an invalid one is logged and dropped (a planner bug
must not reach the arena). The best valid result so far is kept. At the lower
bound nothing can be better, so the search stops there with optimal=True.
Otherwise CP-SAT gets the remaining time, hinted with the best, and its answer
is validated too. With no valid placement at all, it raises.
"""

from __future__ import annotations

import logging
import time

from graphopt.passes.base import DEFAULT_TIME_LIMIT, Planner
from graphopt.passes.cpsat import CpSat
from graphopt.passes.greedy_by_size import GreedyBySize
from graphopt.passes.smartpool import ORDERINGS, BestOfOrderings, SmartPool

from graphopt.analysis.lower_bound import lower_bound
from graphopt.errors import PlanError
from graphopt.plan.placement import Placement
from graphopt.plan.problem import MemoryProblem
from graphopt.plan.validator import validate

log = logging.getLogger(__name__)

# SmartPool and greedy-by-size are the first two entries of ORDERINGS, so the
# portfolio's third member runs only the other orderings.
HEURISTICS: tuple[Planner, ...] = (SmartPool(), GreedyBySize(), BestOfOrderings(ORDERINGS[2:]))


class Auto:
    """Best valid placement of the heuristics and CP-SAT within `time_limit`."""

    name = "auto"

    def __init__(self, heuristics: tuple[Planner, ...] = HEURISTICS, exact: CpSat | None = None) -> None:
        self.heuristics = heuristics
        self.exact = exact if exact is not None else CpSat()

    def plan(self, problem: MemoryProblem, time_limit: float = DEFAULT_TIME_LIMIT) -> Placement:
        began = time.perf_counter()
        lb = lower_bound(problem)
        best: Placement | None = None
        for planner in self.heuristics:
            best = _better(problem, best, planner.plan(problem, time_limit))
            if best is not None and best.arena_bytes <= lb:
                return _finish(best, began, optimal=True)
        left = time_limit - (time.perf_counter() - began)
        if best is not None and left > 0:
            best = _better(problem, best, self.exact.plan(problem, left, hint=best))
        if best is None:
            raise PlanError(f"auto: no planner produced a valid placement for {problem.name or 'the problem'}")
        return _finish(best, began, optimal=best.optimal or best.arena_bytes <= lb)


def _better(problem: MemoryProblem, best: Placement | None, candidate: Placement) -> Placement | None:
    """The lower of the two arenas, counting only a candidate that validates."""
    report = validate(problem, candidate)
    if not report.valid:
        log.error("auto: dropping %s: %s", candidate.planner, report.summary())
        return best
    if best is None or candidate.arena_bytes < best.arena_bytes:
        return candidate
    if candidate.arena_bytes == best.arena_bytes and candidate.optimal:
        return candidate  # same arena, now proven optimal
    return best


def _finish(best: Placement, began: float, optimal: bool | None) -> Placement:
    """The chosen placement, named auto/<winner>, with the portfolio's wall time."""
    return Placement(best.offsets, best.arena_bytes, f"auto/{best.planner}", optimal, time.perf_counter() - began)
