"""The `auto` portfolio: cheap heuristics first, then the exact search.

Design: each heuristic in HEURISTICS runs in turn (on problems up to
WHOLE_HEURISTICS_MAX buffers; above, their pure-Python passes over the whole
problem cost seconds each, and the exact planner runs the same orderings per
independent piece anyway) and its placement goes through the validator; an
invalid one is logged and dropped (a planner bug must not reach the arena).
At the lower bound nothing can be better, so the search stops there with
optimal=True. Otherwise the exact planner (`bnb.BranchAndBound`: timeline
decomposition, per-piece heuristics, branch and bound per piece) gets the
remaining time, hinted with the best so far; its answer is validated too, and
a crash in it is logged, not raised. With no valid placement at all, it raises.
The result is never worse than the best heuristic that ran, and `optimal`
certifies height == lower bound or a proof by the exact search.
"""

from __future__ import annotations

import logging
import time

from graphopt.analysis.lower_bound import lower_bound
from graphopt.errors import PlanError
from graphopt.passes.base import DEFAULT_TIME_LIMIT, Planner
from graphopt.passes.bnb import BranchAndBound
from graphopt.passes.greedy_by_size import GreedyBySize
from graphopt.passes.smartpool import ORDERINGS, BestOfOrderings, SmartPool
from graphopt.plan.placement import Placement
from graphopt.plan.problem import MemoryProblem
from graphopt.plan.validator import validate

log = logging.getLogger(__name__)

# SmartPool and greedy-by-size are the first two entries of ORDERINGS, so the
# portfolio's third member runs only the other orderings.
HEURISTICS: tuple[Planner, ...] = (SmartPool(), GreedyBySize(), BestOfOrderings(ORDERINGS[2:]))
WHOLE_HEURISTICS_MAX = 5000  # buffers


class Auto:
    """Best valid placement of the heuristics and the exact search within `time_limit`."""

    name = "auto"

    def __init__(self, heuristics: tuple[Planner, ...] = HEURISTICS, exact=None) -> None:
        self.heuristics = heuristics
        self.exact = exact if exact is not None else BranchAndBound()

    def plan(self, problem: MemoryProblem, time_limit: float = DEFAULT_TIME_LIMIT) -> Placement:
        began = time.perf_counter()
        lb = lower_bound(problem)
        best: Placement | None = None
        small = len(problem) <= WHOLE_HEURISTICS_MAX
        for planner in self.heuristics if small or self.heuristics is not HEURISTICS else ():
            best = _better(problem, best, planner.plan(problem, time_limit))
            if best is not None and best.arena_bytes <= lb:
                return _finish(best, began, optimal=True)
        left = time_limit - (time.perf_counter() - began)
        if left > 0 or best is None:
            best = _better(problem, best, self._exact(problem, max(left, 0.5), best))
        if best is None:
            raise PlanError(f"auto: no planner produced a valid placement for {problem.name or 'the problem'}")
        return _finish(best, began, optimal=best.optimal or best.arena_bytes <= lb)

    def _exact(self, problem: MemoryProblem, seconds: float, hint: Placement | None) -> Placement | None:
        """The exact planner's answer, or None when it crashed (logged: a bug, not a user error)."""
        try:
            return self.exact.plan(problem, seconds, hint=hint)
        except Exception:
            log.exception("auto: %s failed; keeping the heuristics' placement", self.exact.name)
            return None


def _better(problem: MemoryProblem, best: Placement | None, candidate: Placement | None) -> Placement | None:
    """The lower of the two arenas, counting only a candidate that validates."""
    if candidate is None:
        return best
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
