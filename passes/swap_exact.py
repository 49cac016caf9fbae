"""Checkmate-style exact baseline: the swap/recompute model solved to optimality by CP-SAT.

Why: "ours" (swap_cpsat) is a portfolio that stops at a time limit, and the LP bound
(graphopt.plan.swap_bound) is a relaxation; neither says how far ours is from the
best schedule the model allows. Checkmate (Jain et al., MLSys'20) answers that for
rematerialization with an integer program; this is the same idea on our model: every
choice and every timing the validator accepts, with the simulator's semantics as
constraints, so the solver's optimum IS the least simulated stall (up to rounding,
below) and its proven bound holds for any valid schedule. It is slow: meant for small
networks and benchmarks; "ours" runs it last on steps with few candidates (exact_size).

The model (time in integer units; steps 0..n-1, S_n the end):
1. Steps: S_0 = 0, E_k = S_k + c_k + sum of r_g y_g over recomputes rebuilt at k,
   S_{k+1} >= E_k (the simulator's step waits, below, only push S up).
2. Recompute candidate g: y_g; absent on after+1 .. before-1 (fixed).
3. Swap candidate g: x_g, free_at o_g and load_at i_g (after < o < i < before); its
   copy-out starts at or after E_after and at or after the copy-out engine is free,
   and ends by S[o_g]; its copy-in starts at or after S[i_g], its own copy-out's end
   and the copy-in engine being free, and ends by S[before].
4. Engines are FIFO in the simulator's issue order: copy-outs by (after, buffer), a
   fixed order, chained through "engine free" variables (O(m) constraints); copy-ins
   by (load_at, before, buffer), which depends on the chosen load_at: for every pair
   a literal says which goes first, and the later one starts after the earlier ends.
5. Memory: at each step over the budget, sum of sizes of absent candidates >= excess
   (a swap is absent at k only if x, o <= k < i).
6. The validator's exclusions: one event per idle gap; a recompute's inputs are not
   away across the step that rebuilds it (graphopt.plan.swap.conflict).
7. Redundant rows for the relaxation (implied by 3-4): the LP bound's engine windows,
   and S_n >= the LP bound's end (less the rounding slack below).
Objective: minimize S_n (no tie-break on the number of events: it kept CP-SAT from proving
optimality where the stall was already at its bound; `_pruned` drops idle events after).
Why exact: for fixed choices and timings every constraint is one of the simulator's
"starts after" rules, all monotone, so the least S_n satisfying them is the simulated
end; minimizing over choices gives the model's optimum. Candidates are the gaps whose
absence range meets an over-budget step: an event elsewhere frees nothing that is
needed, and dropping it from any valid schedule keeps it valid and never slows it.
Rounding: every duration is rounded DOWN to units (a step of the nominal run is
UNITS units). The simulated end only grows with durations, so the solver's bound, in
seconds, is at most the true least end of any valid schedule: the certified bound on
the stall is unit x bound - nominal (pessimistic by at most one unit per step, copy and
recompute on the critical path: ~1e-5 of the step on a few hundred steps).
The schedule returned is judged by the real simulator and the validator like any other.

Under the rich model (SwapProblem.rich) the same model holds three more freedoms, so that
its optimum bounds what ours may find there (swap_exact_rich):
* a copy-in may end at the step boundary (load_at == before): it is issued when step
  before-1 and the copy-outs step `before` waits for have ended, and step `before` waits
  for it (L's last literal is then at `before`);
* a recompute may read an input dead at its step: the input is extended through it or
  rebuilt there, its producer's time added to the step, with its inputs in turn;
* memory rows on every step an extend or a rebuild may add bytes to.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from ortools.sat.python import cp_model

from graphopt.errors import PlanError
from graphopt.passes.swap_exact_rich import Residency, rich_candidates
from graphopt.passes.swap_singa import InfeasibleBudget
from graphopt.plan.swap import (
    Gap,
    Recompute,
    Swap,
    SwapProblem,
    SwapSchedule,
    base_live_bytes,
    conflict,
    live_bytes,
    simulate,
)
from graphopt.plan.swap_bound import OverheadBound
from graphopt.plan.swap_bound_integer import certified_lower_bound

UNITS = 10_000_000  # integer time units per nominal step: rounding costs ~n / UNITS of it
PROBING = 0  # CP-SAT's presolve probing took 17 of 30 s on squeezenet (184 steps) and proved nothing more
LP_SHARE = 1 / 3  # of the time limit, at most, for the bound (the LP, then its integer version)


@dataclass(frozen=True)
class ExactResult:
    """What the solver proved: `schedule` (None when it found none), its simulated stall, and
    `bound`, a stall no valid schedule beats (seconds; inf when the budget is proven infeasible)."""

    schedule: SwapSchedule | None
    status: str  # "optimal", "feasible" (a gap remains), "infeasible", "unknown" (nothing in time)
    stall: float
    bound: float
    candidates: int
    solve_seconds: float
    lp: OverheadBound | None = None  # the LP bound it started from (status "skipped" or "timeout": none)

    @property
    def gap(self) -> float:
        """Seconds between the schedule found and the best any schedule could do."""
        return max(0.0, self.stall - self.bound)


class SwapExact:
    """The planner interface over `solve_exact`: raises InfeasibleBudget when it has no schedule."""

    name = "exact"

    def __init__(self, workers: int = 2, hint: SwapSchedule | None = None) -> None:
        self.workers, self.hint = workers, hint
        self.last: ExactResult | None = None

    def plan(self, sp: SwapProblem, time_limit: float = 60.0) -> SwapSchedule:
        self.last = solve_exact(sp, time_limit, self.hint, self.workers)
        if self.last.schedule is None:
            raise InfeasibleBudget(f"exact: {self.last.status} at {sp.budget} bytes after {time_limit} s")
        return self.last.schedule


def solve_exact(sp: SwapProblem, time_limit: float = 60.0, hint: SwapSchedule | None = None,
                workers: int = 2, feasibility: bool = False, lp: bool = True) -> ExactResult:
    """Builds and solves the model of the module docstring; `hint` (any valid schedule) starts it.
    With `feasibility`, the first schedule found ends the search ("feasible", bound the LP's):
    only "does any schedule fit this budget" is asked, which a floor search needs.

    The LP bound (graphopt.plan.swap_bound) is solved first: infeasible there means no
    schedule at all, and its value joins the model as a cut (less the rounding slack), so
    CP-SAT can stop as soon as an incumbent meets it; the bound reported is the larger of
    the LP's and CP-SAT's own. Without `lp` (a planner that only wants a better schedule in
    seconds: "ours" on small steps) the LP is skipped and the bound is CP-SAT's alone."""
    began = time.perf_counter()
    nominal = float(sum(sp.step_seconds))
    base = base_live_bytes(sp.problem, sp.num_steps)
    over = [int(k) for k in np.flatnonzero(base > sp.budget)]
    if not over:
        return ExactResult(SwapSchedule((), "exact-optimal"), "optimal", 0.0, 0.0, 0, time.perf_counter() - began)
    lp = _lp_bound(sp, LP_SHARE * time_limit) if lp else OverheadBound(0.0, "skipped", len(over), 0.0)
    if lp.status == "infeasible":
        return ExactResult(None, "infeasible", float("inf"), float("inf"), 0, time.perf_counter() - began, lp)
    unit = max(nominal, 1e-12) / UNITS
    model = _ExactModel(sp, over, base, unit)
    if lp.status not in ("skipped", "timeout"):
        model.cut((nominal + lp.seconds) / unit)
    if hint is not None:
        model.hint(hint)
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(0.1, time_limit - (time.perf_counter() - began))
    solver.parameters.num_workers = workers
    solver.parameters.cp_model_probing_level = PROBING
    solver.parameters.stop_after_first_solution = feasibility
    status = solver.solve(model.model)
    elapsed, count = time.perf_counter() - began, len(model.swaps) + len(model.recomputes)
    if status == cp_model.INFEASIBLE:
        return ExactResult(None, "infeasible", float("inf"), float("inf"), count, elapsed, lp)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return ExactResult(None, "unknown", float("inf"), lp.seconds, count, elapsed, lp)
    name = "optimal" if status == cp_model.OPTIMAL else "feasible"
    schedule = _pruned(sp, model.read(solver, f"exact-{name}"))
    stall = simulate(sp, schedule.swaps, schedule.recomputes, rebuilds=schedule.rebuilds).stall
    bound = max(lp.seconds, solver.best_objective_bound * unit - nominal, 0.0)
    return ExactResult(schedule, name, stall, min(bound, max(stall, 0.0)), count, elapsed, lp)


def _lp_bound(sp: SwapProblem, time_limit: float) -> OverheadBound:
    """The certified bound in `time_limit` (the larger of the sampled LP's and its integer
    version's: graphopt.plan.swap_bound_integer; rich transformer-small at 0.50x: LP 0.243%,
    integer 0.599%), or a "timeout" of 0 s when no LP finished: then CP-SAT's bound stands alone."""
    try:
        return certified_lower_bound(sp, time_limit=time_limit)
    except PlanError:
        return OverheadBound(0.0, "timeout", 0, time_limit)


def _pruned(sp: SwapProblem, schedule: SwapSchedule) -> SwapSchedule:
    """Drops, one at a time, events the budget does not need and whose removal costs no time:
    the objective has no term for them, so the solver may keep a few idle ones."""
    swaps, recomputes = list(schedule.swaps), list(schedule.recomputes)
    kept = {"rebuilds": schedule.rebuilds, "extends": schedule.extends}
    stall = simulate(sp, swaps, recomputes, rebuilds=schedule.rebuilds).stall
    # under the rich model a recompute's extends and rebuilds stay with it: only swaps are dropped
    for event in [*schedule.swaps, *(() if sp.rich else schedule.recomputes)]:
        trial_s = [s for s in swaps if s != event]
        trial_r = [r for r in recomputes if r != event]
        if live_bytes(sp, trial_s, trial_r, **kept).max(initial=0) > sp.budget:
            continue
        trial = simulate(sp, trial_s, trial_r, rebuilds=schedule.rebuilds).stall
        if trial <= stall + 1e-15:
            swaps, recomputes, stall = trial_s, trial_r, trial
    return SwapSchedule(tuple(swaps), schedule.planner, recomputes=tuple(recomputes), **kept)


def _down(seconds: float, unit: float) -> int:
    return int(np.floor(seconds / unit))


def _absence(event) -> tuple[int, int]:
    """The steps a candidate can be absent on under the plain model: (first, last)."""
    if isinstance(event, Gap):  # a swap candidate: free_at >= after + 1, load_at <= before - 1
        return event.after + 1, event.before - 2
    return event.after + 1, event.before - 1


def exact_size(sp: SwapProblem) -> int:
    """How many swap and recompute candidates the exact model would hold at `sp`'s budget."""
    base = base_live_bytes(sp.problem, sp.num_steps)
    over = [int(k) for k in np.flatnonzero(base > sp.budget)]
    gaps, recomputes, _rows = _candidates(sp, over)
    return len(gaps) + len(recomputes)


def _candidates(sp: SwapProblem, over: list[int]) -> tuple[list[Gap], list[Recompute], list[int]]:
    """(swap gaps, recomputes, memory rows): under the plain model the events whose absence meets
    an over-budget step, those steps the rows; under the rich one, swap_exact_rich's."""
    if sp.rich:
        gaps, recomputes, rows = rich_candidates(sp, over)
        return gaps, recomputes, sorted(rows)
    rgaps = [Recompute(g.buffer, g.after, g.before) for g in sp.recompute_gaps()]
    return ([g for g in sp.gaps() if _meets(over, *_absence(g))],
            [r for r in rgaps if _meets(over, *_absence(r))], over)


def _expr(terms: list[tuple[int, object]]):
    return sum(sign * literal for sign, literal in terms)


def _meets(over: list[int], first: int, last: int) -> bool:
    lo = int(np.searchsorted(over, first, "left"))
    return lo < len(over) and over[lo] <= last


class _ExactModel:
    """The CP-SAT model of the module docstring; one method per numbered part.

    A swap's free_at and load_at are step-indexed literals, F[g][k] "freed by step k" and
    L[g][k] "loaded by step k" (each nondecreasing in k), not integers: absence at k is then
    the linear F - L, and "copy-out done by S[free_at]" is "F[g][k] => done by S_k" (S never
    decreases, so the earliest k binds). The linear relaxation CP-SAT builds then holds the
    memory rows of graphopt.plan.swap_bound, and part 7 adds that LP's engine windows as
    redundant rows (with an element constraint per free/load step, CP-SAT proved nothing
    above the no-swap time on SqueezeNet in 40 s). Its own bound still lagged the LP's, so
    the LP's value also joins as a cut (`cut`)."""

    def __init__(self, sp: SwapProblem, over: list[int], base: np.ndarray, unit: float) -> None:
        self.sp, self.model = sp, cp_model.CpModel()
        self.swaps, self.recomputes, rows = _candidates(sp, over)
        self.unit = unit
        self.cost = [_down(c, unit) for c in sp.step_seconds]
        self.copy = {g.buffer: _down(sp.copy_seconds(g.buffer), unit) for g in self.swaps}
        self.rcost = [_down(sp.recompute_seconds(r.buffer), unit) for r in self.recomputes]
        self.horizon = sum(self.cost) + 2 * sum(self.copy[g.buffer] for g in self.swaps) + sum(self.rcost) + 1
        self._steps()
        self._swap_vars()
        if sp.rich:
            self._boundary_issue()
        self.residency = Residency(self.model, sp, list(zip(self.recomputes, self.y)), self._events()) \
            if sp.rich else None
        self._durations()
        self._copy_out_fifo()
        self._copy_in_fifo()
        self._memory(rows, base)
        self._exclusions()
        self._windows(over)
        self.model.minimize(self.S[-1])

    def cut(self, end: float) -> None:
        """S_n >= a proven least end (units, unrounded), less what rounding down every duration
        on one path (each step, copy and recompute at most once) can take off a schedule's end."""
        slack = len(self.cost) + 2 * len(self.swaps) + len(self.recomputes)
        self.model.add(self.S[-1] >= int(np.ceil(end)) - slack)

    def _steps(self) -> None:
        """Parts 1 and 2: step starts and ends, the recompute choices."""
        md, h = self.model, self.horizon
        self.S = [md.new_int_var(0, h, f"S{k}") for k in range(self.sp.num_steps + 1)]
        self.E = [md.new_int_var(0, h, f"E{k}") for k in range(self.sp.num_steps)]
        self.y = [md.new_bool_var(f"y{n}") for n in range(len(self.recomputes))]

    def _durations(self) -> None:
        """Part 1: each step's end, with the recompute (and, rich, rebuild) kernels that run before it."""
        md = self.model
        extra: dict[int, list] = {}
        for n, r in enumerate(self.recomputes):
            extra.setdefault(r.before, []).append(self.rcost[n] * self.y[n])
        md.add(self.S[0] == 0)
        for k, c in enumerate(self.cost):
            rebuilt = self.residency.rebuild_time(k, self._rebuild_units) if self.residency is not None else []
            md.add(self.E[k] == self.S[k] + c + sum(extra.get(k, [])) + sum(rebuilt))
            md.add(self.S[k + 1] >= self.E[k])

    def _rebuild_units(self, buffer: int) -> int:
        return _down(self.sp.recompute_seconds(buffer), self.unit)

    def _events(self) -> list[tuple[object, object]]:
        return list(zip(self.swaps, self.x)) + list(zip(self.recomputes, self.y))

    def _last_load(self, g: Gap) -> int:
        """The latest load_at: before - 1, or before itself under the rich model (a boundary copy-in)."""
        return g.before if self.sp.rich else g.before - 1

    def _swap_vars(self) -> None:
        """Part 3: choice, freed-by and loaded-by literals, both copies' starts."""
        self.x, self.F, self.L, self.i, self.out, self.inn = [], [], [], [], [], []
        for n, g in enumerate(self.swaps):
            self._one_swap(n, g)

    def _one_swap(self, n: int, g: Gap) -> None:
        md, h, d = self.model, self.horizon, self.copy[g.buffer]
        x = md.new_bool_var(f"x{n}")
        last_load = self._last_load(g)
        freed = {k: md.new_bool_var(f"F{n}_{k}") for k in range(g.after + 1, last_load - 1)} | {last_load - 1: x}
        loaded = {k: md.new_bool_var(f"L{n}_{k}") for k in range(g.after + 2, last_load)} | {last_load: x}
        for k in range(g.after + 1, last_load - 1):
            md.add_implication(freed[k], freed[k + 1])
        for k in range(g.after + 2, last_load):
            md.add_implication(loaded[k], loaded[k + 1])
        for k in loaded:
            md.add_implication(loaded[k], freed[k - 1])  # free_at < load_at
        out, inn = md.new_int_var(0, h, f"out{n}"), md.new_int_var(0, h, f"in{n}")
        md.add(out >= self.E[g.after]).only_enforce_if(x)
        for k, f in freed.items():
            md.add(out + d <= self.S[k]).only_enforce_if(f)
        for k in loaded:  # not loaded by k - 1: load_at >= k, so the copy-in starts after S_k
            issued = self.S[k] if k < g.before else self.E[k - 1]  # a boundary copy-in: when step k - 1 ends
            md.add(inn >= issued).only_enforce_if([x] + ([~loaded[k - 1]] if k - 1 in loaded else []))
        md.add(inn >= out + d).only_enforce_if(x)
        md.add(inn + d <= self.S[g.before]).only_enforce_if(x)
        i = md.new_int_var(g.after + 2, last_load, f"i{n}")  # load_at, for the copy-in order
        md.add(i == g.after + 2 + sum(x - v for v in loaded.values()))
        self.x.append(x), self.F.append(freed), self.L.append(loaded), self.i.append(i)
        self.out.append(out), self.inn.append(inn)

    def _boundary_issue(self) -> None:
        """Part 3, rich: a boundary copy-in is issued when step `before` is ready to start: step
        before-1 has ended and so have the copy-outs of the swaps freed at `before` (those freed
        earlier ended by then anyway, so "freed by `before`" is the condition)."""
        for n, g in enumerate(self.swaps):
            boundary = [self.x[n]] + ([~self.L[n][g.before - 1]] if g.before - 1 in self.L[n] else [])
            for m, other in enumerate(self.swaps):
                if m != n and g.before in self.F[m]:
                    done = self.out[m] + self.copy[other.buffer]
                    self.model.add(self.inn[n] >= done).only_enforce_if(boundary + [self.F[m][g.before]])

    def _copy_out_fifo(self) -> None:
        """Part 4, copy-outs: a fixed order, so a chain of 'engine free from' variables."""
        md, free = self.model, 0
        self.done: list[tuple[int, object]] = []
        for n in sorted(range(len(self.swaps)), key=lambda n: (self.swaps[n].after, self.swaps[n].buffer)):
            done = md.new_int_var(0, self.horizon, f"dout{n}")
            md.add(self.out[n] >= free).only_enforce_if(self.x[n])
            md.add(done >= self.out[n] + self.copy[self.swaps[n].buffer]).only_enforce_if(self.x[n])
            md.add(done >= free)
            self.done.append((n, done))
            free = done

    def _copy_in_fifo(self) -> None:
        """Part 4, copy-ins: issue order (load_at, before, buffer) for every pair of candidates;
        a pair whose load ranges cannot cross is ordered once and for all."""
        md = self.model
        order = sorted(range(len(self.swaps)), key=lambda n: (self.swaps[n].before, self.swaps[n].buffer))
        self.rank = rank = {n: r for r, n in enumerate(order)}
        self.first: dict[tuple[int, int], object] = {}
        for p in range(len(self.swaps)):
            for q in range(p + 1, len(self.swaps)):
                gp, gq, both = self.swaps[p], self.swaps[q], [self.x[p], self.x[q]]
                if (self._last_load(gp), rank[p]) < (gq.after + 2, rank[q]):
                    self._after(q, p, both)
                elif (self._last_load(gq), rank[q]) < (gp.after + 2, rank[p]):
                    self._after(p, q, both)
                else:
                    lit = md.new_bool_var(f"first{p}_{q}")  # p's copy-in is issued first
                    tie_p, tie_q = int(rank[p] > rank[q]), int(rank[q] > rank[p])
                    md.add(2 * self.i[p] + tie_p <= 2 * self.i[q] + tie_q).only_enforce_if(lit)
                    md.add(2 * self.i[q] + tie_q <= 2 * self.i[p] + tie_p).only_enforce_if(~lit)
                    self._after(q, p, both + [lit])
                    self._after(p, q, both + [~lit])
                    self.first[p, q] = lit

    def _after(self, later: int, earlier: int, literals: list) -> None:
        d = self.copy[self.swaps[earlier].buffer]
        self.model.add(self.inn[later] >= self.inn[earlier] + d).only_enforce_if(literals)

    def _away(self, n: int, k: int) -> list[tuple[int, object]]:
        """Swap candidate n's absence at step k, F - L, as (sign, literal) terms."""
        loaded = self.L[n].get(k)
        return [(1, self.F[n][k])] + ([(-1, loaded)] if loaded is not None else [])

    def _memory(self, rows: list[int], base: np.ndarray) -> None:
        """Part 5: each over-budget step loses its excess (rich: plus what extends and rebuilds keep
        there, on every step they may add to)."""
        sizes = self.sp.sizes()
        for k in rows:
            terms = [g.size * _expr(self._away(n, k)) for n, g in enumerate(self.swaps) if k in self.F[n]]
            terms += [sizes[r.buffer] * self.y[n] for n, r in enumerate(self.recomputes) if r.after < k < r.before]
            kept = self.residency.extra_bytes(k) if self.residency is not None else []
            self.model.add(sum(terms) - sum(kept) >= int(base[k]) - self.sp.budget)

    def _exclusions(self) -> None:
        """Part 6: pairs the validator forbids together."""
        events = self._events()
        for p in range(len(events)):
            for q in range(p + 1, len(events)):
                if conflict(self.sp, events[p][0], events[q][0]):
                    self.model.add(events[p][1] + events[q][1] <= 1)

    def _windows(self, over: list[int]) -> None:
        """Part 7 (redundant, implied by 3-4; for the relaxation): copy-outs issued after step a
        and freed by step k fit in [E_a, S_k]; copy-ins loaded after k and due by c in
        [S_{k+1}, S_c]. Sums over nested sets are chained through one variable each."""
        by_after: dict[int, list[int]] = {}
        by_before: dict[int, list[int]] = {}
        for n, g in enumerate(self.swaps):
            by_after.setdefault(g.after, []).append(n)
            by_before.setdefault(g.before, []).append(n)
        self.chains: list[tuple[object, object, list]] = []  # (total, previous, [(copy, terms)]) for the hint
        for k in over:
            total = None
            for a in sorted((a for a in by_after if a < k), reverse=True):
                total = self._chain(total, [(n, self._freed_by(n, k)) for n in by_after[a]])
                self.model.add(total <= self.S[k] - self.E[a])
            total = None
            for c in sorted(c for c in by_before if c > k + 1):
                pending = [(n, self._pending(n, k)) for n in by_before[c] if k <= self.swaps[n].before - 2]
                if pending:
                    total = self._chain(total, pending)
                    self.model.add(total <= self.S[c] - self.S[k + 1])

    def _chain(self, previous, parts: list[tuple[int, list]]):
        """A variable equal to previous + the copy time of `parts` ((swap, terms) pairs)."""
        total = self.model.new_int_var(0, self.horizon, "")
        weighted = [(self.copy[self.swaps[n].buffer], terms) for n, terms in parts]
        self.model.add(total == (previous if previous is not None else 0) + sum(c * _expr(t) for c, t in weighted))
        self.chains.append((total, previous, weighted))
        return total

    def _freed_by(self, n: int, k: int) -> list[tuple[int, object]]:
        return [(1, self.F[n].get(k, self.x[n]))]  # past its last free step a chosen swap is freed

    def _pending(self, n: int, k: int) -> list[tuple[int, object]]:
        loaded = self.L[n].get(k)
        return [(1, self.x[n])] + ([(-1, loaded)] if loaded is not None else [])

    def hint(self, schedule: SwapSchedule) -> None:
        """Every variable from `schedule`'s simulation in model units (its events outside the
        candidates dropped, which keeps it valid): CP-SAT starts from a complete feasible
        point (a partial hint it must first complete, and on a few hundred steps it did not)."""
        at = {(g.buffer, g.after): n for n, g in enumerate(self.swaps)}
        rat = {(r.buffer, r.after): n for n, r in enumerate(self.recomputes)}
        swaps = {at[s.buffer, s.after]: s for s in schedule.swaps if (s.buffer, s.after) in at}
        recs = {rat[r.buffer, r.after] for r in schedule.recomputes if (r.buffer, r.after) in rat}
        durations = np.array(self.cost, dtype=float)
        for n in recs:
            durations[self.recomputes[n].before] += self.rcost[n]
        rebuilds = schedule.rebuilds if self.residency is not None else ()
        for r in rebuilds:
            durations[r.at] += self._rebuild_units(r.buffer)
        tl = simulate(self.sp, tuple(swaps.values()), tuple(self.recomputes[n] for n in recs), durations,
                      lambda b: float(self.copy[b]))
        starts = [round(t) for t in tl.step_start] + [round(tl.total)]
        value: dict[int, int] = {}
        for k, v in enumerate(self.S):
            value[v.index] = starts[k]
        for k, v in enumerate(self.E):
            value[v.index] = starts[k] + int(durations[k])
        for n, v in enumerate(self.y):
            value[v.index] = int(n in recs)
        for n in range(len(self.swaps)):
            self._hint_swap(n, swaps.get(n), tl, value)
        self._hint_order(swaps, tl, value)
        if self.residency is not None:
            value |= self.residency.hint_values(schedule)
        for total, previous, weighted in self.chains:
            before = value[previous.index] if previous is not None else 0
            value[total.index] = before + sum(c * sum(sign * value[lit.index] for sign, lit in t) for c, t in weighted)
        for index, v in value.items():
            self.model.proto.solution_hint.vars.append(index)
            self.model.proto.solution_hint.values.append(int(v))

    def _hint_swap(self, n: int, s: Swap | None, tl, value: dict[int, int]) -> None:
        value[self.x[n].index] = int(s is not None)
        for k, v in self.F[n].items():
            value[v.index] = int(s is not None and s.free_at <= k)
        for k, v in self.L[n].items():
            value[v.index] = int(s is not None and s.load_at <= k)
        value[self.i[n].index] = s.load_at if s is not None else self.swaps[n].after + 2
        value[self.out[n].index] = round(tl.out_copy[s][0]) if s is not None else 0
        value[self.inn[n].index] = round(tl.in_copy[s][0]) if s is not None else 0

    def _hint_order(self, swaps: dict, tl, value: dict[int, int]) -> None:
        """The copy-out engine's chain and the copy-in order literals (by the hinted load steps)."""
        free = 0
        for n, done in self.done:
            s = swaps.get(n)
            free = max(free, round(tl.out_copy[s][1])) if s is not None else free
            value[done.index] = free
        for (p, q), lit in self.first.items():
            value[lit.index] = int((value[self.i[p].index], self.rank[p]) < (value[self.i[q].index], self.rank[q]))

    def read(self, solver: cp_model.CpSolver, name: str) -> SwapSchedule:
        swaps = []
        for n, g in enumerate(self.swaps):
            if solver.value(self.x[n]):
                free_at = min(k for k, v in self.F[n].items() if solver.value(v))
                swaps.append(Swap(g.buffer, g.after, free_at, solver.value(self.i[n]), g.before))
        recomputes = tuple(r for n, r in enumerate(self.recomputes) if solver.value(self.y[n]))
        rebuilds, extends = self.residency.read(solver.value, recomputes) if self.residency is not None else ((), ())
        return SwapSchedule(tuple(swaps), name, recomputes=recomputes, rebuilds=rebuilds, extends=extends)
