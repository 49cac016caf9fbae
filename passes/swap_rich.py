"""The covering model of swap_cover, for the rich swap model (part of "ours" when SwapProblem.rich).

Why: the plain model sets a floor of its own (a copy-in must be done one step
before the use; a recompute may only read inputs still live), so at half the
memory the planner runs out of candidates, not of time. Here the choice also has
* boundary swaps: any idle gap of 2+ steps, copied in when step before-1 ends
  (absent through step before-1); priced at the full copy time, the wait of
  step `before` for it, plus the contention weight;
* recomputes of every idle gap of a recomputable buffer: an input dead where it
  runs must be resident there, by one of two shared decisions per (input, step):
  `ext` (extend the input through that step; its bytes stay from its last use
  on, so extends of one input are nested: ext(i, t2) => ext(i, t1) for t1 < t2)
  or `reb` (rebuild it there: its bytes for that step, its producer's time, and
  its own inputs resident in turn, up to MAX_CHAIN deep: Checkmate-style chains).
Constraints: at every step the no-swap load minus the bytes away plus the bytes
kept or rebuilt fits the budget (steps under budget appear only where an extend
or a rebuild may add bytes); one event per idle gap; an input read by a recompute
or a rebuild is not away (swap or recompute gap) where it runs. Minimize the
priced time. Each weight gives one schedule, and one variant prices contention
by modelling the copy engines, the swaps' copy timings chosen by the solver
(swap_timed); the caller judges them all with the exact simulator and keeps the best.
"""

from __future__ import annotations

import itertools
import time

import numpy as np
from ortools.sat.python import cp_model

from graphopt.passes.swap_cover import add_copy_engines, swap_variants
from graphopt.passes.swap_singa import early_late
from graphopt.passes.swap_timed import TimedSwaps
from graphopt.plan.swap import Recompute, Swap, SwapProblem, SwapSchedule, base_live_bytes
from graphopt.plan.swap_rich import needed_residency

WEIGHTS = (0.3, 1.0)
MAX_CHAIN = 3  # rebuilds in turn below a recompute


def rich_cover_schedules(sp: SwapProblem, time_limit: float, workers: int = 2,
                         hints: list[SwapSchedule] = (), engines: bool = False) -> list[SwapSchedule]:
    """With `engines`, the schedules of the models with the copy engines modelled
    (`_engines_schedules`: copies timed by the solver, swap_timed, started from a schedule of
    `hints` or of the fixed-timing model, swap_cover.swap_variants), with all the time; without,
    or when those found nothing, one schedule per contention weight, its model hinted with the
    first of `hints` made only of its own events (the plain model's schedules are: its events
    are a subset of these). Why the weights only then: in the 16 cells of swap-timed-2026-12-07
    the winner was a timed model's schedule every time, never a weight's."""
    base = base_live_bytes(sp.problem, sp.num_steps)
    over = [k for k in range(sp.num_steps) if base[k] > sp.budget]
    if not over:
        return []
    recomputes = rich_recompute_events(sp, over)
    plain = rich_swap_events(sp, over)
    deadline = time.perf_counter() + time_limit
    out = _engines_schedules(sp, base, over, recomputes, hints, time_limit, workers) if engines else []
    if out:
        return out
    for n, weight in enumerate(WEIGHTS):
        model = _RichCover(sp, base, over, plain + recomputes, weight)
        model.hint(hints)
        schedule = model.solve((deadline - time.perf_counter()) / (len(WEIGHTS) - n), workers, f"rich-w{weight}")
        if schedule is not None:
            out.append(schedule)
    return out


def _engines_schedules(sp: SwapProblem, base: np.ndarray, over: list[int], recomputes: list, hints: list,
                       time_limit: float, workers: int) -> list[SwapSchedule]:
    """The engines models' schedules in `time_limit`. The timed model starts from the first of
    `hints` that is a feasible point of it (its copies hide on the no-swap timeline) with all the
    time; only when none is, the fixed-timing model runs first (half the time) to give it one.
    Why: on the 6-layer transformer at 0.50x the fixed-timing model found nothing in 2.4 s,
    where the timed model, started from the staged greedy's 1.19%, reached 0.70% in 60 s."""
    deadline = time.perf_counter() + time_limit
    timed = _RichCover(sp, base, over, recomputes, 0.0, timed=True)
    out, hinted = [], timed.complete_hint(hints, workers)
    if not hinted:
        fixed = _RichCover(sp, base, over, swap_variants(sp, over) + recomputes, 0.0, engines=True)
        fixed.hint(hints)
        found = fixed.solve((deadline - time.perf_counter()) / 2, workers, "rich-engines")
        out = [found] if found is not None else []
        hinted = timed.complete_hint(out, workers)  # a fixed-timing schedule is a feasible point of it
    found = timed.solve(deadline - time.perf_counter(), workers, "rich-timed", started=hinted)
    return out + ([found] if found is not None else [])


def _covers(event, over: list[int]) -> bool:
    lo, hi = np.searchsorted(over, event.free_at), np.searchsorted(over, event.load_at)
    return hi > lo


def rich_swap_events(sp: SwapProblem, over: list[int]) -> list[tuple[Swap, float]]:
    """Hidden swaps (SINGA's timing) and boundary swaps of every idle gap of 2+ steps."""
    starts = sp.nominal_starts()
    out = []
    for gap in _idle_gaps(sp, sp.swappable or None, 2):
        free_at, load_at = early_late(sp, gap, starts)
        copy = sp.copy_seconds(gap.buffer)
        if gap.before - gap.after >= 3 and free_at < load_at:
            out.append((Swap(gap.buffer, gap.after, free_at, load_at, gap.before), copy))
        boundary = Swap(gap.buffer, gap.after, min(free_at, gap.before - 1), gap.before, gap.before)
        out.append((boundary, copy))
    return [(s, c) for s, c in out if _covers(s, over)]


def _idle_gaps(sp: SwapProblem, among, shortest: int):
    return [g for b in sp.problem.buffers if among is None or b.id in among for g in sp._idle(b, shortest)]


def rich_recompute_events(sp: SwapProblem, over: list[int]) -> list[tuple[Recompute, float]]:
    """Every idle gap (a step inside) of a recomputable buffer, whatever its inputs."""
    events = [Recompute(g.buffer, g.after, g.before) for g in _idle_gaps(sp, sp.recompute_inputs, 2)]
    return [(r, sp.recompute_seconds(r.buffer)) for r in events if _covers(r, over)]


class _RichCover:
    """One CP-SAT model: events, the shared extend/rebuild decisions, memory rows."""

    def __init__(self, sp: SwapProblem, base: np.ndarray, over: list[int], events: list, weight: float,
                 engines: bool = False, timed: bool = False) -> None:
        """`engines`: the swaps of `events` must fit their copy windows, one copy at a time per engine
        (swap_cover.add_copy_engines); `timed`: swaps timed by the solver (swap_timed) join `events`,
        at one unit each."""
        self.sp, self.base = sp, base
        self.md = cp_model.CpModel()
        self.use = [self.md.new_bool_var("") for _ in events]
        self.scale = 1e6 / max(sum(sp.step_seconds), 1e-12)
        self.cost = [max(1, round(sec * self.scale * (weight + (e.load_at == e.before) if isinstance(e, Swap)
                                                        else 1.0))) for e, sec in events]
        self.timed = TimedSwaps(self.md, sp, self.scale, over) if timed else None
        self.given = len(events)  # the caller's events; after them, the timed ones' spans
        if engines:
            add_copy_engines(self.md, sp, events, self.use, self.scale)
        self.events = list(events)
        for span, lit in self.timed.candidates() if timed else ():
            self.events.append((span, 0.0))
            self.use.append(lit)
            self.cost.append(1)
        self.ends = {b.id: b.end for b in sp.problem.buffers}
        self.starts = {b.id: b.start for b in sp.problem.buffers}
        self.sizes = sp.sizes()
        self.ext: dict[tuple[int, int], cp_model.IntVar] = {}
        self.reb: dict[tuple[int, int], cp_model.IntVar] = {}
        self.res: dict[tuple[int, int], cp_model.IntVar | None] = {}
        self.by_buffer: dict[int, list[int]] = {}
        for n, (e, _) in enumerate(self.events):  # the timed spans too: their gap rules hold whatever the timing
            self.by_buffer.setdefault(e.buffer, []).append(n)
        self._one_per_gap()
        for n, (e, _) in enumerate(self.events):
            if isinstance(e, Recompute):
                self._inputs_resident(e.buffer, e.before, self.use[n], 0)
        self._memory(over)
        rebuild_cost = [round(self.sp.recompute_seconds(i) * self.scale) * v for (i, _), v in self.reb.items()]
        self.md.minimize(sum(c * u for c, u in zip(self.cost, self.use)) + sum(rebuild_cost))

    def _one_per_gap(self) -> None:
        for members in self.by_buffer.values():
            for x, a in enumerate(members):
                for b in members[x + 1:]:
                    ea, eb = self.events[a][0], self.events[b][0]
                    if ea.after < eb.before and eb.after < ea.before:
                        self.md.add(self.use[a] + self.use[b] <= 1)

    def _inputs_resident(self, buffer: int, step: int, when, depth: int) -> None:
        """`when` => every input of `buffer`'s producer is resident at `step`."""
        for i in self.sp.recompute_inputs.get(buffer, ()):
            if step < self.ends[i]:
                for n in self.by_buffer.get(i, ()):  # live: none of its events may have it away then
                    e = self.events[n][0]
                    if e.after < step < e.before:
                        self.md.add(self.use[n] + when <= 1)
                continue
            kept = self._resident(i, step, depth)
            if kept is None:
                self.md.add(when == 0)
            else:
                self.md.add_implication(when, kept)

    def _resident(self, buffer: int, step: int, depth: int):
        """A literal: `buffer`, dead at `step`, is extended through it or rebuilt there."""
        key = (buffer, step)
        if key in self.res:
            return self.res[key]
        self.res[key] = None  # cycles cannot happen (inputs are born first); this guards depth
        ext = self.md.new_bool_var("")
        self.ext[key] = ext
        choices = [ext]
        if buffer in self.sp.recompute_inputs and depth < MAX_CHAIN:
            reb = self.md.new_bool_var("")
            self.reb[key] = reb
            self._inputs_resident(buffer, step, reb, depth + 1)
            choices.append(reb)
        kept = self.md.new_bool_var("")
        self.md.add_bool_or(choices).only_enforce_if(kept)
        self.res[key] = kept
        return kept

    def _extras_at(self, k: int, rebuilt: dict) -> list:
        """(bytes, literal) kept or rebuilt at step k (`rebuilt`: step -> its rebuild literals)."""
        terms = list(rebuilt.get(k, ()))
        for i, ts in self._extend_steps().items():
            later = [t for t in ts if t >= k]
            if self.ends[i] <= k and later:
                terms.append((self.sizes[i], self.ext[i, later[0]]))
        return terms

    def _extend_steps(self) -> dict[int, list[int]]:
        if not hasattr(self, "_ext_steps"):
            steps: dict[int, list[int]] = {}
            for i, t in self.ext:
                steps.setdefault(i, []).append(t)
            self._ext_steps = {i: sorted(ts) for i, ts in steps.items()}
            for i, ts in self._ext_steps.items():
                for t1, t2 in itertools.pairwise(ts):
                    self.md.add_implication(self.ext[i, t2], self.ext[i, t1])
        return self._ext_steps

    def _memory(self, over: list[int]) -> None:
        rows = set(over) | {t for _, t in self.reb}
        for i, ts in self._extend_steps().items():
            rows |= set(range(self.ends[i], ts[-1] + 1))
        absent: dict[int, list] = {k: [] for k in rows}
        for (e, _), u in zip(self.events[:self.given], self.use):
            for k in range(e.free_at, e.load_at):
                if k in absent:
                    absent[k].append(self.sizes[e.buffer] * u)
        if self.timed is not None:
            for k in rows:
                absent[k] += [size * lit for size, lit in self.timed.away_at(k)]
            self.timed.close()
        rebuilt: dict[int, list] = {}
        for (i, t), v in self.reb.items():
            rebuilt.setdefault(t, []).append((self.sizes[i], v))
        for k in sorted(rows):
            extra = [size * v for size, v in self._extras_at(k, rebuilt)]
            self.md.add(int(self.base[k]) - sum(absent[k]) + sum(extra) <= self.sp.budget)

    def hint(self, schedules: list[SwapSchedule]) -> None:
        """Hints the first schedule made only of this model's events (its extends and rebuilds as
        the matching literals; a swap may also be one of the timed candidates', in any timing)."""
        for schedule in schedules:
            if self._hint_one(schedule):
                return

    def complete_hint(self, schedules: list[SwapSchedule], workers: int, tries: int = 3,
                      seconds: float = 2.0) -> bool:
        """Hints every variable with a solution made from the first of `schedules` that is a
        feasible point here (up to `tries` that match; each completed by a solve with the
        hinted variables fixed, at most `seconds`). Why: CP-SAT reports even a feasible hint
        only after its presolve, about 8 s on the timed model of the 6-layer transformer (33k
        Booleans); with every variable hinted, a solve without presolve has it at once."""
        for schedule in schedules:
            if tries == 0:
                break
            self.md.clear_hints()
            if not self._hint_one(schedule):
                continue
            tries -= 1
            solver = cp_model.CpSolver()
            solver.parameters.max_time_in_seconds = seconds
            solver.parameters.num_workers = workers
            solver.parameters.fix_variables_to_their_hinted_value = True
            if solver.solve(self.md) in (cp_model.OPTIMAL, cp_model.FEASIBLE):
                values = list(solver.response_proto.solution)
                self.md.clear_hints()
                for index, value in enumerate(values):
                    self.md.add_hint(self.md.get_int_var_from_proto_index(index), value)
                return True
        self.md.clear_hints()
        return False

    def _hint_one(self, schedule: SwapSchedule) -> bool:
        index = {e: n for n, (e, _) in enumerate(self.events[:self.given])}
        timed = {(s.buffer, s.after) for s, _ in self.timed.candidates()} if self.timed is not None else set()
        chosen = [*schedule.swaps, *schedule.recomputes]
        retimed = [e for e in schedule.swaps if e not in index and (e.buffer, e.after) in timed]
        if len(retimed) + sum(e in index for e in chosen) < len(chosen):
            return False
        picked = {index[e] for e in chosen if e in index}
        for n in range(self.given):
            self.md.add_hint(self.use[n], n in picked)
        if self.timed is not None:
            self.timed.hint(retimed)
        extended = {e.buffer: e.to for e in schedule.extends}
        rebuilt = {(r.buffer, r.at) for r in schedule.rebuilds}
        for (i, t), v in self.ext.items():
            self.md.add_hint(v, extended.get(i, -1) >= t)
        for key, v in self.reb.items():
            self.md.add_hint(v, key in rebuilt and extended.get(key[0], -1) < key[1])
        return True

    def solve(self, time_limit: float, workers: int, name: str, started: bool = False) -> SwapSchedule | None:
        """`started`: the model has a complete hint (complete_hint). Then no presolve, so the hint
        is the first solution at once, and only neighbourhood search from it: on the 6-layer
        transformer at 0.50x that took the timed model from 1.39% to 0.70% in 18 s, where the
        default search took 60 s from 1.19%."""
        solver = cp_model.CpSolver()
        solver.parameters.max_time_in_seconds = max(time_limit, 0.1)
        solver.parameters.num_workers = workers
        solver.parameters.cp_model_presolve = not started
        solver.parameters.use_lns_only = started
        if solver.solve(self.md) not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            return None
        chosen = [e for (e, _), u in zip(self.events[:self.given], self.use) if solver.value(u)]
        chosen += self.timed.read(solver) if self.timed is not None else []
        return self._schedule(chosen, solver, name)

    def _schedule(self, chosen: list, solver: cp_model.CpSolver, name: str) -> SwapSchedule:
        """The chosen events, and only the extends and rebuilds their recomputes need."""
        recomputes = [e for e in chosen if isinstance(e, Recompute)]
        rebuilds, extends = needed_residency(self.sp, recomputes, lambda i, t: solver.value(self.ext[i, t]))
        swaps = tuple(e for e in chosen if isinstance(e, Swap))
        return SwapSchedule(swaps, name, recomputes=tuple(recomputes), rebuilds=rebuilds, extends=extends)
