"""LP rounding: the swap bound's fractional optimum made into schedules (part of "ours").

Why: the certified LP bound (graphopt.plan.swap_bound with the chain rows of
swap_bound_chain) sat at 1.2% on the 6-layer transformer at half the peak while the
covering searches found 9-12%; its optimum recomputes what is cheap to rebuild (attention
scores with Q, K kept by extends) and swaps the rest. Checkmate (Jain et al., MLSys'20)
rounds such an LP; this pass does the same on our model:
1. solve the LP (sampled rows, graphopt.plan.swap_lp_solution) at the budget;
2. for each threshold theta of THRESHOLDS and each timing of TIMINGS: recompute every gap
   with y >= theta, highest first, its dead inputs rebuilt where the LP's rebuild value Q
   beats its extend value W (extended otherwise); then the swaps: "lp" and "hidden" swap
   every gap with s >= theta, timed as SINGA hides it (out early, in late:
   swap_singa.early_late), widened to the rows the LP had it away ("lp") or left out where
   the gap cannot hide it ("hidden"); "cover" ignores the LP's swaps and lets the covering
   model (swap_cover.solve_cover) pick hidden swaps for what the recomputes leave over the
   budget (the LP's engine rows are sampled, so it may ask for more copies than the
   engines carry); events that clash with what is kept are left out
   (graphopt.plan.swap_lp_assemble);
3. repair: steps still over the budget get the rich greedy's recomputes and priced swaps
   (swap_rich_greedy.rich_greedy; plain model: live-input recomputes, hidden and whole-gap
   swaps); where it gets stuck, again with whole-gap swaps, then from the recomputes alone;
4. polish: prune what frees nothing needed, dearest first, and retime each swap by local
   search, while that gains (graphopt.plan.swap_lp_assemble.polished);
5. validate (graphopt.plan.swap_validator): only valid schedules are returned.
Measured (benchmarks/results/swap-lp-round-2026-12-07*.md): alone it is 2-9% on the deep
ResNet (0.66x-0.50x of the peak) and 9-15% on the 6-layer transformer, never better there
than the rich search, because the LP's engine rows are sampled and its rounded swaps queue
on the copy engines (15-22% before repair on the transformer at 0.50x). It is kept as one
of ours' candidates because it fits where the searches do not: at the ResNet's feasibility
floor (0.174x) it found a valid schedule (26.5%) where the rich search found none.
The LP's stride is fixed by the problem and every stage is bounded by rounds, not by the
clock (the deadline is a guard), so a rerun gives the same schedules unless the time limit
cuts it short (it did on the transformer at 20 s).
"""

from __future__ import annotations

import time

import numpy as np

from graphopt.passes.swap_cover import hidden_swap_events, solve_cover
from graphopt.passes.swap_rich import rich_recompute_events, rich_swap_events
from graphopt.passes.swap_rich_greedy import rich_greedy
from graphopt.passes.swap_singa import InfeasibleBudget, early_late
from graphopt.plan.swap import Gap, Recompute, Swap, SwapProblem, SwapSchedule, base_live_bytes, live_bytes
from graphopt.plan.swap_lp_assemble import assemble, compatible_swaps, fits, polished
from graphopt.plan.swap_lp_solution import LpSolution, solve_relaxation
from graphopt.plan.swap_validator import SwapReport, validate_swaps

THRESHOLDS = (0.9, 0.5)
TIMINGS = ("cover", "lp", "hidden")  # in this order, each with all the time left: the first ones finish
LP_SHARE = 0.6  # of the time limit, for the LP (what it leaves goes to the variants)
COVER_SECONDS = 3.0  # the covering model's limit per variant
COVER_WEIGHT = 0.3  # its price of a hidden swap, in copy seconds (swap_cover's contention weight)
AWAY = 0.25  # an LP row counts as "away" for a swap's timing from this much of it away


class SwapLpRound:
    """The planner interface over `lp_round_schedules`: the best valid schedule, or InfeasibleBudget."""

    name = "lp-round"

    def plan(self, sp: SwapProblem, time_limit: float = 10.0) -> SwapSchedule:
        began = time.perf_counter()
        found = lp_round_schedules(sp, time_limit)
        if not found:
            raise InfeasibleBudget(f"lp-round: no schedule under {sp.budget} bytes (the LP is infeasible, or it or "
                                   "the repair ran out of time or candidates)")
        schedule, report = found[0]
        return SwapSchedule(schedule.swaps, schedule.planner, time.perf_counter() - began,
                            {"stall": report.stall}, schedule.recomputes, schedule.rebuilds, schedule.extends)


def lp_round_schedules(sp: SwapProblem, time_limit: float) -> list[tuple[SwapSchedule, SwapReport]]:
    """Steps 1-5 of the module docstring: (schedule, validator report) pairs, least overhead first."""
    began = time.perf_counter()
    base = base_live_bytes(sp.problem, sp.num_steps)
    over = [int(k) for k in np.flatnonzero(base > sp.budget)]
    if not over:
        return [(SwapSchedule((), "lp-round"), validate_swaps(sp, SwapSchedule((), "lp-round")))]
    solution = solve_relaxation(sp, LP_SHARE * time_limit)
    if solution is None:
        return []
    recomputes, swaps = _repair_events(sp, over)
    out, seen = [], set()
    deadline = began + time_limit
    for theta, timing in [(theta, timing) for theta in THRESHOLDS for timing in TIMINGS]:
        if time.perf_counter() > deadline - 0.2:
            break
        start = rounded(sp, solution, theta, "hidden" if timing == "cover" else timing)
        if timing == "cover":
            start = _covered(sp, SwapSchedule((), start.planner.replace("hidden", "cover"),
                                              recomputes=start.recomputes, rebuilds=start.rebuilds,
                                              extends=start.extends), deadline)
        schedule = _one(sp, start, recomputes, swaps, deadline)
        if schedule is None:
            continue
        key = (frozenset(schedule.swaps), frozenset(schedule.recomputes), schedule.rebuilds, schedule.extends)
        report = validate_swaps(sp, schedule)
        if report.valid and key not in seen:
            seen.add(key)
            out.append((schedule, report))
    return sorted(out, key=lambda pair: pair[1].stall)


def _covered(sp: SwapProblem, start: SwapSchedule, deadline: float) -> SwapSchedule:
    """Timing "cover" of step 2: the rounded recomputes, then the hidden swaps the covering model
    (swap_cover.solve_cover, one worker) picks for what is still over the budget; `start` itself
    when it fits or the model finds no cover in time (the repair goes on from there)."""
    load = live_bytes(sp, (), start.recomputes, start.rebuilds, start.extends)
    over = [int(k) for k in np.flatnonzero(load > sp.budget)]
    seconds = min(COVER_SECONDS, deadline - time.perf_counter())
    if not over or seconds <= 0.1:
        return start
    hidden = dict(hidden_swap_events(sp, over))
    events = [(s, hidden[s]) for s in compatible_swaps(sp, start, list(hidden))]
    chosen = solve_cover(sp, events, over, load, COVER_WEIGHT, seconds, workers=1)
    if chosen is None:
        return start
    rebuilt = {(r.buffer, r.at) for r in start.rebuilds}
    return assemble(sp, list(start.recomputes), chosen, lambda i, t: (i, t) in rebuilt, start.planner)[0]


def _one(sp: SwapProblem, schedule: SwapSchedule, recomputes: list[Recompute], swaps: list[Swap],
         deadline: float) -> SwapSchedule | None:
    """Steps 3-4 for one rounded schedule; None when the repair cannot fit the budget."""
    if not fits(sp, schedule):
        schedule = _repaired(sp, schedule, recomputes, swaps, deadline)
        if schedule is None:
            return None
    return polished(sp, schedule, deadline)


def _repaired(sp: SwapProblem, start: SwapSchedule, recomputes: list[Recompute], swaps: list[Swap],
              deadline: float) -> SwapSchedule | None:
    """Step 3. The greedy never undoes a choice, so where it gets stuck it starts again: with every
    swap away on its whole gap (a hidden swap may leave a step no other event covers), then from
    the rounded recomputes alone (a rounded swap may take away what the only fitting recompute reads)."""
    widest = [_widest(sp, s) for s in swaps]
    alone = SwapSchedule((), start.planner, recomputes=start.recomputes, rebuilds=start.rebuilds,
                         extends=start.extends)
    for begin, candidates in ((start, swaps), (start, widest), (alone, swaps), (alone, widest)):
        repaired = rich_greedy(sp, begin, recomputes, candidates, deadline)
        if repaired is not None:
            return repaired
    return None


def _widest(sp: SwapProblem, s: Swap) -> Swap:
    """`s` away on its whole gap (the retiming narrows it again where that hides a copy)."""
    return Swap(s.buffer, s.after, s.after + 1, s.before if sp.rich else s.before - 1, s.before)


def rounded(sp: SwapProblem, solution: LpSolution, theta: float, timing: str = "hidden") -> SwapSchedule:
    """Step 2: the LP's events at or above `theta`, assembled into a schedule (maybe over budget)."""
    chosen = sorted((g for g, y in solution.recompute.items() if y >= theta),
                    key=lambda g: (-solution.recompute[g], g.buffer, g.after))
    recomputes = [Recompute(g.buffer, g.after, g.before) for g in chosen]
    by_value = sorted((g for g, s in solution.swap.items() if s >= theta),
                      key=lambda g: (-solution.swap[g], g.buffer, g.after))
    starts = sp.nominal_starts()
    swaps = [s for s in (_timed(sp, g, solution, starts, timing) for g in by_value) if s is not None]

    def prefer_rebuild(i: int, t: int) -> bool:
        return solution.rebuild.get((i, t), 0.0) > solution.extend.get((i, t), 0.0)

    return assemble(sp, recomputes, swaps, prefer_rebuild, f"lp-round-t{theta}-{timing}")[0]


def _timed(sp: SwapProblem, g: Gap, solution: LpSolution, starts: np.ndarray, timing: str) -> Swap | None:
    """A swap of gap g, hidden where the gap allows; "lp": also away on the rows the LP had it
    away, "hidden": None where the gap cannot hide it."""
    free_at, load_at = early_late(sp, g, starts)
    if timing == "hidden":
        last = g.before - 1
        return Swap(g.buffer, g.after, free_at, load_at, g.before) if g.after < free_at < load_at <= last else None
    rows = [k for k, away in solution.away.get(g, {}).items() if away >= AWAY * max(solution.swap[g], 1e-9)]
    if rows:
        free_at, load_at = min(free_at, min(rows)), max(load_at, max(rows) + 1)
    last = g.before if sp.rich else g.before - 1
    free_at = max(g.after + 1, min(free_at, last - 1))
    load_at = min(max(load_at, free_at + 1), last)
    if not g.after < free_at < load_at <= last:
        return None
    return Swap(g.buffer, g.after, free_at, load_at, g.before)


def _repair_events(sp: SwapProblem, over: list[int]) -> tuple[list[Recompute], list[Swap]]:
    """Step 3's candidates: the rich model's own, or the plain model's (recomputes whose inputs
    live, and two swaps per gap: hidden where it can be, and away on the whole gap, stalling)."""
    if sp.rich:
        return [r for r, _ in rich_recompute_events(sp, over)], [s for s, _ in rich_swap_events(sp, over)]
    recomputes = [Recompute(g.buffer, g.after, g.before) for g in sp.recompute_gaps()]
    starts, swaps = sp.nominal_starts(), []
    for g in sp.gaps():
        free_at, load_at = early_late(sp, g, starts)
        widest = Swap(g.buffer, g.after, g.after + 1, g.before - 1, g.before)
        hidden = Swap(g.buffer, g.after, free_at, load_at, g.before)
        swaps += [widest] + ([hidden] if free_at < load_at and hidden != widest else [])
    return [r for r in recomputes if _covers(r, over)], [s for s in swaps if _covers(s, over)]


def _covers(event, over: list[int]) -> bool:
    return any(event.free_at <= k < event.load_at for k in over)
