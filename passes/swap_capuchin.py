"""Capuchin-style hybrid of swapping and recomputation (Peng et al., ASPLOS 2020), a baseline.

Design, following the paper's policy in this step model:
1. Work at the current peak step until the load fits the limit.
2. Among idle gaps covering the peak, prefer a swap whose copies hide in the
   gap (out as early, in as late as the nominal timeline allows), the one with
   the most free time (idle time minus both copies) first: it costs nothing.
3. When no swap hides, take the candidate, a swap taken whole or a
   recomputation, with the most memory saved per second of overhead (MSPS):
   a whole-gap swap costs the copy time its gap cannot hide, a recomputation
   the producer kernel's time.
Recomputation here never extends an input's lifetime (the producer's inputs
must still be live), so it has no memory cost of its own.
"""

from __future__ import annotations

import time

import numpy as np

from graphopt.passes.swap_singa import InfeasibleBudget, early_late
from graphopt.plan.swap import Gap, Recompute, Swap, SwapProblem, SwapSchedule, compatible, live_bytes


class Capuchin:
    name = "capuchin"

    def plan(self, sp: SwapProblem, time_limit: float = 10.0) -> SwapSchedule:
        began = time.perf_counter()
        starts = sp.nominal_starts()
        options = _swap_options(sp, starts) + _recompute_options(sp)
        swaps: list[Swap] = []
        recomputes: list[Recompute] = []
        load = live_bytes(sp, swaps, recomputes)
        while load.max(initial=0) > sp.budget:
            peak = int(np.argmax(load))
            fits = [o for o in options
                    if o[1].free_at <= peak < o[1].load_at and compatible(sp, swaps, recomputes, o[1])]
            if not fits:
                raise InfeasibleBudget(f"{self.name}: nothing idle covers the peak at step {peak}")
            hidden = [o for o in fits if o[2] <= 0]
            if hidden:
                _gap, event, _cost = min(hidden, key=lambda o: (o[2], o[1].buffer))
            else:
                _gap, event, _cost = max(fits, key=lambda o: (o[0].size / o[2], -o[1].buffer))
            (recomputes if isinstance(event, Recompute) else swaps).append(event)
            load = live_bytes(sp, swaps, recomputes)
        return SwapSchedule(tuple(swaps), self.name, time.perf_counter() - began, recomputes=tuple(recomputes))


def _swap_options(sp: SwapProblem, starts: np.ndarray) -> list[tuple[Gap, Swap, float]]:
    """(gap, swap, cost): cost <= 0 is minus the free time of a hidden swap; > 0 the unhidden copy time."""
    out = []
    for gap in sp.gaps():
        copy = sp.copy_seconds(gap.buffer)
        idle = float(starts[gap.before] - starts[gap.after + 1])
        free_at, load_at = early_late(sp, gap, starts)
        if free_at < load_at:
            out.append((gap, Swap(gap.buffer, gap.after, free_at, load_at, gap.before), -(idle - 2 * copy)))
        else:
            out.append((gap, Swap(gap.buffer, gap.after, gap.after + 1, gap.before - 1, gap.before),
                        max(2 * copy - idle, 1e-12)))
    return out


def _recompute_options(sp: SwapProblem) -> list[tuple[Gap, Recompute, float]]:
    return [(g, Recompute(g.buffer, g.after, g.before), max(sp.recompute_seconds(g.buffer), 1e-12))
            for g in sp.recompute_gaps()]
