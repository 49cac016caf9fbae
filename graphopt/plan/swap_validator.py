"""The one judge of swap and recompute schedules (no TVM): every planner's
output, ours and the baselines', goes through `validate_swaps`.

It checks the shape of every swap (a real idle gap of a swappable buffer, steps
in order, no two on one gap), of every recompute (a recomputable buffer, a real
gap, its producer's inputs resident when it runs again), then simulates the
step/copy model and re-checks the timeline (copy-out done before its range is
reused, copy-in after the data reached host and done before use, one copy at a
time per engine) and the budget (live bytes at every step; the arena, if given).
Under the rich model (SwapProblem.rich) a copy-in may end at the step boundary
(load_at == before), and a recompute's input dead where it runs must be extended
or rebuilt there (graphopt.plan.swap_rich checks those, recursively).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from graphopt.plan.swap import (
    Recompute,
    Swap,
    SwapProblem,
    SwapSchedule,
    Timeline,
    live_bytes,
    simulate,
    step_durations,
)
from graphopt.plan.swap_rich import rich_errors


@dataclass(frozen=True)
class SwapReport:
    valid: bool
    errors: tuple[str, ...]
    peak_bytes: int
    stall: float
    total: float


def _uses(sp: SwapProblem, buffer: int, starts: dict[int, int]) -> set[int]:
    return set(sp.uses.get(buffer, ())) | {starts[buffer]}


def _gap_errors(sp: SwapProblem, s, starts: dict[int, int], what: str) -> list[str]:
    """`after` and `before` are consecutive uses of the buffer."""
    uses = _uses(sp, s.buffer, starts)
    errors = []
    if s.after not in uses or s.before not in uses:
        errors.append(f"{what} {s}: after and before must be uses of buffer {s.buffer}")
    if any(s.after < u < s.before for u in uses):
        errors.append(f"{what} {s}: buffer {s.buffer} is used inside its gap")
    return errors


def _swap_errors(sp: SwapProblem, swaps, starts: dict[int, int]) -> list[str]:
    """Per-swap shape: a known swappable buffer, a real idle gap, ordered steps."""
    errors = []
    for s in swaps:
        if s.buffer not in starts:
            errors.append(f"swap of unknown buffer {s.buffer}")
            continue
        if sp.swappable and s.buffer not in sp.swappable:
            errors.append(f"buffer {s.buffer} is not swappable (an alias of it cannot be re-derived)")
        boundary_ok = sp.rich and s.load_at == s.before
        if not (s.after < s.free_at < s.load_at <= s.before <= sp.num_steps - 1
                and (s.load_at < s.before or boundary_ok)):
            rule = "load_at <= before" if sp.rich else "load_at < before"
            errors.append(f"swap {s}: needs after < free_at < {rule} < {sp.num_steps}")
        errors += _gap_errors(sp, s, starts, "swap")
    return errors


def _absent_at(intervals: list, step: int) -> bool:
    """True when a buffer is away (or its copy-in may still run) at `step`."""
    return any(s.after < step < s.before for s in intervals)


def _recompute_errors(sp: SwapProblem, swaps, recomputes, starts: dict[int, int], kept=frozenset()) -> list[str]:
    """A recomputable buffer, a real gap, and the producer's inputs resident at `before`
    (`kept`: (buffer, step) pairs the rich model's extends and rebuilds make resident)."""
    errors = []
    away: dict[int, list] = {}
    for s in (*swaps, *recomputes):
        away.setdefault(s.buffer, []).append(s)
    ends = {b.id: b.end for b in sp.problem.buffers}
    for r in recomputes:
        if r.buffer not in sp.recompute_inputs:
            errors.append(f"recompute of buffer {r.buffer}: its producer cannot be run again")
            continue
        if not r.after + 1 < r.before <= sp.num_steps - 1:
            errors.append(f"recompute {r}: needs after + 1 < before < {sp.num_steps}")
        errors += _gap_errors(sp, r, starts, "recompute")
        for i in sp.recompute_inputs[r.buffer]:
            if (i, r.before) in kept and r.before >= ends[i]:
                continue
            if not starts[i] <= r.before < ends[i]:
                errors.append(f"recompute {r}: input buffer {i} is dead at step {r.before}")
            elif _absent_at(away.get(i, []), r.before):
                errors.append(f"recompute {r}: input buffer {i} is away at step {r.before}")
    return errors


def _overlap_errors(swaps, recomputes) -> list[str]:
    """At most one swap or recompute per idle gap of a buffer."""
    errors, seen = [], {}
    for s in (*swaps, *recomputes):
        for other in seen.get(s.buffer, ()):
            if s.after < other.before and other.after < s.before:
                errors.append(f"{s} and {other} of one buffer overlap")
        seen.setdefault(s.buffer, []).append(s)
    return errors


def _timeline_errors(sp: SwapProblem, swaps, tl: Timeline, durations) -> list[str]:
    """Re-checks the timeline: copies in order, in before use, one copy at a time per engine."""
    errors, eps = [], 1e-12
    for s in swaps:
        out, inn = tl.out_copy[s], tl.in_copy[s]
        if out[1] > tl.step_start[s.free_at] + eps:
            errors.append(f"swap {s}: copy-out ends after step {s.free_at} reuses its range")
        # the range is taken when step load_at starts, or at the boundary when step before-1 ends
        taken = tl.step_start[s.load_at] if s.load_at < s.before else \
            tl.step_start[s.before - 1] + durations[s.before - 1]
        if inn[0] + eps < max(out[1], taken):
            errors.append(f"swap {s}: copy-in starts before its data is on host or its range is taken")
        if inn[1] > tl.step_start[s.before] + eps:
            errors.append(f"swap {s}: copy-in ends after step {s.before} needs it")
    for name, copies in (("device-to-host", tl.out_copy), ("host-to-device", tl.in_copy)):
        spans = sorted(copies.values())
        for (a0, a1), (b0, _b1) in itertools.pairwise(spans):
            if b0 + eps < a1:
                errors.append(f"{name} copies overlap on its single engine at t={b0:.3e}")
    return errors


def validate_swaps(sp: SwapProblem, schedule: SwapSchedule, arena_bytes: int | None = None) -> SwapReport:
    """Judges a schedule: shape, simulated timing, peak (and arena) within the budget."""
    swaps, recomputes = schedule.swaps, schedule.recomputes
    rebuilds, extends = schedule.rebuilds, schedule.extends
    starts = {b.id: b.start for b in sp.problem.buffers}
    errors = _swap_errors(sp, swaps, starts)
    if not errors:
        kept, rich = rich_errors(sp, schedule, _absent_at)
        errors += rich + _recompute_errors(sp, swaps, recomputes, starts, kept) + _overlap_errors(swaps, recomputes)
    if errors:
        return SwapReport(False, tuple(errors[:20]), -1, float("inf"), float("inf"))
    tl = simulate(sp, swaps, recomputes, rebuilds=rebuilds)
    errors += _timeline_errors(sp, swaps, tl, step_durations(sp, recomputes, rebuilds))
    peak = int(live_bytes(sp, swaps, recomputes, rebuilds, extends).max(initial=0))
    if peak > sp.budget:
        errors.append(f"{peak} bytes live at the peak exceed the budget of {sp.budget}")
    if arena_bytes is not None and arena_bytes > sp.budget:
        errors.append(f"arena of {arena_bytes} bytes exceeds the budget of {sp.budget}")
    return SwapReport(not errors, tuple(errors[:20]), peak, tl.stall, tl.total)


__all__ = ["Recompute", "Swap", "SwapReport", "validate_swaps"]
