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

Two last variants price contention exactly instead of by a weight: the copies
must fit their windows on the no-swap timeline, one at a time per engine, so the
swaps they pick hide by construction and only recomputes cost. The first offers
each gap in a few fixed timings (the tightest, then with symmetric slack); the
second lets the solver choose the timings (swap_timed), starting from the first's
schedule. The fixed one is small and often the better in seconds on hundreds of
steps (transformer6); the timed one reaches what no fixed timing can (transformer-
small at half its peak: 0.79%, the proven optimum, against 7.8%).
"""

from __future__ import annotations

import time

from ortools.sat.python import cp_model

from graphopt.passes.swap_singa import early_late
from graphopt.passes.swap_timed import TimedSwaps
from graphopt.plan.swap import Recompute, Swap, SwapProblem, SwapSchedule, base_live_bytes, conflict

WEIGHTS = (0.05, 0.3, 1.0, 3.0)
SLACK_VARIANTS = 3
FIXED_SHARE = 0.6  # of the time the weights leave: the engines model with fixed timings; the timed one gets the rest


def cover_schedules(sp: SwapProblem, time_limit: float, workers: int = 2) -> list[SwapSchedule]:
    """One optimal covering schedule per contention weight, then one with the engines modelled
    and fixed timings, then one with the timings free (those CP-SAT solved in time).

    The weights go first, with up to a quarter of the time (they are usually proven optimal in
    a tenth of a second); the engines models share what they leave, FIXED_SHARE for fixed
    timings. Why: on hundreds of steps the fixed-timing model is still improving when its time
    runs out (transformer6 at 0.50x: 2.0% after 6 s, 0.8-2.0% after 12 s, from run to run), and
    the timed one needs its schedule as a start there."""
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
    recomputes = _recompute_events(sp, over)
    left = time_limit - (time.perf_counter() - began)
    chosen = solve_cover(sp, swap_variants(sp, over) + recomputes, over, base, 0.0, FIXED_SHARE * left, workers,
                         engines=True)
    engines = [_schedule(chosen, "cover-engines")] if chosen is not None else []
    left = time_limit - (time.perf_counter() - began)
    chosen = solve_cover(sp, recomputes, over, base, 0.0, left, workers, timed=True,
                         hint=engines[0] if engines else None)
    timed = [_schedule(chosen, "cover-timed")] if chosen is not None else []
    return timed + engines + weighted


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
                workers: int, engines: bool = False, timed: bool = False, hint: SwapSchedule | None = None
                ) -> list | None:
    """The cheapest choice of `events` (swaps priced at `weight` x their copy time) taking every step of
    `over` from its load in `base` under the budget. `engines`: the swaps' copies must fit their windows
    on the two engines (add_copy_engines); `timed`: swaps timed by the solver join (swap_timed), at one
    unit each (so none is taken for nothing). `hint` starts the solver from a schedule. None when CP-SAT
    found none in time."""
    md = cp_model.CpModel()
    use = [md.new_bool_var(f"e{n}") for n in range(len(events))]
    scale = 1e6 / max(sum(sp.step_seconds), 1e-12)
    cost = [max(1, round(sec * scale * (weight if isinstance(e, Swap) else 1.0))) for e, sec in events]
    if engines:
        add_copy_engines(md, sp, events, use, scale)
    timed_swaps = TimedSwaps(md, sp, scale, over) if timed else None
    sizes = sp.sizes()
    for k in over:
        terms = [sizes[e.buffer] * u for (e, _), u in zip(events, use) if e.free_at <= k < e.load_at]
        terms += [size * lit for size, lit in (timed_swaps.away_at(k) if timed else ())]
        md.add(sum(terms) >= int(base[k]) - sp.budget)
    if hint is not None:
        _hint(md, events, use, hint, timed_swaps)
    everything = list(events)
    if timed:
        timed_swaps.close()
        for span, lit in timed_swaps.candidates():
            everything.append((span, 0.0))
            use.append(lit)
            cost.append(1)
    _exclusions(md, sp, everything, use)
    md.minimize(sum(c * u for c, u in zip(cost, use)))
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(time_limit, 0.1)
    solver.parameters.num_workers = workers
    status = solver.solve(md)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    chosen = [e for (e, _), u in zip(events, use) if solver.value(u)]
    return chosen + (timed_swaps.read(solver) if timed else [])


def _hint(md, events: list, use: list, schedule: SwapSchedule, timed_swaps: TimedSwaps | None) -> None:
    """Hints `schedule`: its events among `events`, and with `timed_swaps` its swaps as timed ones."""
    picked = {*schedule.recomputes} | (set() if timed_swaps is not None else {*schedule.swaps})
    for (e, _), u in zip(events, use):
        md.add_hint(u, e in picked)
    if timed_swaps is not None:
        timed_swaps.hint(schedule.swaps)


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
