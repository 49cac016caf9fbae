"""The rich model's extends and rebuilds inside the exact model (swap_exact), and its candidates.

Why: "ours" plans under the rich model (boundary copy-ins, extended and rebuilt inputs),
so the exact baseline must solve that model too, or its optimum is not a bound on what
ours could reach (the plain model's optimum is only an upper bound there). Each recompute
candidate whose producer reads an input i dead at its step t needs i resident at t: one
literal `kept(i, t)` = `ext(i, t)` (i stays from its last use through t; extends of one
input are nested, as one Extend per buffer allows) or `reb(i, t)` (i's producer runs
again before step t: its time joins step t, its bytes stay for step t only, and its own
inputs are resident at t in turn, with no depth limit: the validator sets none). An input
still live at t must not be away there: none of its candidate events whose gap spans t.
The rows: every step an extend or a rebuild may add bytes to, besides the over-budget ones.
"""

from __future__ import annotations

import itertools

from ortools.sat.python import cp_model

from graphopt.plan.swap import Extend, Gap, Rebuild, Recompute, SwapProblem, SwapSchedule
from graphopt.plan.swap_floor import rich_swap_gaps
from graphopt.plan.swap_rich import needed_residency


def rich_candidates(sp: SwapProblem, over: list[int]) -> tuple[list[Gap], list[Recompute], set[int]]:
    """(swap gaps, recomputes, rows): every event whose absence meets a row, where the rows are the
    over-budget steps and those the candidates' extends and rebuilds may add bytes to (a fixed
    point: an event elsewhere frees nothing a valid schedule needs, and dropping it keeps any
    valid schedule valid and no slower)."""
    gaps = rich_swap_gaps(sp)
    every = [Recompute(g.buffer, g.after, g.before) for b in sp.problem.buffers if b.id in sp.recompute_inputs
             for g in sp._idle(b, 2)]
    ends = {b.id: b.end for b in sp.problem.buffers}
    rows = set(over)
    while True:
        recomputes = [r for r in every if any(r.after < k < r.before for k in rows)]
        grown = set(over) | _kept_rows(sp, recomputes, ends)
        if grown == rows:
            break
        rows = grown
    return [g for g in gaps if any(g.after < k < g.before for k in rows)], recomputes, rows


def _kept_rows(sp: SwapProblem, recomputes: list[Recompute], ends: dict[int, int]) -> set[int]:
    rows: set[int] = set()
    seen: set[tuple[int, int]] = set()

    def need(buffer: int, step: int) -> None:
        for i in sp.recompute_inputs.get(buffer, ()):
            if step >= ends[i] and (i, step) not in seen:
                seen.add((i, step))
                rows.update(range(ends[i], step + 1))
                need(i, step)

    for r in recomputes:
        need(r.buffer, r.before)
    return rows


class Residency:
    """The ext/reb literals of the module docstring for one CP-SAT model."""

    def __init__(self, md: cp_model.CpModel, sp: SwapProblem, recomputes: list[tuple[Recompute, object]],
                 events: list[tuple[object, object]]) -> None:
        """`recomputes`: (candidate, literal); `events`: every candidate swap gap and recompute with
        its literal (a live input must not be away where something reads it)."""
        self.md, self.sp = md, sp
        self.ends = {b.id: b.end for b in sp.problem.buffers}
        self.sizes = sp.sizes()
        self.events = events
        self.ext: dict[tuple[int, int], object] = {}
        self.reb: dict[tuple[int, int], object] = {}
        self.kept: dict[tuple[int, int], object] = {}
        for r, y in recomputes:
            self._inputs_resident(r.buffer, r.before, y)
        self.extend_steps = self._extend_steps()  # buffer -> its extend literals' steps, sorted (fixed from here)
        for i, ts in self.extend_steps.items():
            for t1, t2 in itertools.pairwise(ts):
                md.add_implication(self.ext[i, t2], self.ext[i, t1])

    def _inputs_resident(self, buffer: int, step: int, when) -> None:
        for i in self.sp.recompute_inputs.get(buffer, ()):
            if step < self.ends[i]:
                for event, lit in self.events:
                    if event.buffer == i and event.after < step < event.before:
                        self.md.add(lit + when <= 1)
            else:
                self.md.add_implication(when, self._resident(i, step))

    def _resident(self, buffer: int, step: int):
        key = (buffer, step)
        if key not in self.kept:
            ext = self.md.new_bool_var(f"ext{buffer}_{step}")
            self.ext[key] = ext
            choices = [ext]
            if buffer in self.sp.recompute_inputs:
                reb = self.md.new_bool_var(f"reb{buffer}_{step}")
                self.reb[key] = reb
                choices.append(reb)
            kept = self.md.new_bool_var(f"kept{buffer}_{step}")
            self.md.add_bool_or(choices).only_enforce_if(kept)
            self.kept[key] = kept
            if key in self.reb:
                self._inputs_resident(buffer, step, self.reb[key])
        return self.kept[key]

    def _extend_steps(self) -> dict[int, list[int]]:
        steps: dict[int, list[int]] = {}
        for i, t in self.ext:
            steps.setdefault(i, []).append(t)
        return {i: sorted(ts) for i, ts in steps.items()}

    def rebuild_time(self, step: int, unit_of) -> list:
        """Linear terms: the producers run again before `step` (`unit_of(buffer)`: their time in units)."""
        return [unit_of(i) * v for (i, t), v in self.reb.items() if t == step]

    def extra_bytes(self, step: int) -> list:
        """Linear terms: bytes an extend or a rebuild keeps at `step`."""
        terms = [self.sizes[i] * v for (i, t), v in self.reb.items() if t == step]
        for i, ts in self.extend_steps.items():
            later = [t for t in ts if t >= step]
            if self.ends[i] <= step and later:
                terms.append(self.sizes[i] * self.ext[i, later[0]])
        return terms

    def read(self, value, recomputes: list[Recompute]) -> tuple[tuple[Rebuild, ...], tuple[Extend, ...]]:
        """The extends and rebuilds `recomputes` need, as `value(literal)` chose them."""
        return needed_residency(self.sp, recomputes, lambda i, t: value(self.ext[i, t]))

    def hint_values(self, schedule: SwapSchedule) -> dict[int, int]:
        """Variable index -> value for `schedule`'s extends and rebuilds."""
        extended = {e.buffer: e.to for e in schedule.extends}
        rebuilt = {(r.buffer, r.at) for r in schedule.rebuilds}
        value = {}
        for (i, t), v in self.ext.items():
            value[v.index] = int(extended.get(i, -1) >= t)
        for key, v in self.reb.items():
            value[v.index] = int(key in rebuilt and not value[self.ext[key].index])
        for key, v in self.kept.items():
            value[v.index] = int(value[self.ext[key].index] or (key in self.reb and value[self.reb[key].index]))
        return value
