"""Ours: joint choice and timing of swaps and recomputations with OR-Tools CP-SAT, plus heuristics.

Design. Time is integer (a unit that puts the step near 10^6 units).
* S_k: start of step k (k = 0..n, S_n the end); S_{k+1} >= S_k + c_k.
* For each candidate gap g (buffer b idle between uses a < b'): x_g (swap it),
  free_at o_g and load_at i_g with a < o_g < i_g < b'; S[o_g] and S[i_g] via
  element constraints; an optional copy-out interval (length d_g, present iff
  x_g) starting >= S_a + c_a and ending <= S[o_g]; an optional copy-in
  interval starting >= max(S[i_g], end of copy-out) and ending <= S_{b'}.
  NoOverlap over copy-outs and over copy-ins: one engine per direction.
* Memory: only steps whose no-swap load exceeds the budget constrain: for each
  such step k and each gap that could be absent there, a_{g,k} => x_g and
  o_g <= k < i_g; the absent bytes sum_g size_g a_{g,k} >= load_k - budget.
* Recomputations: for each candidate r (a recomputable buffer idle across an
  over-budget step, its producer's inputs live where it is rebuilt), y_r
  (do it); it is absent on the fixed steps (after, before) and adds the
  producer's time to step `before`: S_{before+1} >= S_before + c + sum y_r c_r.
  One event per idle gap (x_g + y_r <= 1), and a recompute's input is not sent
  away across the step where it is read again (x_g + y_r <= 1, y_r' + y_r <= 1).
* Objective: minimize S_n (the overhead is S_n - sum c), then fewer events.
Before and after the solver, a local search moves each chosen swap's free_at
and load_at (the SINGA timings ignore that copies queue on one engine) while
the simulated stall drops and the load stays within the budget.
Candidates are only gaps that cover an over-budget step; with more than
MAX_GAPS, the largest area (idle time x size) are kept. The solver is hinted
with the best SINGA schedule; every result (the solver's and the heuristics')
goes through the exact simulator, and the schedule with the least simulated
stall wins, so "ours" is never worse than any SINGA strategy it ran.

Under the rich model (SwapProblem.rich) the covering step is split (RICH_SHARES): the
plain covering model (or the plain search's schedules, `starts`, which a compile passes in),
then, unless it nearly hid everything, the recompute-first construction
(passes/swap_rich_first.py), the staged greedy (passes/swap_rich_greedy.py), the best
schedule retimed (RICH_RETIME), and the rich covering model (passes/swap_rich.py) started
from it, until RICH_COVER_UNTIL of the time; its schedules may hold boundary copy-ins,
extends and rebuilds; the local search keeps those.

On small steps (at most EXACT_MAX_EVENTS candidates) the full model is the exact one
(passes/swap_exact.py, either swap model), hinted with the best schedule so far and given
EXACT_SHARE of the time: there it proves optimality in seconds, where the searches above may
stop short (5-layer training-like steps under the rich model: tests/plan/test_swap_exact.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import numpy as np
from ortools.sat.python import cp_model

from graphopt.passes.recompute_greedy import RecomputeGreedy
from graphopt.passes.swap_capuchin import Capuchin
from graphopt.passes.swap_cover import cover_schedules
from graphopt.passes.swap_exact import exact_size, solve_exact
from graphopt.passes.swap_rich import rich_cover_schedules
from graphopt.passes.swap_rich_first import recompute_first_schedules
from graphopt.passes.swap_rich_greedy import staged_schedule
from graphopt.passes.swap_singa import MODES, RANKINGS, InfeasibleBudget, Singa
from graphopt.plan.swap import Gap, Recompute, Swap, SwapProblem, SwapSchedule, base_live_bytes, conflict
from graphopt.plan.swap_validator import validate_swaps

log = logging.getLogger(__name__)
MAX_GAPS = 400
RICH_SHARES = (0.2, 0.2, 0.3)  # rich model: plain cover, recompute-first, staged greedy, rich cover until ..._UNTIL
RICH_COVER_UNTIL = 0.9  # of the time limit (0.75 left the timed model 2.4 s of 20 on transformer6)
RICH_RETIME = 0.05  # of the time limit, to retime the best schedule before the rich covering model
RICH_REFINE_UNTIL = 0.97  # the local search's deadline; the full CP-SAT model gets what is left
GOOD_ENOUGH = 0.005  # of the no-swap step: a plain covering schedule this good ends the rich search
UNITS = 1_000_000  # time resolution: the no-swap step spans about this many units
EXACT_MAX_EVENTS = 120  # candidates: up to this many, the exact model (swap_exact) ends the search
EXACT_SHARE = 0.5  # of the time limit, kept for it (transformer-small, 84 candidates: proven in 20-30 s)


class SwapCpSat:
    """CP-SAT on the joint choice and timing, judged against the SINGA portfolio."""

    name = "ours"

    def __init__(self, workers: int = 2) -> None:
        self.workers = workers

    def plan(self, sp: SwapProblem, time_limit: float = 10.0, starts: Sequence[SwapSchedule] = ()) -> SwapSchedule:
        """`starts`: valid schedules of a search already run (graphopt.train.swapping gives the plain
        model's search to the rich one): they join the pool, and under the rich model they stand in
        for its plain covering stage, whose time goes to the later ones."""
        began = time.perf_counter()
        small = exact_size(sp) <= EXACT_MAX_EVENTS
        searches = (1 - EXACT_SHARE) * time_limit if small else time_limit
        pool = _ranked(sp, _heuristic_pool(sp), list(starts))
        if (not pool or pool[0][1] > 0) and sp.rich:
            pool = self._rich_pool(sp, pool, began, searches, bool(starts))
        elif not pool or pool[0][1] > 0:
            pool = _ranked(sp, pool, cover_schedules(sp, 0.8 * searches, self.workers))
        best = _refine_best(sp, pool, began + (RICH_REFINE_UNTIL if sp.rich else 0.9) * searches)
        left = time_limit - (time.perf_counter() - began)
        if left > 0.2 and (best is None or best[1] > 0):
            solved = self._exact(sp, best[0] if best else None, left) if small else \
                self._solve(sp, best[0] if best else None, left)
            if solved is not None:
                report = validate_swaps(sp, solved)
                if report.valid and (best is None or report.stall < best[1] - 1e-12):
                    best = _refine(sp, solved)
        if best is None:
            raise InfeasibleBudget(f"ours: no schedule brings the peak under {sp.budget} bytes")
        chosen = best[0]
        return SwapSchedule(chosen.swaps, f"ours/{chosen.planner}", time.perf_counter() - began,
                            {"stall": best[1]}, chosen.recomputes, chosen.rebuilds, chosen.extends)

    def _rich_pool(self, sp: SwapProblem, pool: list, began: float, time_limit: float, started: bool) -> list:
        """Under the rich model: the plain covering model (unless `started`: the pool has the plain
        search's schedules); then, unless the pool nearly hid everything (GOOD_ENOUGH of the step),
        the recompute-first construction (swap_rich_first), the staged greedy (hidden swaps, then
        rich recomputes and priced swaps), the best schedule retimed, and, until RICH_COVER_UNTIL of
        the time, the rich covering model started from the pool."""
        plain, first, staged = (share * time_limit for share in RICH_SHARES)
        if not started:
            pool = _ranked(sp, pool, cover_schedules(sp, plain, self.workers))
        if pool and pool[0][1] <= GOOD_ENOUGH * sum(sp.step_seconds):
            return pool
        pool = _ranked(sp, pool, recompute_first_schedules(sp, first, self.workers))
        deadline = time.perf_counter() + staged
        found = staged_schedule(sp, 0.4 * staged, deadline, self.workers)
        pool = _ranked(sp, pool, [found] if found is not None else [])
        if pool and pool[0][1] > 0:  # retimed, its copies may hide: a start for the timed model (swap_rich)
            retime_until = time.perf_counter() + RICH_RETIME * time_limit
            pool = _ranked(sp, pool, [_refine(sp, pool[0][0], deadline=retime_until)[0]])
        left = began + RICH_COVER_UNTIL * time_limit - time.perf_counter()
        if left > 0.5:
            hints = [schedule for schedule, _stall in pool]
            pool = _ranked(sp, pool, rich_cover_schedules(sp, left, self.workers, hints, engines=True))
        return pool

    def _exact(self, sp: SwapProblem, hint: SwapSchedule | None, time_limit: float) -> SwapSchedule | None:
        """The exact model (swap_exact, either swap model), started from the best schedule so far."""
        result = solve_exact(sp, time_limit, hint, self.workers, lp=False)
        log.info("ours: the exact model ended %s in %.1fs", result.status, result.solve_seconds)
        return result.schedule

    def _solve(self, sp: SwapProblem, hint: SwapSchedule | None, time_limit: float) -> SwapSchedule | None:
        base = base_live_bytes(sp.problem, sp.num_steps)
        over = [k for k in range(sp.num_steps) if base[k] > sp.budget]
        gaps = _candidates(sp.gaps(), sp, over)
        rgaps = _candidates(sp.recompute_gaps(), sp, over)
        unit = max(sum(sp.step_seconds), 1e-12) / UNITS
        m = _Model(sp, gaps, rgaps, unit)
        m.memory(over, base)
        m.hint(hint)
        solver = cp_model.CpSolver()
        solver.parameters.max_time_in_seconds = time_limit
        solver.parameters.num_workers = self.workers
        status = solver.solve(m.model)
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            log.info("ours: CP-SAT found nothing in %.1fs (%s)", time_limit, solver.status_name(status))
            return None
        swaps, recomputes = m.read(solver)
        name = "cpsat" + ("-optimal" if status == cp_model.OPTIMAL else "")
        return SwapSchedule(swaps, name, recomputes=recomputes)


# Candidates the local search starts from: the best before refinement is often not
# the best after (transformer at 50% of the peak: SINGA's 25.3% refined to 25.3%, a
# covering schedule's 36.2% to a few percent).
REFINED = 4


def _ranked(sp: SwapProblem, pool: list, schedules: list[SwapSchedule]) -> list[tuple[SwapSchedule, float]]:
    """`pool` plus the valid `schedules`, least simulated overhead first."""
    for schedule in schedules:
        report = validate_swaps(sp, schedule)
        if report.valid:
            pool = pool + [(schedule, report.stall)]
    return sorted(pool, key=lambda entry: entry[1])


def _heuristic_pool(sp: SwapProblem) -> list[tuple[SwapSchedule, float]]:
    """Every baseline's valid schedule (SINGA's six, Capuchin, recompute-greedy), best first."""
    schedules = []
    for planner in [Singa(r, m) for r in RANKINGS for m in MODES] + [Capuchin(), RecomputeGreedy()]:
        try:
            schedules.append(planner.plan(sp))
        except InfeasibleBudget:
            continue
    return _ranked(sp, [], schedules)


def _refine_best(sp: SwapProblem, pool: list, deadline: float) -> tuple[SwapSchedule, float] | None:
    """The best of the REFINED best distinct candidates after local search (the first
    always; the others while time is left); None when the pool is empty."""
    best, seen = None, set()
    for schedule, stall in pool:
        key = (frozenset(schedule.swaps), frozenset(schedule.recomputes), schedule.rebuilds, schedule.extends)
        if key in seen:
            continue
        seen.add(key)
        if best is not None and (len(seen) > REFINED or time.perf_counter() > deadline):
            break
        refined = _refine(sp, schedule, deadline=deadline) if stall > 0 else (schedule, stall)
        if best is None or refined[1] < best[1] - 1e-12:
            best = refined
    return best


def _refine(sp: SwapProblem, schedule: SwapSchedule, rounds: int = 3, tries: int = 8,
            deadline: float | None = None) -> tuple[SwapSchedule, float]:
    """First-improvement local search on the timing of each chosen swap (until `deadline`)."""
    from graphopt.plan.swap import live_bytes, simulate

    swaps, recomputes = list(schedule.swaps), schedule.recomputes
    rebuilds, extends = schedule.rebuilds, schedule.extends
    stall = simulate(sp, swaps, recomputes, rebuilds=rebuilds).stall
    for _ in range(rounds):
        improved = False
        for n, s in enumerate(swaps):
            if deadline is not None and time.perf_counter() > deadline:
                break
            lo, hi = s.after + 1, s.before if sp.rich else s.before - 1
            frees = np.linspace(lo, s.load_at - 1, tries).astype(int)
            loads = np.linspace(s.free_at + 1, hi, tries).astype(int)
            moves = {Swap(s.buffer, s.after, int(f), s.load_at, s.before) for f in frees}
            moves |= {Swap(s.buffer, s.after, s.free_at, int(i), s.before) for i in loads}
            for move in moves - {s}:
                trial = swaps[:n] + [move] + swaps[n + 1:]
                if live_bytes(sp, trial, recomputes, rebuilds, extends).max(initial=0) > sp.budget:
                    continue
                t = simulate(sp, trial, recomputes, rebuilds=rebuilds).stall
                if t < stall - 1e-12:
                    swaps, stall, s, improved = trial, t, move, True
        if not improved:
            break
    name = schedule.planner if "+refine" in schedule.planner else schedule.planner + "+refine"
    return SwapSchedule(tuple(swaps), name, recomputes=recomputes, rebuilds=rebuilds, extends=extends), stall


def _candidates(gaps: list[Gap], sp: SwapProblem, over: list[int]) -> list[Gap]:
    """Gaps that cover an over-budget step, the largest idle time x size first."""
    if not over:
        return []
    over_arr = np.array(over)
    starts = sp.nominal_starts()
    gaps = [g for g in gaps if np.any((over_arr > g.after) & (over_arr < g.before))]
    gaps.sort(key=lambda g: -(starts[g.before] - starts[g.after + 1]) * g.size)
    return gaps[:MAX_GAPS]


class _Model:
    """The CP-SAT model of the module docstring, built piece by piece."""

    def __init__(self, sp: SwapProblem, gaps: list[Gap], rgaps: list[Gap], unit: float) -> None:
        self.sp, self.gaps, self.rgaps, self.model = sp, gaps, rgaps, cp_model.CpModel()
        md = self.model
        self.cost = cost = [round(c / unit) for c in sp.step_seconds]
        self.dur = dur = [max(1, int(np.ceil(sp.copy_seconds(g.buffer) / unit))) for g in gaps]
        self.rcost = rcost = [max(1, round(sp.recompute_seconds(g.buffer) / unit)) for g in rgaps]
        self.starts: list[tuple] = []  # per swap candidate: (so, si, out_start, in_start)
        self.absent: dict[tuple[int, int], object] = {}  # (candidate, step) -> a
        horizon = sum(cost) + 2 * sum(dur) + sum(rcost) + 1
        self.S = [md.new_int_var(0, horizon, f"S{k}") for k in range(sp.num_steps + 1)]
        self.y = [md.new_bool_var(f"y{n}") for n in range(len(rgaps))]
        extra: dict[int, list] = {}
        for n, (g, rc) in enumerate(zip(rgaps, rcost)):
            extra.setdefault(g.before, []).append(rc * self.y[n])
        for k, c in enumerate(cost):
            md.add(self.S[k + 1] >= self.S[k] + c + sum(extra.get(k, [])))
        self.x, self.o, self.i, outs, ins = [], [], [], [], []
        for n, (g, d) in enumerate(zip(gaps, dur)):
            outs_n, ins_n = self._swap(n, g, d, cost, horizon)
            outs.append(outs_n)
            ins.append(ins_n)
        md.add_no_overlap(outs)
        md.add_no_overlap(ins)
        self._exclusions()
        md.minimize(self.S[-1] * (len(gaps) + len(rgaps) + 1) + sum(self.x) + sum(self.y))

    def _swap(self, n: int, g: Gap, d: int, cost: list[int], horizon: int):
        """x_n, free_at o_n and load_at i_n of one swap candidate, with its two copies."""
        md = self.model
        x = md.new_bool_var(f"x{n}")
        o = md.new_int_var(g.after + 1, g.before - 2, f"o{n}")
        i = md.new_int_var(g.after + 2, g.before - 1, f"i{n}")
        so, si = md.new_int_var(0, horizon, f"so{n}"), md.new_int_var(0, horizon, f"si{n}")
        md.add_element(o, self.S, so)
        md.add_element(i, self.S, si)
        out_start, in_start = md.new_int_var(0, horizon, f"os{n}"), md.new_int_var(0, horizon, f"is{n}")
        out = md.new_optional_fixed_size_interval_var(out_start, d, x, f"out{n}")
        inn = md.new_optional_fixed_size_interval_var(in_start, d, x, f"in{n}")
        md.add(o < i).only_enforce_if(x)
        md.add(out_start >= self.S[g.after] + cost[g.after]).only_enforce_if(x)
        md.add(out_start + d <= so).only_enforce_if(x)
        md.add(in_start >= si).only_enforce_if(x)
        md.add(in_start >= out_start + d).only_enforce_if(x)
        md.add(in_start + d <= self.S[g.before]).only_enforce_if(x)
        self.x.append(x), self.o.append(o), self.i.append(i)
        self.starts.append((so, si, out_start, in_start))
        return out, inn

    def _exclusions(self) -> None:
        """One event per gap; a recompute's inputs stay on the device where it runs."""
        md, sp = self.model, self.sp
        rec = [Recompute(g.buffer, g.after, g.before) for g in self.rgaps]
        for r, event in enumerate(rec):
            for n, g in enumerate(self.gaps):
                if conflict(sp, g, event):
                    md.add(self.x[n] + self.y[r] <= 1)
            for q in range(r + 1, len(rec)):
                if conflict(sp, rec[q], event):
                    md.add(self.y[q] + self.y[r] <= 1)

    def memory(self, over: list[int], base: np.ndarray) -> None:
        md = self.model
        for k in over:
            terms = []
            for n, g in enumerate(self.gaps):
                if g.after < k < g.before:
                    a = md.new_bool_var(f"a{n}_{k}")
                    md.add_implication(a, self.x[n])
                    md.add(self.o[n] <= k).only_enforce_if(a)
                    md.add(self.i[n] >= k + 1).only_enforce_if(a)
                    self.absent[(n, k)] = a
                    terms.append(g.size * a)
            terms += [g.size * self.y[r] for r, g in enumerate(self.rgaps) if g.after < k < g.before]
            md.add(sum(terms) >= int(base[k]) - self.sp.budget)

    def hint(self, schedule: SwapSchedule | None) -> None:
        """A complete hint (every variable) when the schedule uses only candidate gaps:
        CP-SAT then starts from a feasible point instead of searching for one."""
        if schedule is None:
            return
        swap_at = {(g.buffer, g.after): n for n, g in enumerate(self.gaps)}
        rec_at = {(g.buffer, g.after): r for r, g in enumerate(self.rgaps)}
        chosen_s = {swap_at.get((s.buffer, s.after)): s for s in schedule.swaps}
        chosen_r = {rec_at.get((r.buffer, r.after)) for r in schedule.recomputes}
        for n, g in enumerate(self.gaps):
            s = chosen_s.get(n)
            self.model.add_hint(self.x[n], s is not None)
            if s is not None:
                self.model.add_hint(self.o[n], s.free_at)
                self.model.add_hint(self.i[n], s.load_at)
        for r in range(len(self.rgaps)):
            self.model.add_hint(self.y[r], r in chosen_r)
        if None in chosen_s or None in chosen_r:
            return  # a heuristic event outside the candidates: leave the times to the solver
        self._hint_times(schedule, chosen_s, chosen_r)

    def _hint_times(self, schedule: SwapSchedule, chosen_s: dict, chosen_r: set) -> None:
        """Step starts and copy starts from the simulator run in the model's integer units."""
        from graphopt.plan.swap import simulate

        durations = np.array(self.cost, dtype=float)
        for r in chosen_r:
            durations[self.rgaps[r].before] += self.rcost[r]
        copy = {g.buffer: float(d) for g, d in zip(self.gaps, self.dur)}
        tl = simulate(self.sp, schedule.swaps, schedule.recomputes, durations, copy.__getitem__)
        starts = list(tl.step_start) + [tl.total]
        for k, var in enumerate(self.S):
            self.model.add_hint(var, int(round(starts[k])))
        for n, (so, si, out_start, in_start) in enumerate(self.starts):
            s = chosen_s.get(n)
            if s is None:
                continue
            self.model.add_hint(so, int(round(starts[s.free_at])))
            self.model.add_hint(si, int(round(starts[s.load_at])))
            self.model.add_hint(out_start, int(round(tl.out_copy[s][0])))
            self.model.add_hint(in_start, int(round(tl.in_copy[s][0])))
        for (n, k), a in self.absent.items():
            s = chosen_s.get(n)
            self.model.add_hint(a, s is not None and s.free_at <= k < s.load_at)

    def read(self, solver: cp_model.CpSolver) -> tuple[tuple[Swap, ...], tuple[Recompute, ...]]:
        swaps = tuple(Swap(g.buffer, g.after, solver.value(self.o[n]), solver.value(self.i[n]), g.before)
                      for n, g in enumerate(self.gaps) if solver.value(self.x[n]))
        recomputes = tuple(Recompute(g.buffer, g.after, g.before)
                           for r, g in enumerate(self.rgaps) if solver.value(self.y[r]))
        return swaps, recomputes
