"""The least budget any swap + recompute schedule can reach, and why no lower one works (no TVM).

At step k a buffer can be away only inside one of its candidate gaps (graphopt.plan.swap):
a swap gap keeps it away on steps after+1 .. before-2 (its copy-in must be done before
step `before`, so it is issued at `before - 1` at the latest), a recompute gap on
after+1 .. before-1. So at step k at most the bytes of buffers with a gap covering k can
be away, and

    floor = max over k of ( live(k) - sum of sizes of the buffers coverable at k ).

No schedule the validator accepts has a peak below `floor` (a necessary condition). It
is where the overhead bound's LP without chain rows (graphopt.plan.swap_bound,
`chains=False`) turns infeasible: its memory rows ask, per step, for the same coverable
bytes; the default LP, with chain rows, may turn infeasible higher up, where the floor is
not reached. It is not always reached: a recompute
needs its producer's inputs resident when it runs, which may clash with their own gaps,
so `--memory-budget min` searches upward from it (graphopt.train.budget). The step where
the maximum is reached is the binding step, and the buffers live there that no gap covers
are what must be resident; each gets the reason the model gives it, which is what a user
needs to decide what to change.
Under the rich model (SwapProblem.rich) a swap may be away on after+1 .. before-1 (its
copy-in may end at the boundary) on any idle gap of 2+ steps, and every idle gap of a
recomputable buffer is a candidate (its dead inputs extended or rebuilt: their bytes
are ignored, so this floor is still a necessary condition, only looser).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from graphopt.plan.swap import Gap, SwapProblem, base_live_bytes


@dataclass(frozen=True)
class Resident:
    """A buffer live at the binding step that no candidate gap lets go, and why."""

    buffer: int
    size: int
    reason: str


@dataclass(frozen=True)
class Floor:
    """The least feasible budget, the step that sets it, and what must be resident there."""

    bytes: int
    step: int
    live_bytes: int  # no-swap bytes live at that step
    resident: tuple[Resident, ...]  # largest first


def coverable_bytes(sp: SwapProblem) -> np.ndarray:
    """Per step, the bytes of the buffers some candidate gap could keep away then."""
    covered = np.zeros(sp.num_steps + 1, dtype=np.int64)
    for buffer, size, first, last in _cover_ranges(sp):
        covered[first] += size
        covered[last + 1] -= size
    return np.cumsum(covered)[:sp.num_steps]


def _cover_ranges(sp: SwapProblem) -> list[tuple[int, int, int, int]]:
    """(buffer, size, first, last): the steps each buffer can be away, as merged ranges.

    A buffer's swap and recompute gaps may be the same idle interval; merging keeps it
    counted once per step."""
    spans: dict[int, list[tuple[int, int]]] = {}
    for gap in rich_swap_gaps(sp) if sp.rich else sp.gaps():
        spans.setdefault(gap.buffer, []).append((gap.after + 1, gap.before - (1 if sp.rich else 2)))
    for gap in rich_recompute_gaps(sp) if sp.rich else sp.recompute_gaps():
        spans.setdefault(gap.buffer, []).append((gap.after + 1, gap.before - 1))
    sizes = sp.sizes()
    ranges = []
    for buffer, pieces in spans.items():
        for first, last in _merged(pieces):
            ranges.append((buffer, sizes[buffer], first, last))
    return ranges


def rich_swap_gaps(sp: SwapProblem) -> list[Gap]:
    """Rich model: every idle gap of 2+ steps of a swappable buffer (a boundary copy-in fits)."""
    return [g for b in sp.problem.buffers if not sp.swappable or b.id in sp.swappable for g in sp._idle(b, 2)]


def rich_recompute_gaps(sp: SwapProblem) -> list[Gap]:
    """Rich model: every idle gap with a step inside of a recomputable buffer, whatever its inputs."""
    return [g for b in sp.problem.buffers if b.id in sp.recompute_inputs for g in sp._idle(b, 2)]


def _merged(pieces: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for first, last in sorted(p for p in pieces if p[0] <= p[1]):
        if out and first <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], last))
        else:
            out.append((first, last))
    return out


def step_working_set(sp: SwapProblem) -> np.ndarray:
    """Per step, the arena bytes its kernel reads or writes (the buffers it uses or allocates).

    Why: no schedule of any model, however rich, can go below the largest of these (a
    kernel needs its operands on the device), so it is the yardstick for the floor: the
    distance between them is what this swap model, not the network, costs."""
    out = np.zeros(sp.num_steps, dtype=np.int64)
    for b in sp.problem.buffers:
        for step in set(sp.uses.get(b.id, ())) | {b.start}:
            if step < sp.num_steps:
                out[step] += b.size
    return out


def feasibility_floor(sp: SwapProblem) -> Floor:
    """The least budget (bytes of live tensors; placement may need more) any schedule reaches."""
    live = base_live_bytes(sp.problem, sp.num_steps)
    if sp.num_steps == 0:
        return Floor(0, 0, 0, ())
    floor = live - coverable_bytes(sp)
    step = int(np.argmax(floor))
    return Floor(int(floor[step]), step, int(live[step]), _residents(sp, step))


def _residents(sp: SwapProblem, step: int) -> tuple[Resident, ...]:
    covered = {b for b, _, first, last in _cover_ranges(sp) if first <= step <= last}
    resident = [Resident(b.id, b.size, _why_resident(sp, b.id, step))
                for b in sp.problem.buffers if b.start <= step < b.end and b.id not in covered]
    return tuple(sorted(resident, key=lambda r: (-r.size, r.buffer)))


def _why_resident(sp: SwapProblem, buffer: int, step: int) -> str:
    uses = set(sp.uses.get(buffer, ()))
    if step in uses:
        return "used at this step"
    if step + 1 in uses and not sp.rich:
        return "used at the next step (a copy-in must finish one step before its use)"
    if sp.swappable and buffer not in sp.swappable:
        return "not swappable (a view or a tuple refers to it), and not recomputable here"
    if buffer in sp.recompute_inputs and not sp.rich:
        return "its idle gap is too short to swap, and its producer's inputs are gone when it would be rebuilt"
    if sp.rich:
        return "its idle gap is too short (2+ steps needed), and its producer cannot run again"
    return "its idle gap is too short to swap (3+ steps needed), and its producer cannot run again"
