"""Swaps whose copy timings the solver chooses, for the covering models (swap_cover, swap_rich).

Why: a covering model used to offer each idle gap in a few fixed timings (SINGA's
out-early/in-late, then the same with symmetric slack). The best schedules need
other timings: on transformer-small at half the peak the proven optimum (swap_exact)
times 17 copies, and none of them the way any fixed variant does (a copy-out later
than the earliest so another copy can go first, a copy-in far from its use), and
"ours" found 7.8% against 0.79%. Here the timing is free, on the
no-swap timeline, with the copy engines modelled:
* a gap (buffer idle between uses `after` < `before`) is chosen or not (`use`);
* it is away at a step k (a literal, made when a memory row asks for k) only if its
  copy-out, started when step `after` ends and queued on the device-to-host engine
  in the simulator's issue order (after, buffer), has ended by the start of step
  k, and its copy-in, on the host-to-device engine (one copy at a time, any order),
  starts after step k ends and ends by the start of step `before`;
* a chosen gap is away at one step at least.
The schedule read back frees the buffer at the first step the copy-out allows and
loads it at the last step before the copy-in starts: the simulator then issues the
copy-ins in the order the solver ran them, so a model in which every copy fits its
window is a schedule whose swaps hide (up to rounding of times to integer units),
even with recomputes, which only move later steps later.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ortools.sat.python import cp_model

from graphopt.plan.swap import Swap, SwapProblem


@dataclass
class _TimedGap:
    """One candidate: the gap's widest absence (`span`), its literals and copy start variables."""

    span: Swap
    use: cp_model.IntVar
    copy_out: cp_model.IntVar
    copy_in: cp_model.IntVar
    length: int  # of each copy, in units
    away: dict[int, cp_model.IntVar] = field(default_factory=dict)


class TimedSwaps:
    """The timed swap candidates of one CP-SAT model (module docstring)."""

    def __init__(self, md: cp_model.CpModel, sp: SwapProblem, scale: float, over: list[int]) -> None:
        """Candidates: the gaps with room for both copies around a step of `over` (the steps
        over the budget; an absence elsewhere frees nothing needed)."""
        self.md, self.sp, self.scale = md, sp, scale
        self.starts = [round(t * scale) for t in sp.nominal_starts()]
        self.sizes = sp.sizes()
        self.gaps: list[_TimedGap] = []
        ins = []
        horizon = self.starts[-1]
        for gap in sp.gaps():
            length = max(1, int(-(-sp.copy_seconds(gap.buffer) * scale // 1)))
            if not any(self._fits(gap.after, gap.before, length, k) for k in over):
                continue
            use = md.new_bool_var(f"swap{gap.buffer}@{gap.after}")
            copy_out = md.new_int_var(self.starts[gap.after + 1], horizon, "")
            copy_in = md.new_int_var(0, self.starts[gap.before] - length, "")
            ins.append(md.new_optional_fixed_size_interval_var(copy_in, length, use, ""))
            span = Swap(gap.buffer, gap.after, gap.after + 1, gap.before - 1, gap.before)
            self.gaps.append(_TimedGap(span, use, copy_out, copy_in, length))
        md.add_no_overlap(ins)
        self.queue = self._copy_out_queue(horizon)

    def _copy_out_queue(self, horizon: int) -> list[tuple[_TimedGap, cp_model.IntVar]]:
        """Copy-outs one at a time in the simulator's issue order (after, buffer): a chain of
        "engine free" times, each after its copy if chosen and after the one before."""
        queue, free = [], 0
        for g in sorted(self.gaps, key=lambda g: (g.span.after, g.span.buffer)):
            after = self.md.new_int_var(0, horizon, "")
            self.md.add(g.copy_out >= free).only_enforce_if(g.use)
            self.md.add(after >= g.copy_out + g.length).only_enforce_if(g.use)
            self.md.add(after >= free)
            queue.append((g, after))
            free = after
        return queue

    def candidates(self) -> list[tuple[Swap, cp_model.IntVar]]:
        """(the gap's widest absence, its `use` literal): for the models' one-event-per-gap and
        recompute-input rules, which depend on the gap only, not on the timing."""
        return [(g.span, g.use) for g in self.gaps]

    def away_at(self, k: int) -> list[tuple[int, cp_model.IntVar]]:
        """(bytes, literal) of every candidate that may be away during step k."""
        out = []
        for g in self.gaps:
            lit = g.away.get(k) or self._away_literal(g, k)
            if lit is not None:
                out.append((self.sizes[g.span.buffer], lit))
        return out

    def _away_literal(self, g: _TimedGap, k: int):
        if not self._fits(g.span.after, g.span.before, g.length, k):
            return None
        lit = self.md.new_bool_var("")
        self.md.add_implication(lit, g.use)
        self.md.add(g.copy_out + g.length <= self.starts[k]).only_enforce_if(lit)
        self.md.add(g.copy_in >= self.starts[k + 1]).only_enforce_if(lit)
        g.away[k] = lit
        return lit

    def _fits(self, after: int, before: int, length: int, k: int) -> bool:
        """Can a buffer idle between steps `after` and `before` be away at step k: a copy-out
        between the end of `after` and the start of k, a copy-in between the end of k and
        the start of `before`?"""
        return (after < k < before - 1 and self.starts[k] - self.starts[after + 1] >= length
                and self.starts[before] - self.starts[k + 1] >= length)

    def close(self) -> None:
        """A chosen gap is away somewhere; one no memory row asked about is never chosen."""
        for g in self.gaps:
            if g.away:
                self.md.add_bool_or(list(g.away.values())).only_enforce_if(g.use)
            else:
                self.md.add(g.use == 0)

    def hint(self, swaps) -> None:
        """Hints the candidates of `swaps` (any timing) as chosen, away where those are, and their
        copies as early as the engines allow in the simulator's issue order; the others as not
        chosen. A schedule from a model whose copies fit the same windows (swap_cover's fixed
        timings) is then a complete, feasible hint: this model starts from it."""
        chosen = {(s.buffer, s.after): s for s in swaps}
        free = 0
        for g, after in self.queue:
            s = chosen.get((g.span.buffer, g.span.after))
            if s is not None:
                self.md.add_hint(g.copy_out, max(free, self.starts[s.after + 1]))
                free = max(free, self.starts[s.after + 1]) + g.length
            self.md.add_hint(after, free)
        free = 0
        picked = [(g, chosen[key]) for g in self.gaps if (key := (g.span.buffer, g.span.after)) in chosen]
        for g, s in sorted(picked, key=lambda p: (p[1].load_at, p[1].before, p[1].buffer)):
            free = max(self.starts[s.load_at], free) + g.length
            self.md.add_hint(g.copy_in, free - g.length)
        for g in self.gaps:
            s = chosen.get((g.span.buffer, g.span.after))
            self.md.add_hint(g.use, s is not None)
            for k, lit in g.away.items():
                self.md.add_hint(lit, s is not None and s.free_at <= k < s.load_at)

    def read(self, solver: cp_model.CpSolver) -> list[Swap]:
        """The chosen swaps: freed at the first step after the copy-out, loaded at the last step
        that starts by the copy-in."""
        out = []
        for g in self.gaps:
            if not solver.value(g.use):
                continue
            s = g.span
            out_end = solver.value(g.copy_out) + g.length
            in_start = solver.value(g.copy_in)
            free_at = next(j for j in range(s.after + 1, s.before) if self.starts[j] >= out_end)
            load_at = max(j for j in range(s.after + 1, s.before) if self.starts[j] <= in_start)
            out.append(Swap(s.buffer, s.after, free_at, load_at, s.before))
        return out
