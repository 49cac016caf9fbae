"""Swap planning data model, its timing simulator and its validator (no TVM).

Model (steps are the kernels of the execution order, 0..n-1):
* A buffer is used (written or read) at the steps in `uses[id]`. Between two
  consecutive uses `after` < `before` it is idle; a `Swap` moves it to host
  during that gap: the copy-out is issued when step `after` ends, its device
  range is free from step `free_at` on (the copy-out must have finished when
  step `free_at` starts), the range is taken again at step `load_at`, where the
  copy-in is issued (it may start only once the copy-out is done), and the
  copy-in must finish before step `before` starts.
  So the buffer is absent during steps [free_at, load_at), and
  after < free_at < load_at < before.
* Each direction has ONE copy engine executing its copies in issue order
  (a CUDA stream per direction): copy-outs in order of `after`, copy-ins in
  order of `load_at`.
* A step waits for whatever it needs (a copy-in due, a copy-out whose range it
  reuses); the waiting is the stall. `simulate` computes it exactly for this
  model; every planner is judged by it, never by its own estimate.
* Placement runs on the split lifetimes (`split_problem`): a swapped buffer is
  one buffer per resident segment, and its later segments may land elsewhere.
* A `Recompute` drops a buffer after its use `after` and rebuilds it just
  before step `before` by running its producing kernel again (absent during
  [after + 1, before)). It needs no copy engine, but the kernel's time is added
  to step `before`, and every buffer the kernel reads must be resident then:
  live at `before` and not inside any of its own swap or recompute gaps.
* The rich model (`SwapProblem(rich=True)`, graphopt.plan.swap_rich) adds: a
  copy-in may complete at the step boundary (`load_at == before`: issued when
  step before-1 ends, step `before` waits for it, the wait counted as stall), so
  idle gaps of 2 steps can be swapped; `Extend(buffer, to)` keeps a buffer past
  its last use, through step `to`; `Rebuild(buffer, at)` runs the producer of a
  dead buffer again just before step `at` and frees it after that step (a
  one-step slot, so a recompute may read it: chained recomputation). A
  recompute's input dead at `before` must then be extended or rebuilt there, in
  turn with its own inputs resident (rebuilds run in birth order).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from graphopt.analysis.cost import LinkModel
from graphopt.plan.problem import Buffer, MemoryProblem

MIN_GAP = 3  # before - after: room for free_at < load_at strictly inside the gap


@dataclass(frozen=True)
class Swap:
    buffer: int
    after: int
    free_at: int
    load_at: int
    before: int


@dataclass(frozen=True)
class Recompute:
    """Drop `buffer` after step `after`, rebuild it with its producer before step `before`."""

    buffer: int
    after: int
    before: int

    @property
    def free_at(self) -> int:
        return self.after + 1

    @property
    def load_at(self) -> int:
        return self.before


@dataclass(frozen=True)
class Rebuild:
    """Run the producer of `buffer`, dead by then, again just before step `at`; it is
    resident during step `at` only (rich model: an input of a chained recompute)."""

    buffer: int
    at: int


@dataclass(frozen=True)
class Extend:
    """Keep `buffer` resident past its last use, through step `to` (rich model)."""

    buffer: int
    to: int


@dataclass(frozen=True)
class Gap:
    """An idle interval of one buffer between two consecutive uses."""

    buffer: int
    after: int
    before: int
    size: int


@dataclass(frozen=True)
class SwapProblem:
    """A MemoryProblem plus uses, step times, the link and the budget (bytes of arena)."""

    problem: MemoryProblem
    uses: dict[int, tuple[int, ...]]
    step_seconds: tuple[float, ...]
    budget: int
    link: LinkModel = field(default_factory=LinkModel)
    swappable: frozenset = frozenset()  # empty: every buffer
    recompute_inputs: dict = field(default_factory=dict)  # buffer -> arena buffers its producer reads
    rich: bool = False  # the rich model of the module docstring: boundary copy-ins, Extend, Rebuild

    def __post_init__(self) -> None:
        if len(self.step_seconds) < self.problem.num_steps:
            raise ValueError(f"{len(self.step_seconds)} step times for {self.problem.num_steps} steps")

    @property
    def num_steps(self) -> int:
        return len(self.step_seconds)

    @cached_property
    def _sizes(self) -> dict[int, int]:
        return {b.id: b.size for b in self.problem.buffers}

    @cached_property
    def _births(self) -> dict[int, int]:
        return {b.id: b.start for b in self.problem.buffers}

    def sizes(self) -> dict[int, int]:
        """Buffer id -> bytes (built once per problem; callers must not modify it)."""
        return self._sizes

    def copy_seconds(self, buffer: int) -> float:
        return self.link.copy_seconds(self._sizes[buffer])

    def _idle(self, b: Buffer, shortest: int) -> list[Gap]:
        """The intervals between consecutive uses (birth included) of `b`, at least `shortest` steps long."""
        steps = sorted(set(self.uses.get(b.id, ())) | {b.start})
        return [Gap(b.id, u, v, b.size) for u, v in itertools.pairwise(steps) if v - u >= shortest]

    def gaps(self) -> list[Gap]:
        """Every idle interval long enough to swap, of every swappable buffer."""
        return [g for b in self.problem.buffers if not self.swappable or b.id in self.swappable
                for g in self._idle(b, MIN_GAP)]

    def recompute_gaps(self) -> list[Gap]:
        """Idle intervals of recomputable buffers, with a step inside, whose producer's
        inputs are all still live where the buffer is rebuilt."""
        bounds = {b.id: (b.start, b.end) for b in self.problem.buffers}
        out = []
        for b in self.problem.buffers:
            inputs = self.recompute_inputs.get(b.id)
            if inputs is not None:
                out += [g for g in self._idle(b, 2) if all(bounds[i][0] <= g.before < bounds[i][1] for i in inputs)]
        return out

    def recompute_seconds(self, buffer: int) -> float:
        """The producer's time: the step at which the buffer is born."""
        return float(self.step_seconds[self._births[buffer]])

    def nominal_starts(self) -> np.ndarray:
        """Start time of every step without stalls; entry n is the step's end."""
        return np.concatenate([[0.0], np.cumsum(self.step_seconds)])


@dataclass(frozen=True)
class SwapSchedule:
    swaps: tuple[Swap, ...]
    planner: str
    seconds: float = 0.0
    meta: dict = field(default_factory=dict, compare=False, hash=False)
    recomputes: tuple[Recompute, ...] = ()
    rebuilds: tuple[Rebuild, ...] = ()  # rich model only
    extends: tuple[Extend, ...] = ()  # rich model only


@dataclass(frozen=True)
class Timeline:
    """Simulated execution: step starts, copy intervals per swap, totals."""

    step_start: tuple[float, ...]
    out_copy: dict[Swap, tuple[float, float]]
    in_copy: dict[Swap, tuple[float, float]]
    total: float
    stall: float


def absent_bytes(sp: SwapProblem, swaps, recomputes=()) -> np.ndarray:
    """Bytes absent from the device at each step because of `swaps` and `recomputes`."""
    sizes = sp.sizes()
    out = np.zeros(sp.num_steps, dtype=np.int64)
    for s in (*swaps, *recomputes):
        out[s.free_at:s.load_at] += sizes[s.buffer]
    return out


def base_live_bytes(problem: MemoryProblem, num_steps: int) -> np.ndarray:
    """Bytes live at each step with no swap: the lower-bound profile."""
    delta = np.zeros(num_steps + 1, dtype=np.int64)
    for b in problem.buffers:
        delta[b.start] += b.size
        delta[b.end] -= b.size
    return np.cumsum(delta)[:num_steps]


def extra_bytes(sp: SwapProblem, rebuilds=(), extends=()) -> np.ndarray:
    """Bytes resident at each step beyond the no-swap lifetimes: extended and rebuilt buffers."""
    sizes, ends = sp.sizes(), {b.id: b.end for b in sp.problem.buffers}
    out = np.zeros(sp.num_steps, dtype=np.int64)
    for e in extends:
        out[ends[e.buffer]:e.to + 1] += sizes[e.buffer]
    for r in rebuilds:
        out[r.at] += sizes[r.buffer]
    return out


def live_bytes(sp: SwapProblem, swaps, recomputes=(), rebuilds=(), extends=()) -> np.ndarray:
    live = base_live_bytes(sp.problem, sp.num_steps) - absent_bytes(sp, swaps, recomputes)
    return live + extra_bytes(sp, rebuilds, extends) if rebuilds or extends else live


def step_durations(sp: SwapProblem, recomputes=(), rebuilds=()) -> np.ndarray:
    """Each step's time with the recompute (and rebuild) kernels that run just before it."""
    c = np.asarray(sp.step_seconds, dtype=float).copy()
    for r in recomputes:
        c[r.before] += sp.recompute_seconds(r.buffer)
    for r in rebuilds:
        c[r.at] += sp.recompute_seconds(r.buffer)
    return c


def simulate(sp: SwapProblem, swaps, recomputes=(), durations=None, copy_time=None, rebuilds=()) -> Timeline:
    """Runs the step/copy model of the module docstring; FIFO per copy engine.
    The stall reported is the whole overhead: copy waits plus recompute time.
    `durations` (per step, recomputes included) and `copy_time(buffer)` replace
    the problem's own figures: CP-SAT re-runs it in its integer time units.
    A copy-in at the boundary (load_at == before) is issued when step before-1 has
    ended and the copy-outs step `before` reuses are done (the CUDA engine's copy
    stream waits for the compute stream, which waited for them); step `before` waits for it."""
    c = step_durations(sp, recomputes, rebuilds) if durations is None else durations
    copy_seconds = copy_time or sp.copy_seconds
    outs = sorted(swaps, key=lambda s: (s.after, s.buffer))
    ins = sorted(swaps, key=lambda s: (s.load_at, s.before, s.buffer))
    due_free: dict[int, list[Swap]] = {}
    due_use: dict[int, list[Swap]] = {}
    for s in swaps:
        due_free.setdefault(s.free_at, []).append(s)
        due_use.setdefault(s.before, []).append(s)
    out_copy: dict[Swap, tuple[float, float]] = {}
    in_copy: dict[Swap, tuple[float, float]] = {}
    starts, ends = [], []
    d2h = h2d = 0.0
    oi = ii = 0
    for k in range(sp.num_steps):
        while oi < len(outs) and outs[oi].after < k:  # issued when step `after` ended
            s = outs[oi]
            begin = max(ends[s.after], d2h)
            d2h = begin + copy_seconds(s.buffer)
            out_copy[s] = (begin, d2h)
            oi += 1
        ready = ends[-1] if ends else 0.0
        for s in due_free.get(k, ()):
            ready = max(ready, out_copy[s][1])
        while ii < len(ins) and ins[ii].load_at == ins[ii].before == k:  # boundary copy-ins come first
            h2d = _issue_in(ins[ii], ready, h2d, out_copy, in_copy, copy_seconds)
            ii += 1
        for s in due_use.get(k, ()):
            if s in in_copy:
                ready = max(ready, in_copy[s][1])
        starts.append(ready)
        while ii < len(ins) and ins[ii].load_at <= k:
            h2d = _issue_in(ins[ii], ready, h2d, out_copy, in_copy, copy_seconds)
            ii += 1
        ends.append(ready + c[k])
    total = ends[-1] if ends else 0.0
    nominal = float(np.sum(sp.step_seconds)) if durations is None else float(np.sum(durations))
    return Timeline(tuple(starts), out_copy, in_copy, total, total - nominal)


def _issue_in(s: Swap, ready: float, h2d: float, out_copy: dict, in_copy: dict, copy_seconds) -> float:
    """Queues the copy-in of `s` on the host-to-device engine at `ready`; returns when the engine is free."""
    begin = max(ready, h2d, out_copy[s][1] if s in out_copy else ready)
    in_copy[s] = (begin, begin + copy_seconds(s.buffer))
    return begin + copy_seconds(s.buffer)


def split_problem(sp: SwapProblem, swaps, recomputes=()) -> tuple[MemoryProblem, dict[int, tuple[int, int]]]:
    """The resident segments of every buffer as buffers; id -> (original id, segment index).

    Segment 0 keeps the original id; later segments get fresh ids after the largest one.
    """
    by_buffer: dict[int, list] = {}
    for s in (*swaps, *recomputes):
        by_buffer.setdefault(s.buffer, []).append(s)
    next_id = max((b.id for b in sp.problem.buffers), default=-1) + 1
    buffers, origin = [], {}
    for b in sp.problem.buffers:
        cuts = sorted(by_buffer.get(b.id, ()), key=lambda s: s.after)
        bounds = [b.start] + [x for s in cuts for x in (s.free_at, s.load_at)] + [b.end]
        for seg in range(len(bounds) // 2):
            bid = b.id if seg == 0 else next_id
            next_id += seg > 0
            buffers.append(Buffer(bid, bounds[2 * seg], bounds[2 * seg + 1], b.size, b.alignment,
                                  b.name if seg == 0 else f"{b.name}@{seg}"))
            origin[bid] = (b.id, seg)
    return MemoryProblem(tuple(buffers), sp.problem.num_steps, sp.problem.name), origin


def conflict(sp: SwapProblem, first, second) -> bool:
    """Can these two events (Swap, Recompute or Gap) not both be chosen? The rules the
    validator enforces: one event per idle gap of a buffer, and a recompute's inputs
    neither away where it runs nor sent away across that step."""
    if first.buffer == second.buffer and first.after < second.before and second.after < first.before:
        return True
    for a, b in ((first, second), (second, first)):
        if isinstance(b, Recompute) and a.buffer in sp.recompute_inputs.get(b.buffer, ()) \
                and a.after < b.before < a.before:
            return True
    return False


def compatible(sp: SwapProblem, swaps, recomputes, event) -> bool:
    """Can `event` join the chosen swaps and recomputes? (Planners stay inside the validator's rules.)"""
    return not any(conflict(sp, chosen, event) for chosen in (*swaps, *recomputes))


def hidden_swap_floor(sp: SwapProblem) -> int:
    """The least budget swaps alone could reach with no stall: at step k, the bytes away
    must have been copied out since the step began (one engine, from time 0 at best)
    and must be copied back after it ends, so at most bandwidth x min(time before k,
    time after k) bytes can be away. A necessary condition, not a plan: below this
    floor any schedule without recomputation stalls."""
    base = base_live_bytes(sp.problem, sp.num_steps)
    starts = sp.nominal_starts()
    total = starts[-1]
    room = np.minimum(starts[:-1], total - starts[1:]) * sp.link.bandwidth
    return int(np.max(base - np.floor(room)).clip(min=0))
