"""Exact placement with OR-Tools CP-SAT, started from the best heuristic.

Design: time is fixed, so each buffer is a rectangle that can only slide in
address. Model: per buffer a fixed time interval and an address interval of
its size whose start is a variable; NoOverlap2D over the pairs; height >= every
top; minimize height. To keep the search small and never go backwards:
- Addresses are counted in units of the gcd of all sizes (and hint offsets),
  refined by alignments (`address_unit`). That loses nothing: any placement can
  be pushed down (in address order) until each buffer rests on 0 or on the
  aligned top of another, and such offsets stay on that grid.
- An alignment of k units becomes offset = k * y with y the variable.
- height >= the lower bound (cuts the proof short when it is reached), height
  <= the hint's height, and the hint's offsets are given as a solution hint.
- A redundant cumulative (per time, the sizes live fit under height) gives the
  solver the lower-bound reasoning directly.
- The answer is never worse than the hint: without a better solution (time
  out, solver failure) the hint itself comes back, and the planner name says so.
Problems above MAX_BUFFERS buffers are not modelled (the model and its
pairwise reasoning grow too big to help in seconds); the hint comes back, named
as skipped, and a warning is logged.
"""

from __future__ import annotations

import logging
import math
import time

from ortools.sat.python import cp_model

from graphopt.analysis.lower_bound import lower_bound
from graphopt.passes.base import DEFAULT_TIME_LIMIT
from graphopt.passes.smartpool import BestOfOrderings
from graphopt.plan.placement import Placement
from graphopt.plan.problem import MemoryProblem

log = logging.getLogger(__name__)

MAX_BUFFERS = 2000
NUM_WORKERS = 2


def address_unit(problem: MemoryProblem, hint: Placement) -> int:
    """The coarsest address grid that loses no placement (see the design note).

    Start from the gcd of sizes and hint offsets. An alignment that divides the
    grid, or is a multiple of it, keeps pushed-down offsets on the grid; any
    other alignment refines the grid to its gcd with it, until nothing changes.
    """
    unit = math.gcd(*(b.size for b in problem.buffers), *hint.offsets.values())
    changed = True
    while changed:
        changed = False
        for a in {b.alignment for b in problem.buffers}:
            if unit % a and a % unit:
                unit, changed = math.gcd(unit, a), True
    return unit


def _build(problem: MemoryProblem, unit: int, lb: int, hint: Placement):
    """The CP-SAT model in address units; returns (model, offset exprs, height)."""
    model = cp_model.CpModel()
    top = hint.arena_bytes // unit
    height = model.NewIntVar(-(-lb // unit), top, "height")
    times, spaces, demands, offsets = [], [], [], []
    for b in problem.buffers:
        size, step = b.size // unit, max(1, b.alignment // math.gcd(b.alignment, unit))
        y = model.NewIntVar(0, (top - size) // step, f"y{b.id}")
        offset = step * y
        model.AddHint(y, hint.offsets[b.id] // unit // step)
        model.Add(offset + size <= height)
        times.append(model.NewFixedSizeIntervalVar(b.start, b.end - b.start, f"t{b.id}"))
        spaces.append(model.NewFixedSizeIntervalVar(offset, size, f"a{b.id}"))
        demands.append(size)
        offsets.append(offset)
    model.AddNoOverlap2D(times, spaces)
    model.AddCumulative(times, demands, height)
    model.AddHint(height, top)
    model.Minimize(height)
    return model, offsets, height


class CpSat:
    """CP-SAT over the NoOverlap2D model, hinted with a heuristic placement."""

    name = "cpsat"

    def plan(
        self, problem: MemoryProblem, time_limit: float = DEFAULT_TIME_LIMIT, hint: Placement | None = None
    ) -> Placement:
        began = time.perf_counter()
        lb = lower_bound(problem)
        if hint is None:
            hint = BestOfOrderings().plan(problem, time_limit / 4, target=lb)
        if hint.arena_bytes <= lb:
            return _keep(hint, f"{self.name}(hint {hint.planner} is at the lower bound)", began, True)
        if len(problem) > MAX_BUFFERS:
            log.warning("cpsat: %d buffers > %d, not modelled; kept %s", len(problem), MAX_BUFFERS, hint.planner)
            why = f"skipped: {len(problem)} > {MAX_BUFFERS} buffers"
            return _keep(hint, f"{self.name}({why}; kept {hint.planner})", began)
        seconds = max(0.1, time_limit - (time.perf_counter() - began))
        status, offsets = _solve(problem, lb, hint, seconds)
        if offsets is None:  # nothing below the hint; OPTIMAL then proves the hint optimal
            why = f"no better than {hint.planner}: {status}"
            return _keep(hint, f"{self.name}({why})", began, status == "OPTIMAL")
        found = Placement.from_offsets(problem, offsets, self.name)
        optimal = status == "OPTIMAL" or found.arena_bytes <= lb
        return Placement(found.offsets, found.arena_bytes, self.name, optimal, time.perf_counter() - began)


def _solve(problem: MemoryProblem, lb: int, hint: Placement, seconds: float) -> tuple[str, dict[int, int] | None]:
    """Runs the solver; offsets only when it found an arena below the hint's."""
    unit = address_unit(problem, hint)
    model, offsets, height = _build(problem, unit, lb, hint)
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = seconds
    solver.parameters.num_workers = NUM_WORKERS
    status = solver.Solve(model)
    name = solver.StatusName(status)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE) or solver.Value(height) * unit >= hint.arena_bytes:
        return name, None
    return name, {b.id: solver.Value(o) * unit for b, o in zip(problem.buffers, offsets)}


def _keep(hint: Placement, planner: str, began: float, optimal: bool | None = None) -> Placement:
    """The hint, renamed so that reports show CP-SAT did not improve it."""
    seconds = time.perf_counter() - began
    return Placement(hint.offsets, hint.arena_bytes, planner, optimal or hint.optimal, seconds)
