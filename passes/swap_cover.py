"""A covering model for the joint choice of swaps and recomputations (part of "ours").

Why: the full timing model (swap_cpsat) is exact but large; on a few hundred
steps CP-SAT may not improve on the heuristics in seconds. This model fixes the
timing instead and keeps only the choice, which CP-SAT solves to optimality fast:
* a swap candidate is an idle gap whose copies hide on the nominal timeline (out
  as early, in as late as possible, as SINGA times them); it is absent on those
  fixed steps and costs `weight` x its copy time (a price for engine contention:
  copies serialize, which only the simulator sees);
* a recompute candidate is absent on (after, before) and costs its producer's time;
* every over-budget step must lose at least its excess; one event per gap; a
  recompute's inputs are not away where it runs.
Minimize the total cost. Each weight gives one schedule; the caller judges them
all with the exact simulator and keeps the best.

A last variant prices contention exactly instead of by a weight: every swap
candidate comes in a few timings (tightest, then with more slack for its
copies), its copy-out must fit between its use and the step that reuses its
range, its copy-in between the step that takes the range and its next use, on
the no-swap timeline, and the copies of one direction may not overlap (one
engine each). Its swaps then hide by construction, so only recomputes cost.
"""

from __future__ import annotations

import time

from ortools.sat.python import cp_model

from graphopt.passes.swap_singa import early_late
from graphopt.plan.swap import Recompute, Swap, SwapProblem, SwapSchedule, base_live_bytes, conflict

WEIGHTS = (0.05, 0.3, 1.0, 3.0)
SLACK_VARIANTS = 3


def cover_schedules(sp: SwapProblem, time_limit: float, workers: int = 2) -> list[SwapSchedule]:
    """One optimal covering schedule per contention weight, and one with the engines
    modelled (those CP-SAT solved in time).

    The weights go first, with up to a quarter of the time (they are usually proven optimal in
    a tenth of a second), and the engines model gets all the time they leave. Why: on hundreds
    of steps the engines model is still improving when its time runs out (transformer6 at
    0.50x: 2.0% after 6 s, 0.8-2.0% after 12 s, from run to run)."""
    began = time.perf_counter()
    base = base_live_bytes(sp.problem, sp.num_steps)
    over = [k for k in range(sp.num_steps) if base[k] > sp.budget]
    if not over:
        return []
    events = hidden_swap_events(sp, over) + _recompute_events(sp, over)
    share = 0.25 * time_limit / len(WEIGHTS)
    weighted = []
    for weight in WEIGHTS:
        chosen = solve_cover(sp, events, over, base, weight, share, workers)
        if chosen is not None:
            weighted.append(_schedule(chosen, f"cover-w{weight}"))
    engine_events = swap_variants(sp, over) + _recompute_events(sp, over)
    left = time_limit - (time.perf_counter() - began)
    chosen = solve_cover(sp, engine_events, over, base, 0.0, left, workers, engines=True)
    return ([_schedule(chosen, "cover-engines")] if chosen is not None else []) + weighted


def _schedule(chosen: list, name: str) -> SwapSchedule:
    swaps = tuple(e for e in chosen if isinstance(e, Swap))
    return SwapSchedule(swaps, name, recomputes=tuple(e for e in chosen if isinstance(e, Recompute)))


def swap_variants(sp: SwapProblem, over: list[int]) -> list[tuple[Swap, float]]:
    """Each hideable gap in a few timings: the tightest, then with more room for the copies."""
    starts = sp.nominal_starts()
    out = []
    for gap in sp.gaps():
        free_at, load_at = early_late(sp, gap, starts)
        step = max(1, (load_at - free_at) // (2 * SLACK_VARIANTS))
        for k in range(SLACK_VARIANTS):
            swap = Swap(gap.buffer, gap.after, free_at + k * step, load_at - k * step, gap.before)
            if swap.free_at < swap.load_at and _covers(swap, over):
                out.append((swap, sp.copy_seconds(gap.buffer)))
    return out


def _covers(event, over: list[int]) -> bool:
    return any(event.free_at <= k < event.load_at for k in over)


def hidden_swap_events(sp: SwapProblem, over: list[int]) -> list[tuple[Swap, float]]:
    """Each swappable gap timed as SINGA hides it (out early, in late), where it covers a step of `over`."""
    starts = sp.nominal_starts()
    out = []
    for gap in sp.gaps():
        free_at, load_at = early_late(sp, gap, starts)
        swap = Swap(gap.buffer, gap.after, free_at, load_at, gap.before)
        if free_at < load_at and _covers(swap, over):
            out.append((swap, sp.copy_seconds(gap.buffer)))
    return out


def _recompute_events(sp: SwapProblem, over: list[int]) -> list[tuple[Recompute, float]]:
    events = [Recompute(g.buffer, g.after, g.before) for g in sp.recompute_gaps()]
    return [(r, sp.recompute_seconds(r.buffer)) for r in events if _covers(r, over)]


def solve_cover(sp: SwapProblem, events: list, over: list[int], base, weight: float, time_limit: float,
                workers: int, engines: bool = False) -> list | None:
    """The cheapest choice of `events` (swaps priced at `weight` x their copy time) taking every step of
    `over` from its load in `base` under the budget; None when CP-SAT found none in time."""
    md = cp_model.CpModel()
    use = [md.new_bool_var(f"e{n}") for n in range(len(events))]
    scale = 1e6 / max(sum(sp.step_seconds), 1e-12)
    cost = [max(1, round(sec * scale * (weight if isinstance(e, Swap) else 1.0))) for e, sec in events]
    if engines:
        add_copy_engines(md, sp, events, use, scale)
    sizes = sp.sizes()
    for k in over:
        terms = [sizes[e.buffer] * u for (e, _), u in zip(events, use) if e.free_at <= k < e.load_at]
        md.add(sum(terms) >= int(base[k]) - sp.budget)
    _exclusions(md, sp, events, use)
    md.minimize(sum(c * u for c, u in zip(cost, use)))
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(time_limit, 0.1)
    solver.parameters.num_workers = workers
    status = solver.solve(md)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    return [e for (e, _), u in zip(events, use) if solver.value(u)]


def add_copy_engines(md, sp: SwapProblem, events, use, scale: float) -> None:
    """Copy windows on the no-swap timeline; each engine runs its copies one at a time
    in issue order (copy-outs by their use, copy-ins by the step that loads them), as
    the runtime issues them and the simulator replays them."""
    starts = [round(t * scale) for t in sp.nominal_starts()]
    outs, ins = [], []
    for (e, sec), u in zip(events, use):
        if not isinstance(e, Swap):
            continue
        d = max(1, int(-(-sec * scale // 1)))
        out_lo, out_hi = starts[e.after + 1], starts[e.free_at]
        in_lo, in_hi = starts[e.load_at], starts[e.before]
        if out_hi - out_lo < d or in_hi - in_lo < d:
            md.add(u == 0)
            continue
        outs.append(((e.after, e.buffer), md.new_int_var(out_lo, out_hi - d, ""), d, u))
        ins.append(((e.load_at, e.before, e.buffer), md.new_int_var(in_lo, in_hi - d, ""), d, u))
    horizon = starts[-1]
    for copies in (outs, ins):
        copies.sort(key=lambda c: c[0])
        free = 0  # when the engine is free after the copies before this one (a chain: O(n) constraints)
        for _key, start, d, u in copies:
            after = md.new_int_var(0, horizon, "")
            md.add(start >= free).only_enforce_if(u)
            md.add(after >= start + d).only_enforce_if(u)
            md.add(after >= free)
            free = after


def _exclusions(md, sp: SwapProblem, events, use) -> None:
    """One event per idle gap; a recompute's inputs stay where it runs."""
    for a in range(len(events)):
        for b in range(a + 1, len(events)):
            if conflict(sp, events[a][0], events[b][0]):
                md.add(use[a] + use[b] <= 1)
