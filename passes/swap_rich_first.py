"""Recompute first, then hidden swaps (part of "ours" when SwapProblem.rich): a Checkmate-style
construction.

Why: swaps alone cannot go below the hidden-swap floor (one copy engine per direction:
graphopt.plan.swap.hidden_swap_floor), so below it part of every over-budget step must be
recomputed, and which part decides the overhead. The staged greedy (swap_rich_greedy)
starts from swaps and adds recomputes one at a time; on the 6-layer transformer at 0.50x
its result swung from 10.6% to 33% with the machine's load (its stages share a deadline).
This construction is fast and steadier. Per share `alpha` of the copy capacity:
1. every rich recompute candidate is priced with its chain on its own: its producer, and
   its dead inputs rebuilt in turn or extended (swap_rich_greedy.recompute_chains);
2. a covering CP-SAT model picks recomputes: every step k loses at least its excess beyond
   what hidden copies could carry away there, alpha x bandwidth x min(time before k, time
   after k) (hidden_swap_floor's argument); an extend's or a rebuild's bytes count against
   its steps; one event per idle gap; no chosen event takes away a buffer a chosen chain
   reads where it runs; minimize the chains' kernel seconds (cheap, large tensors such as
   softmax outputs win; matmul outputs, dear to rebuild, are left to the swaps);
3. the recomputes are assembled (chains resolved against each other), and the rest of the
   excess goes to the plain covering model's hidden swaps (swap_cover) that do not clash
   with them, one schedule per weight;
4. a schedule still over the budget is finished by the rich greedy.
The caller judges every schedule with the exact simulator and the validator.
"""

from __future__ import annotations

import time

import numpy as np
from ortools.sat.python import cp_model

from graphopt.passes.swap_cover import hidden_swap_events, solve_cover
from graphopt.passes.swap_rich import rich_recompute_events, rich_swap_events
from graphopt.passes.swap_rich_greedy import recompute_chains, rich_greedy, with_recomputes
from graphopt.plan.swap import Recompute, SwapProblem, SwapSchedule, base_live_bytes, conflict, live_bytes

ALPHAS = (0.95, 0.8)  # shares of the copy capacity left to the swaps
WEIGHTS = (0.3, 1.0)  # the swap covering model's contention weights (swap_cover)


def recompute_first_schedules(sp: SwapProblem, time_limit: float, workers: int = 2) -> list[SwapSchedule]:
    """Schedules of the module docstring, one per (alpha, weight) found within `time_limit` seconds."""
    began = time.perf_counter()
    base = base_live_bytes(sp.problem, sp.num_steps)
    over = [k for k in range(sp.num_steps) if base[k] > sp.budget]
    if not over:
        return []
    priced = _priced(sp, [r for r, _ in rich_recompute_events(sp, over)])
    swaps = [s for s, _ in rich_swap_events(sp, over)]
    out = []
    for n, alpha in enumerate(ALPHAS):
        share = (time_limit - (time.perf_counter() - began)) / (len(ALPHAS) - n)
        if share < 0.2:
            break
        deadline = time.perf_counter() + share
        chosen = _select(sp, base, priced, alpha, 0.4 * share, workers)
        if chosen is None:
            continue
        start = with_recomputes(sp, SwapSchedule((), f"first-a{alpha}"), chosen)
        for schedule in _with_swaps(sp, start, deadline, workers):
            if (live_bytes(sp, schedule.swaps, schedule.recomputes, schedule.rebuilds, schedule.extends)
                    > sp.budget).any():
                schedule = rich_greedy(sp, schedule, [r for r, _ in priced], swaps, deadline)
            if schedule is not None:
                out.append(schedule)
    return out


def _priced(sp: SwapProblem, candidates: list[Recompute]) -> list[tuple[Recompute, tuple]]:
    """Candidates with their chain (seconds, rebuilds, extends); those with an input never resident left out."""
    return [(r, chain) for r, chain in zip(candidates, recompute_chains(sp, candidates)) if chain is not None]


def _select(sp: SwapProblem, base: np.ndarray, priced: list, alpha: float, seconds: float,
            workers: int) -> list[Recompute] | None:
    """Step 2 of the module docstring: the recomputes, or None when CP-SAT found no cover in time."""
    starts = sp.nominal_starts()
    room = np.floor(alpha * sp.link.bandwidth * np.minimum(starts[:-1], starts[-1] - starts[1:])).astype(np.int64)
    need = base - room - sp.budget
    rows = [k for k in range(sp.num_steps) if need[k] > 0]
    if not rows:
        return []
    md = cp_model.CpModel()
    use = [md.new_bool_var("") for _ in priced]
    sizes, ends = sp.sizes(), {b.id: b.end for b in sp.problem.buffers}
    for k in rows:
        terms = []
        for (r, (_sec, rebuilds, extends)), u in zip(priced, use):
            if r.free_at <= k < r.load_at:
                terms.append(sizes[r.buffer] * u)
            terms += [-sizes[i] * u for i, to in extends.items() if ends[i] <= k <= to]
            terms += [-sizes[i] * u for i, t in rebuilds if t == k]
        md.add(sum(terms) >= int(need[k]))
    _exclusions(md, sp, priced, use)
    scale = 1e6 / max(sum(sp.step_seconds), 1e-12)
    md.minimize(sum(max(1, round(chain[0] * scale)) * u for (_r, chain), u in zip(priced, use)))
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(seconds, 0.1)
    solver.parameters.num_workers = workers
    if solver.solve(md) not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    return [r for (r, _chain), u in zip(priced, use) if solver.value(u)]


def _reads(sp: SwapProblem, r: Recompute, rebuilds: set) -> set[tuple[int, int]]:
    """(buffer, step) pairs the chain of `r` reads while they are live: they must not be away then."""
    ends = {b.id: b.end for b in sp.problem.buffers}
    runs = [(r.buffer, r.before), *rebuilds]
    return {(i, t) for j, t in runs for i in sp.recompute_inputs.get(j, ()) if t < ends[i]}


def _exclusions(md: cp_model.CpModel, sp: SwapProblem, priced: list, use: list) -> None:
    """One event per idle gap; no event takes away a buffer a chosen chain reads where it runs."""
    reads = [_reads(sp, r, chain[1]) for r, chain in priced]
    for a, (ra, _) in enumerate(priced):
        for b in range(a + 1, len(priced)):
            rb = priced[b][0]
            if conflict(sp, ra, rb) or any(i == rb.buffer and rb.after < t < rb.before for i, t in reads[a]) \
                    or any(i == ra.buffer and ra.after < t < ra.before for i, t in reads[b]):
                md.add(use[a] + use[b] <= 1)


def _with_swaps(sp: SwapProblem, start: SwapSchedule, deadline: float, workers: int) -> list[SwapSchedule]:
    """Step 3: `start` plus the plain covering model's hidden swaps that do not clash with it."""
    load = live_bytes(sp, start.swaps, start.recomputes, start.rebuilds, start.extends)
    over = [k for k in range(sp.num_steps) if load[k] > sp.budget]
    if not over:
        return [start]
    reads = {(i, t) for r in start.recomputes for i, t in _reads(sp, r, set())}
    reads |= {(i, r.at) for r in start.rebuilds for i in sp.recompute_inputs.get(r.buffer, ())}
    events = [(s, sec) for s, sec in hidden_swap_events(sp, over)
              if not any(conflict(sp, s, r) for r in start.recomputes)
              and not any(i == s.buffer and s.after < t < s.before for i, t in reads)]
    out = []
    for n, weight in enumerate(WEIGHTS):
        seconds = 0.5 * (deadline - time.perf_counter()) / (len(WEIGHTS) - n)
        chosen = solve_cover(sp, events, over, load, weight, seconds, workers)
        if chosen is None:
            out.append(start)  # no cover by hidden swaps: the greedy finishes it (step 4)
            break
        out.append(SwapSchedule((*start.swaps, *chosen), f"{start.planner}+cover-w{weight}",
                                recomputes=start.recomputes, rebuilds=start.rebuilds, extends=start.extends))
    return out
