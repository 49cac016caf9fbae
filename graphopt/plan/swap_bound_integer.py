"""The integer version of the swap bound (graphopt.plan.swap_bound), and the best certified bound of both (no TVM).

Why: the LP relaxes the event counts as well as the timing. A plan swaps a gap out 0, 1, 2...
times and recomputes it 0 or 1 time; halves of events that meet the memory rows for half
the copy time are what keep the LP low. On transformer-small at 0.50x of the peak the LP
says 0.243% at every stride (every 4th over-budget step to all 95), where ours plans 0.794%;
with the counts integer the same rows prove 0.599% in 2 s (SCIP's branch and bound; see
BoundLp for why not HiGHS).

Why it is still a bound: every variable made integer here (s, F, L, y, z, and the chain
rows' W, Q) counts events, or is 0/1, in the point every valid plan maps to (swap_bound's
docstring); the delays stay continuous. So that point is feasible for the integer program
too, and the search's proven bound (its best bound, valid before it finishes) is at most
the plan's stall. Rows may be sampled as for the LP (fewer rows, still a relaxation).

`certified_lower_bound` is what the benchmarks and the exact model report: the sampled LP
first (fast, and its infeasibility proves that no plan fits), then the integer program on
coarse to fine rows in the time left; the larger bound wins.
"""

from __future__ import annotations

import time

from graphopt.errors import PlanError
from graphopt.plan.swap import SwapProblem
from graphopt.plan.swap_bound import OverheadBound, sampled_lower_bound

STRIDES = (16, 4, 1)  # the integer program's rows: every 16th over-budget step, every 4th, all
LP_SHARE = 0.4  # of the time, for the sampled LP; the integer program gets what it leaves


def integer_lower_bound(sp: SwapProblem, time_limit: float, strides: tuple[int, ...] = STRIDES) -> OverheadBound:
    """The largest bound of the integer programs (coarse to fine rows) in `time_limit` in all
    (swap_bound.sampled_lower_bound); PlanError when none found a first integer point (no bound of
    its own: the caller keeps the LP's)."""
    return sampled_lower_bound(sp, time_limit, strides, integer=True)


def certified_lower_bound(sp: SwapProblem, time_limit: float) -> OverheadBound:
    """The larger of the sampled LP bound (LP_SHARE of the time, or less when it finishes) and
    the integer programs' in the time left; PlanError when neither certified anything."""
    deadline = time.perf_counter() + time_limit
    lp = sampled_lower_bound(sp, time_limit=LP_SHARE * time_limit)
    if lp.status != "optimal":
        return lp  # infeasible or no excess: the integer program would say the same
    try:
        integer = integer_lower_bound(sp, deadline - time.perf_counter())
    except PlanError:
        return lp
    return integer if integer.status == "infeasible" or integer.seconds > lp.seconds else lp
