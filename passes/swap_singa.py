"""SINGA's swap strategies (Zhang et al., SmartPool + swapping), as named baselines.

Design, following the paper:
1. Candidates are idle gaps that cover the current peak step (a tensor absent
   there lowers the peak).
2. Rank them by one of three scores:
   * `doa`  duration of absence: the idle time of the gap;
   * `aoa`  area of absence: idle time x size;
   * `wdoa` weighted: the memory-time over the limit that the swap removes,
     sum over the gap's steps of step time x min(size, load - limit).
3. Take the best, recompute the load, repeat until the peak fits the limit.
4. Timing: swap-out as early as possible (free the range once the copy would
   be done on the nominal timeline), and
   * `no_overhead`: swap-in just in time (the latest step from which the
     copy still ends before the next use); gaps too short to hide are skipped,
     and a peak that cannot be met this way fails;
   * `stick_to_limit`: the limit is held whatever it costs: any gap may be
     chosen, one too short to hide is taken whole (out right after its use,
     in right before the next) and the simulator counts the stall.
   In this step model a swap-in never raises the load above the limit (the
   load is computed with every chosen absence), so SINGA's "delay the swap-in
   until memory allows" is already implied by the selection loop.
Planners never see TVM; the caller judges the result with `validate_swaps`.
"""

from __future__ import annotations

import time

import numpy as np

from graphopt.errors import PlanError
from graphopt.plan.swap import Gap, Swap, SwapProblem, SwapSchedule, live_bytes

RANKINGS = ("doa", "aoa", "wdoa")
MODES = ("no_overhead", "stick_to_limit")


class InfeasibleBudget(PlanError):
    """The strategy cannot bring the peak under the budget."""


def early_late(sp: SwapProblem, gap: Gap, starts: np.ndarray) -> tuple[int, int]:
    """(free_at, load_at) on the nominal timeline: out as early as the copy allows,
    in as late as it still arrives; free_at >= load_at means the gap cannot hide it."""
    copy = sp.copy_seconds(gap.buffer)
    end_after = starts[gap.after + 1]
    free_at = gap.after + 1
    while free_at < gap.before - 1 and starts[free_at] - end_after < copy:
        free_at += 1
    load_at = gap.before - 1
    while load_at > gap.after + 1 and starts[gap.before] - starts[load_at] < copy:
        load_at -= 1
    return free_at, load_at


class Singa:
    """One SINGA strategy: a ranking and a timing mode."""

    def __init__(self, ranking: str = "aoa", mode: str = "no_overhead") -> None:
        if ranking not in RANKINGS or mode not in MODES:
            raise ValueError(f"ranking in {RANKINGS}, mode in {MODES}")
        self.ranking, self.mode = ranking, mode
        self.name = f"singa-{ranking}-{mode.replace('_', '-')}"

    def plan(self, sp: SwapProblem, time_limit: float = 10.0) -> SwapSchedule:
        began = time.perf_counter()
        starts = sp.nominal_starts()
        options = self._timed_gaps(sp, starts)
        chosen: list[Swap] = []
        load = live_bytes(sp, chosen)
        while load.max(initial=0) > sp.budget:
            peak = int(np.argmax(load))
            fits = [(g, s) for g, s in options if s.free_at <= peak < s.load_at
                    and not any(c.buffer == g.buffer and c.after < g.before and g.after < c.before for c in chosen)]
            if not fits:
                raise InfeasibleBudget(f"{self.name}: no idle tensor covers the peak at step {peak}")
            gap, swap = max(fits, key=lambda gs: (self._score(sp, gs[0], gs[1], starts, load), -gs[0].buffer))
            chosen.append(swap)
            load = live_bytes(sp, chosen)
        return SwapSchedule(tuple(chosen), self.name, time.perf_counter() - began)

    def _timed_gaps(self, sp: SwapProblem, starts: np.ndarray) -> list[tuple[Gap, Swap]]:
        out = []
        for gap in sp.gaps():
            free_at, load_at = early_late(sp, gap, starts)
            if free_at >= load_at:
                if self.mode == "no_overhead":
                    continue  # cannot hide: not a no-overhead candidate
                free_at, load_at = gap.after + 1, gap.before - 1
            out.append((gap, Swap(gap.buffer, gap.after, free_at, load_at, gap.before)))
        return out

    def _score(self, sp: SwapProblem, gap: Gap, swap: Swap, starts: np.ndarray, load: np.ndarray) -> float:
        idle = float(starts[gap.before] - starts[gap.after + 1])
        if self.ranking == "doa":
            return idle
        if self.ranking == "aoa":
            return idle * gap.size
        steps = np.arange(swap.free_at, swap.load_at)
        over = np.minimum(gap.size, np.maximum(load[steps] - sp.budget, 0))
        return float(np.sum(np.asarray(sp.step_seconds)[steps] * over))
