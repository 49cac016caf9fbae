"""Turning chosen events into a schedule the swap validator accepts, and polishing it (no TVM).

Why a module: LP rounding (passes/swap_lp_round.py) picks recomputes and swaps by their
fractional values; what makes them a schedule is the same bookkeeping every time:
1. `assemble`: events in priority order, each kept only if it fits what is kept so far:
   one event per idle gap of a buffer; a recompute's inputs resident where it runs: a
   live input must not be away there (it is "read" at that step), a dead one (rich model
   only) is rebuilt there if `prefer_rebuild(input, step)` says so and its producer can
   run (its own inputs resident in turn, up to MAX_CHAIN deep), else extended through
   the step; no event may take away a buffer a kept chain reads inside its gap.
2. `pruned`: drops events, dearest first, whose removal keeps every step within the
   budget (decisions that cost time but free nothing needed); the chains are assembled
   again from what is left, with the rebuild choices the schedule had.
3. `retimed`: local search (the best move of each swap in turn) on each swap's free_at and load_at while
   the simulated overhead drops and the load stays within the budget (on the 6-layer
   transformer at half the peak it took a rounded schedule from 15.4% to 6.8%);
4. `polished`: 2 then 3 again while they still gain (a retimed swap may free a step
   another event was kept for). Work is bounded by rounds, not by the clock, so a rerun
   gives the same schedule; the deadline is only a guard.
Every result still goes to the validator in the caller; nothing here is trusted.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from graphopt.plan.swap import Extend, Rebuild, Recompute, Swap, SwapProblem, SwapSchedule, live_bytes, simulate

MAX_CHAIN = 3  # rebuilds in turn below a recompute
RETIME_TRIES = 8  # free_at / load_at values tried per swap and round
RETIME_ROUNDS = 6
NUDGES = (-2, -1, 1, 2)  # small moves tried besides the spread ones
POLISH_ROUNDS = 2


class _Draft:
    """Events kept so far, their chains, and the (buffer, step) pairs those chains read live."""

    def __init__(self, sp: SwapProblem, prefer_rebuild: Callable[[int, int], bool]) -> None:
        self.sp, self.prefer = sp, prefer_rebuild
        self.starts = {b.id: b.start for b in sp.problem.buffers}
        self.ends = {b.id: b.end for b in sp.problem.buffers}
        self.events: dict[int, list] = {}
        self.recomputes: list[Recompute] = []
        self.swaps: list[Swap] = []
        self.extends: dict[int, int] = {}
        self.rebuilds: set[tuple[int, int]] = set()
        self.reads: set[tuple[int, int]] = set()

    def clashes(self, e) -> bool:
        """One event per idle gap; not away where a kept chain reads it."""
        if any(e.after < o.before and o.after < e.before for o in self.events.get(e.buffer, ())):
            return True
        return any((e.buffer, t) in self.reads for t in range(e.after + 1, e.before))

    def add_swap(self, s: Swap) -> bool:
        if self.clashes(s):
            return False
        self.swaps.append(s)
        self.events.setdefault(s.buffer, []).append(s)
        return True

    def add_recompute(self, r: Recompute) -> bool:
        """Keeps `r` with its chain if nothing clashes; the draft is unchanged otherwise."""
        if self.clashes(r):
            return False
        extends, rebuilds, reads = dict(self.extends), set(self.rebuilds), set()
        if not self._need(r.buffer, r.before, 0, extends, rebuilds, reads):
            return False
        if any(e.after < t < e.before for i, t in reads for e in self.events.get(i, ())):
            return False
        if any(r.buffer == i and r.after < t < r.before for i, t in reads):
            return False
        self.recomputes.append(r)
        self.events.setdefault(r.buffer, []).append(r)
        self.extends, self.rebuilds, self.reads = extends, rebuilds, self.reads | reads
        return True

    def _need(self, buffer: int, t: int, depth: int, extends: dict, rebuilds: set, reads: set) -> bool:
        """Step 1 of the module docstring for the inputs of `buffer`'s producer at step t (in place)."""
        for i in self.sp.recompute_inputs.get(buffer, ()):
            if self.starts[i] <= t < self.ends[i]:
                reads.add((i, t))
                continue
            if not self.sp.rich:
                return False
            if extends.get(i, -1) >= t or (i, t) in rebuilds:
                continue
            if i in self.sp.recompute_inputs and depth < MAX_CHAIN and self.prefer(i, t):
                trial_e, trial_r, trial_reads = dict(extends), rebuilds | {(i, t)}, set(reads)
                if self._need(i, t, depth + 1, trial_e, trial_r, trial_reads):
                    extends.update(trial_e)
                    rebuilds |= trial_r
                    reads |= trial_reads
                    continue
            extends[i] = max(extends.get(i, t), t)
        return True

    def schedule(self, name: str) -> SwapSchedule:
        rebuilds = sorted((i, t) for i, t in self.rebuilds if self.extends.get(i, -1) < t)
        return SwapSchedule(tuple(self.swaps), name, recomputes=tuple(self.recomputes),
                            rebuilds=tuple(Rebuild(i, t) for i, t in rebuilds),
                            extends=tuple(Extend(i, to) for i, to in sorted(self.extends.items())))


def assemble(sp: SwapProblem, recomputes: list[Recompute], swaps: list[Swap],
             prefer_rebuild: Callable[[int, int], bool], name: str) -> tuple[SwapSchedule, int]:
    """Step 1: (the schedule, how many of the events were left out as clashing), recomputes first."""
    draft, dropped = _Draft(sp, prefer_rebuild), 0
    for r in recomputes:
        dropped += not draft.add_recompute(r)
    for s in swaps:
        dropped += not draft.add_swap(s)
    return draft.schedule(name), dropped


def compatible_swaps(sp: SwapProblem, schedule: SwapSchedule, swaps: list[Swap]) -> list[Swap]:
    """The swaps that would not clash with the recomputes (and their chains) of `schedule`."""
    rebuilt = {(r.buffer, r.at) for r in schedule.rebuilds}
    draft = _Draft(sp, lambda i, t: (i, t) in rebuilt)
    for r in schedule.recomputes:
        draft.add_recompute(r)
    return [s for s in swaps if not draft.clashes(s)]


def fits(sp: SwapProblem, schedule: SwapSchedule) -> bool:
    load = live_bytes(sp, schedule.swaps, schedule.recomputes, schedule.rebuilds, schedule.extends)
    return not (load > sp.budget).any()


def overhead(sp: SwapProblem, schedule: SwapSchedule) -> float:
    return simulate(sp, schedule.swaps, schedule.recomputes, rebuilds=schedule.rebuilds).stall


def pruned(sp: SwapProblem, schedule: SwapSchedule, deadline: float = float("inf")) -> SwapSchedule:
    """Step 2 of the module docstring (until `deadline`, time.perf_counter)."""
    rebuilt = {(r.buffer, r.at) for r in schedule.rebuilds}

    def prefer(i: int, t: int) -> bool:
        return (i, t) in rebuilt

    def cost(e) -> float:
        return sp.recompute_seconds(e.buffer) if isinstance(e, Recompute) else sp.copy_seconds(e.buffer)

    recomputes, swaps = list(schedule.recomputes), list(schedule.swaps)
    for e in sorted((*recomputes, *swaps), key=cost, reverse=True):
        if time.perf_counter() > deadline:
            break
        trial_r = [r for r in recomputes if r != e]
        trial_s = [s for s in swaps if s != e]
        trial, dropped = assemble(sp, trial_r, trial_s, prefer, schedule.planner)
        if dropped == 0 and fits(sp, trial):
            recomputes, swaps = trial_r, trial_s
    return assemble(sp, recomputes, swaps, prefer, schedule.planner)[0]


def retimed(sp: SwapProblem, schedule: SwapSchedule, deadline: float, rounds: int = RETIME_ROUNDS) -> SwapSchedule:
    """Step 3 of the module docstring. A move of swap n is within the budget iff its absence
    covers every step the load without swap n exceeds it at (checked in O(1))."""
    swaps, stall = list(schedule.swaps), overhead(sp, schedule)
    rest = (schedule.recomputes, schedule.rebuilds, schedule.extends)
    load, sizes = live_bytes(sp, swaps, *rest), sp.sizes()
    for _ in range(rounds):
        improved = False
        for n in range(len(swaps)):
            if time.perf_counter() > deadline:
                return _with_swaps(schedule, swaps)
            s = swaps[n]
            without = load.copy()
            without[s.free_at:s.load_at] += sizes[s.buffer]
            must = np.flatnonzero(without > sp.budget)
            best = None
            for move in sorted(_moves(sp, s), key=lambda m: (m.free_at, m.load_at)):
                if must.size and not (move.free_at <= must[0] and must[-1] < move.load_at):
                    continue
                trial = swaps[:n] + [move] + swaps[n + 1:]
                t = simulate(sp, trial, rest[0], rebuilds=rest[1]).stall
                if t < stall - 1e-12 and (best is None or t < best[0]):
                    best = (t, trial, move)
            if best is not None:
                stall, swaps, s = best
                improved = True
            load = without
            load[s.free_at:s.load_at] -= sizes[s.buffer]
        if not improved:
            break
    return _with_swaps(schedule, swaps)


def _moves(sp: SwapProblem, s: Swap) -> set[Swap]:
    """Other timings of `s` on its gap: free_at moved, or load_at moved (the validator's ranges)."""
    last = s.before if sp.rich else s.before - 1
    frees = {*np.linspace(s.after + 1, s.load_at - 1, RETIME_TRIES).astype(int), *(s.free_at + d for d in NUDGES)}
    loads = {*np.linspace(s.free_at + 1, last, RETIME_TRIES).astype(int), *(s.load_at + d for d in NUDGES)}
    moves = {Swap(s.buffer, s.after, int(f), s.load_at, s.before) for f in frees if s.after < f < s.load_at}
    moves |= {Swap(s.buffer, s.after, s.free_at, int(ld), s.before) for ld in loads if s.free_at < ld <= last}
    return moves - {s}


def _with_swaps(schedule: SwapSchedule, swaps: list[Swap]) -> SwapSchedule:
    return SwapSchedule(tuple(swaps), schedule.planner, schedule.seconds, schedule.meta, schedule.recomputes,
                        schedule.rebuilds, schedule.extends)


def polished(sp: SwapProblem, schedule: SwapSchedule, deadline: float = float("inf")) -> SwapSchedule:
    """Step 4 of the module docstring."""
    stall = overhead(sp, schedule)
    for _ in range(POLISH_ROUNDS):
        trial = retimed(sp, pruned(sp, schedule, deadline), deadline)
        trial_stall = overhead(sp, trial)
        if trial_stall >= stall - 1e-12:
            break
        schedule, stall = trial, trial_stall
    return schedule
