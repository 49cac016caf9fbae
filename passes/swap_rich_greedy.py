"""Rich recomputation on top of hidden swaps, greedily (part of "ours" when SwapProblem.rich).

Why: at half the memory the copy engines are full; the covering models (swap_cover,
swap_rich) either price swaps by a weight that misses their queueing, or model the
engines and then find nothing in seconds on hundreds of steps. So, in two stages:
1. swaps the engines hide: the plain covering model at a budget lifted part of the way
   to the peak (LIFT; where swaps alone nearly hide), its best by the simulator;
2. from there down to the budget, greedily: at each round, among the candidates that
   cover an over-budget step and do not clash with what is chosen (one event per gap,
   inputs not away where a recompute or a rebuild runs), take the one that removes the
   most excess (bytes over the budget, summed over steps) per second: of kernels for a
   rich recompute, of simulated stall added for a swap (hidden or boundary), lazily
   (scores kept in a heap, the top one scored again before it is taken). A recompute's
   input dead where it runs is rebuilt there if its producer can run (its own inputs in
   turn, up to MAX_CHAIN deep) and extended through it otherwise, unless already kept
   there. Until the load fits or nothing helps; past the deadline, without simulating
   (a swap is then priced at its copy time at the boundary, a twentieth of it hidden).
The greedy may start from any valid schedule, rebuilds and extends included (swap_rich_first
starts it from its recomputes); `recompute_chains` and `with_recomputes` give that construction
the same chain resolution as the greedy's.
Every result goes through the exact simulator and the validator in the caller.
"""

from __future__ import annotations

import heapq
import time
from dataclasses import replace

import numpy as np

from graphopt.plan.swap import (
    Extend,
    Rebuild,
    Recompute,
    Swap,
    SwapProblem,
    SwapSchedule,
    base_live_bytes,
    conflict,
    live_bytes,
    simulate,
)

LIFT = 0.75  # stage 1 plans for budget + LIFT x (peak - budget)
MAX_CHAIN = 3
MAX_ROUNDS = 400


class _Chosen:
    """The schedule under construction and its load profile."""

    def __init__(self, sp: SwapProblem, start: SwapSchedule) -> None:
        self.sp, self.swaps, self.recomputes = sp, list(start.swaps), list(start.recomputes)
        self.rebuilds: set[tuple[int, int]] = {(r.buffer, r.at) for r in start.rebuilds}
        self.extends: dict[int, int] = {e.buffer: e.to for e in start.extends}
        self.ends = {b.id: b.end for b in sp.problem.buffers}
        self.load = self._load(self.recomputes, self.rebuilds, self.extends)
        self.stall = self.simulated()
        self.blocked: set = set()  # candidates that clash with what is chosen (kept up to date by `block`)

    def block(self, chosen, candidates, rebuilds=()) -> None:
        """Marks the candidates that clash with a newly chosen event or newly chosen rebuilds."""
        for c in candidates:
            if c in self.blocked:
                continue
            if (chosen is not None and conflict(self.sp, chosen, c)) or any(
                    c.buffer in self.sp.recompute_inputs.get(j, ()) and c.after < t < c.before for j, t in rebuilds):
                self.blocked.add(c)

    def _load(self, recomputes, rebuilds, extends) -> np.ndarray:
        return live_bytes(self.sp, self.swaps, recomputes, tuple(Rebuild(i, t) for i, t in rebuilds),
                          tuple(Extend(i, t) for i, t in extends.items()))

    def simulated(self, extra: Swap | None = None) -> float:
        """The simulated stall of the schedule so far (plus one more swap)."""
        swaps = self.swaps + ([extra] if extra is not None else [])
        return simulate(self.sp, swaps, self.recomputes, rebuilds=tuple(Rebuild(i, t) for i, t in self.rebuilds)).stall

    def with_event(self, r: Recompute, rebuilds: set, extends: dict) -> np.ndarray:
        """The load with `r` added and the chain state (`rebuilds`, `extends`) in place of the current."""
        sizes, load = self.sp.sizes(), self.load.copy()
        load[r.free_at:r.load_at] -= sizes[r.buffer]
        for i, t in rebuilds - self.rebuilds:
            load[t] += sizes[i]
        for i, to in extends.items():
            was = self.extends.get(i, self.ends[i] - 1)
            if to > was:
                load[was + 1:to + 1] += sizes[i]
        return load

    def kept(self, buffer: int, step: int, rebuilds: set, extends: dict) -> bool:
        return extends.get(buffer, -1) >= step or (buffer, step) in rebuilds

    def resolve(self, buffer: int, step: int, rebuilds: set, extends: dict, depth: int = 0) -> float | None:
        """Makes every input of `buffer`'s producer resident at `step` (in place); the kernel
        seconds that adds, or None when an input is away there."""
        seconds = 0.0
        for i in self.sp.recompute_inputs.get(buffer, ()):
            if step < self.ends[i]:
                if any(e.buffer == i and e.after < step < e.before for e in (*self.swaps, *self.recomputes)):
                    return None
                continue
            if self.kept(i, step, rebuilds, extends):
                continue
            if i in self.sp.recompute_inputs and depth < MAX_CHAIN:
                trial_r, trial_e = set(rebuilds) | {(i, step)}, dict(extends)
                more = self.resolve(i, step, trial_r, trial_e, depth + 1)
                if more is not None:
                    rebuilds |= trial_r
                    extends.update(trial_e)
                    seconds += self.sp.recompute_seconds(i) + more
                    continue
            extends[i] = max(extends.get(i, step), step)
        return seconds

    def take(self, c, payload, candidates) -> None:
        """Adds candidate `c` with what scoring it computed; blocks what now clashes."""
        if isinstance(c, Swap):
            self.swaps.append(c)
            self.load, self.stall = payload
            self.block(c, candidates)
            return
        load, rebuilds, extends = payload
        self.recomputes.append(c)
        self.block(c, candidates, rebuilds - self.rebuilds)
        self.rebuilds, self.extends, self.load = rebuilds, extends, load
        self.stall = self.simulated()

    def schedule(self, name: str) -> SwapSchedule:
        rebuilds = {(i, t) for i, t in self.rebuilds if self.extends.get(i, -1) < t}
        return SwapSchedule(tuple(self.swaps), name, recomputes=tuple(self.recomputes),
                            rebuilds=tuple(Rebuild(i, t) for i, t in sorted(rebuilds)),
                            extends=tuple(Extend(i, t) for i, t in sorted(self.extends.items())))


def staged_schedule(sp: SwapProblem, cover_seconds: float, deadline: float, workers: int = 2) -> SwapSchedule | None:
    """Stage 1 (plain covering model at the lifted budget, best simulated stall), then stage 2
    (rich_greedy) down to the budget, until `deadline` (time.perf_counter)."""
    from graphopt.passes.swap_cover import cover_schedules
    from graphopt.passes.swap_rich import rich_recompute_events, rich_swap_events
    from graphopt.plan.swap_validator import validate_swaps

    base = base_live_bytes(sp.problem, sp.num_steps)
    over = [k for k in range(sp.num_steps) if base[k] > sp.budget]
    if not over:
        return None
    upper = replace(sp, budget=int(sp.budget + LIFT * (int(base.max()) - sp.budget)), rich=False)
    reports = [(validate_swaps(upper, c), c) for c in cover_schedules(upper, cover_seconds, workers)]
    start = min(((r.stall, c) for r, c in reports if r.valid), key=lambda rc: rc[0],
                default=(0.0, SwapSchedule((), "empty")))[1]
    recomputes = [r for r, _ in rich_recompute_events(sp, over)]
    return rich_greedy(sp, start, recomputes, [s for s, _ in rich_swap_events(sp, over)], deadline)


def rich_greedy(sp: SwapProblem, start: SwapSchedule, candidates: list[Recompute],
                swaps: list[Swap] = (), deadline: float = float("inf")) -> SwapSchedule | None:
    """`start` plus greedy rich recomputes from `candidates` (and `swaps`, priced by the simulated
    stall they add; past `deadline` by their copy time) until the load fits; None if it cannot.

    Lazy greedy: a heap of scores last computed; the top is scored again against the current
    state and taken if it still leads (scores mostly only fall as the excess shrinks)."""
    state = _Chosen(sp, start)
    everything = [*candidates, *swaps]
    for e in (*start.swaps, *start.recomputes):
        state.block(e, everything)
    state.block(None, everything, state.rebuilds)
    heap = []
    for n, c in enumerate(everything):
        found = _score(state, c, simulate_swaps=False)
        if found is not None:
            heap.append((-found[0], n))
    heapq.heapify(heap)
    for _ in range(MAX_ROUNDS * 8):
        if not (state.load > sp.budget).any():
            return state.schedule(f"{start.planner}+rich-greedy")
        if not heap:
            return None
        _bound, n = heapq.heappop(heap)
        found = _score(state, everything[n], simulate_swaps=time.perf_counter() < deadline)
        if found is None:
            continue
        if heap and found[0] < -heap[0][0]:
            heapq.heappush(heap, (-found[0], n))
            continue
        state.take(everything[n], found[1], everything)
    return None


def _score(state: _Chosen, c, simulate_swaps: bool):
    """(excess removed per second, what taking it sets) of candidate `c`, or None (clash or no gain)."""
    sp = state.sp
    if c in state.blocked or not (state.load[c.free_at:c.load_at] > sp.budget).any():
        return None
    area = float(np.maximum(state.load - sp.budget, 0).sum())
    if isinstance(c, Swap):
        load = state.load.copy()
        load[c.free_at:c.load_at] -= sp.sizes()[c.buffer]
        copy = sp.copy_seconds(c.buffer)
        stall = state.simulated(extra=c) if simulate_swaps else state.stall + (copy if c.load_at == c.before else 0.0)
        gain = area - float(np.maximum(load - sp.budget, 0).sum())
        return (gain / max(stall - state.stall, 0.05 * copy), (load, stall)) if gain > 0 else None
    rebuilds, extends = set(state.rebuilds), dict(state.extends)
    extra = state.resolve(c.buffer, c.before, rebuilds, extends)
    if extra is None:
        return None
    load = state.with_event(c, rebuilds, extends)
    gain = area - float(np.maximum(load - sp.budget, 0).sum())
    seconds = sp.recompute_seconds(c.buffer) + extra
    return (gain / max(seconds, 1e-9), (load, rebuilds, extends)) if gain > 0 else None


def recompute_chains(sp: SwapProblem, recomputes: list[Recompute]) -> list[tuple[float, set, dict] | None]:
    """Per recompute, (kernel seconds, rebuilds, extends) it takes on its own: its producer, and its
    dead inputs rebuilt in turn (or extended) as the greedy resolves them; None if an input is away."""
    state, out = _Chosen(sp, SwapSchedule((), "empty")), []
    for r in recomputes:
        rebuilds, extends = set(), {}
        extra = state.resolve(r.buffer, r.before, rebuilds, extends)
        out.append(None if extra is None else (sp.recompute_seconds(r.buffer) + extra, rebuilds, extends))
    return out


def with_recomputes(sp: SwapProblem, start: SwapSchedule, recomputes: list[Recompute]) -> SwapSchedule:
    """`start` plus each of `recomputes` in turn, its chain resolved against what is chosen; one that
    clashes with what is chosen (or has an input away) is left out."""
    state = _Chosen(sp, start)
    state.block(None, recomputes, state.rebuilds)
    for e in (*start.swaps, *start.recomputes):
        state.block(e, recomputes)
    for r in recomputes:
        if r in state.blocked:
            continue
        rebuilds, extends = set(state.rebuilds), dict(state.extends)
        if state.resolve(r.buffer, r.before, rebuilds, extends) is None:
            continue
        state.take(r, (state.with_event(r, rebuilds, extends), rebuilds, extends), recomputes)
    return state.schedule(start.planner)

