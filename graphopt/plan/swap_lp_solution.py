"""The fractional decisions of the swap bound's LP, for planners that round them (no TVM).

Why: the LP of graphopt.plan.swap_bound (with the chain rows of swap_bound_chain) is a
relaxation of the whole swap + recompute model; its optimum says which gaps it would
swap or recompute, and for a recompute's dead inputs whether it keeps them (extend) or
runs their producer again (rebuild). Checkmate-style rounding (passes/swap_lp_round.py)
starts from those values. This module only solves the LP and reads its values; the bound
itself stays in swap_bound (`overhead_lower_bound`), unchanged and certified.

The LP is solved on sampled rows (swap_bound.sampled_steps): about ROWS of them, a stride
fixed by the problem (not by the clock, so a rerun reads the same values); only if that LP
does not finish in the time given is the stride doubled. On the 6-layer transformer at half
the peak (350 over-budget steps) every 64th step solves in ~2 s, every 32nd in ~5 s, every
16th in ~19 s (2-core VM). Gaps that span no sampled row have no variable: they read as 0.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
from ortools.linear_solver import pywraplp

from graphopt.plan.swap import Gap, SwapProblem, base_live_bytes
from graphopt.plan.swap_bound import sampled_steps
from graphopt.plan.swap_bound_chain import ChainBoundLp

ROWS = 8  # sampled over-budget steps the LP keeps
RETRIES = 3  # doublings of the stride when the LP runs out of time


@dataclass(frozen=True)
class LpSolution:
    """Values of one solved LP: per candidate gap, per (buffer, step) of a chain, per row."""

    stall: float  # seconds: the LP optimum (a lower bound on the overhead, for these rows)
    stride: int
    swap: dict[Gap, float] = field(default_factory=dict)  # s_g: copy-outs (and copy-ins) of the gap
    recompute: dict[Gap, float] = field(default_factory=dict)  # y_g: recomputes of the gap
    away: dict[Gap, dict[int, float]] = field(default_factory=dict)  # swap gap -> row -> away there (F - L)
    extend: dict[tuple[int, int], float] = field(default_factory=dict)  # (buffer, step) -> W: kept through step
    rebuild: dict[tuple[int, int], float] = field(default_factory=dict)  # (buffer, step) -> Q: rebuilt there


def solve_relaxation(sp: SwapProblem, time_limit: float, rows: int = ROWS) -> LpSolution | None:
    """The LP on about `rows` sampled over-budget steps, solved to optimality within 75% of
    `time_limit` (then coarser, with 75% of what is left, the last try with all of it); None
    when the budget needs nothing away, the LP is infeasible (no plan fits) or none finished."""
    live = base_live_bytes(sp.problem, sp.num_steps)
    over = [int(k) for k in np.flatnonzero(live > sp.budget)]
    if not over:
        return None
    deadline, stride = time.perf_counter() + time_limit, max(1, math.ceil(len(over) / rows))
    for attempt in range(RETRIES):
        left = deadline - time.perf_counter()
        if left <= 0.2:
            break
        lp = ChainBoundLp(sp, sampled_steps(over, live, stride), live)
        status = lp.solve(left if attempt == RETRIES - 1 else 0.75 * left)  # room left for a coarser one
        if status == pywraplp.Solver.INFEASIBLE:
            return None
        if status == pywraplp.Solver.OPTIMAL:
            return read_solution(lp, stride)
        stride *= 2
    return None


def read_solution(lp: ChainBoundLp, stride: int) -> LpSolution:
    """The values of a solved LP as plain dictionaries (the solver object is not kept)."""
    away: dict[Gap, dict[int, float]] = {}
    for (g, k), f in lp.freed.items():
        away.setdefault(g, {})[k] = f.solution_value() - lp.loaded[g, k].solution_value()
    return LpSolution(
        stall=max(0.0, lp.stall_seconds()),
        stride=stride,
        swap={g: v.solution_value() for g, v in lp.count.items()},
        recompute={g: v.solution_value() for g, v in lp.runs.items()},
        away=away,
        extend={key: v.solution_value() for key, v in lp.extended.items()},
        rebuild={key: v.solution_value() for key, v in lp.rebuilds.items()},
    )
