"""Recomputation only, greedy by memory saved per second (a baseline, after Chen et al.
2016 and the greedy heuristics Checkmate compares against).

At the current peak, among recomputable buffers idle across it whose producer's
inputs are still live where the buffer is needed again, drop the one with the
most bytes per second of producer time; repeat until the load fits. No copies:
what it shows is how far recomputation alone goes and what it costs.
"""

from __future__ import annotations

import time

import numpy as np

from graphopt.passes.swap_singa import InfeasibleBudget
from graphopt.plan.swap import Recompute, SwapProblem, SwapSchedule, compatible, live_bytes


class RecomputeGreedy:
    name = "recompute-greedy"

    def plan(self, sp: SwapProblem, time_limit: float = 10.0) -> SwapSchedule:
        began = time.perf_counter()
        options = [Recompute(g.buffer, g.after, g.before) for g in sp.recompute_gaps()]
        sizes = sp.sizes()
        chosen: list[Recompute] = []
        load = live_bytes(sp, (), chosen)
        while load.max(initial=0) > sp.budget:
            peak = int(np.argmax(load))
            fits = [r for r in options if r.free_at <= peak < r.load_at and compatible(sp, (), chosen, r)]
            if not fits:
                raise InfeasibleBudget(f"{self.name}: nothing recomputable covers the peak at step {peak}")
            chosen.append(max(fits, key=lambda r: (sizes[r.buffer] / max(sp.recompute_seconds(r.buffer), 1e-12),
                                                   -r.buffer)))
            load = live_bytes(sp, (), chosen)
        return SwapSchedule((), self.name, time.perf_counter() - began, recomputes=tuple(chosen))
