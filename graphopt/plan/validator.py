"""The one validator: judges every placement, from every planner, the same way.

Design: kept separate from all planners and written to be checked by reading.
1. Per buffer: it has an offset, the offset is >= 0 and aligned, and it ends
   inside the arena. Offsets for ids the problem does not know are errors too.
2. The arena size claimed equals the height max(offset + size).
3. Pairs: sort buffers by start. For buffer i, the buffers j after it in that
   order with start_j < end_i are exactly the later-starting buffers that
   overlap i in time (start_i <= start_j < end_i, and end_j > start_j), so every
   time-overlapping pair is looked at once, in a numpy slice, for address overlap.
   The work is the number of time-overlapping pairs, not n^2.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from graphopt.analysis.lower_bound import lower_bound
from graphopt.plan.placement import Placement
from graphopt.plan.problem import MemoryProblem

MAX_ERRORS = 20


@dataclass(frozen=True)
class ValidationReport:
    """Verdict on one placement; `errors` holds the first MAX_ERRORS messages."""

    valid: bool
    errors: tuple[str, ...]
    arena_bytes: int
    lower_bound: int

    def summary(self) -> str:
        """One line for logs and exceptions."""
        if self.valid:
            return f"valid: arena {self.arena_bytes} B, lower bound {self.lower_bound} B"
        more = f" (+{len(self.errors) - 1} more)" if len(self.errors) > 1 else ""
        return f"invalid: {self.errors[0]}{more}"


def _buffer_errors(problem: MemoryProblem, placement: Placement) -> list[str]:
    """Errors that concern one buffer (or one offset) at a time."""
    errors = []
    known = {b.id for b in problem.buffers}
    for extra in sorted(set(placement.offsets) - known):
        errors.append(f"offset given for unknown buffer id {extra}")
    for b in problem.buffers:
        off = placement.offsets.get(b.id)
        if off is None:
            errors.append(f"buffer {b.id}: no offset")
        elif off < 0:
            errors.append(f"buffer {b.id}: negative offset {off}")
        elif off % b.alignment:
            errors.append(f"buffer {b.id}: offset {off} not a multiple of alignment {b.alignment}")
        elif off + b.size > placement.arena_bytes:
            errors.append(
                f"buffer {b.id}: [{off}, {off + b.size}) ends past the arena of {placement.arena_bytes} B"
            )
    return errors


def _arena_errors(problem: MemoryProblem, placement: Placement) -> list[str]:
    """The claimed arena must be the height the offsets actually reach."""
    tops = [placement.offsets[b.id] + b.size for b in problem.buffers if b.id in placement.offsets]
    height = max(tops, default=0)
    if placement.arena_bytes != height:
        return [f"arena_bytes {placement.arena_bytes} differs from the height {height} of the offsets"]
    return []


def _overlap_errors(problem: MemoryProblem, placement: Placement, limit: int) -> list[str]:
    """Pairs of buffers live at the same time whose address ranges intersect."""
    bufs = [b for b in problem.buffers if b.id in placement.offsets]
    bufs.sort(key=lambda b: b.start)
    starts = np.array([b.start for b in bufs], dtype=np.int64)
    lows = np.array([placement.offsets[b.id] for b in bufs], dtype=np.int64)
    highs = lows + np.array([b.size for b in bufs], dtype=np.int64)
    # first index whose start is >= end_i: the slice (i, stop_i) overlaps i in time
    stops = np.searchsorted(starts, [b.end for b in bufs], side="left")
    errors = []
    for i, b in enumerate(bufs):
        lo, hi = lows[i], highs[i]
        window = slice(i + 1, stops[i])
        hits = np.nonzero((lows[window] < hi) & (highs[window] > lo))[0]
        for j in hits[: max(0, limit - len(errors))] + i + 1:
            other = bufs[j]
            errors.append(
                f"buffers {b.id} [{lo}, {hi}) and {other.id} [{lows[j]}, {highs[j]}) "
                f"overlap in address while both live at step {max(b.start, other.start)}"
            )
        if len(errors) >= limit:
            break
    return errors


def validate(problem: MemoryProblem, placement: Placement) -> ValidationReport:
    """Checks a placement against its problem; never trusts the planner's numbers."""
    errors = _buffer_errors(problem, placement) + _arena_errors(problem, placement)
    if len(errors) < MAX_ERRORS:
        errors += _overlap_errors(problem, placement, MAX_ERRORS - len(errors))
    return ValidationReport(
        valid=not errors,
        errors=tuple(errors[:MAX_ERRORS]),
        arena_bytes=placement.arena_bytes,
        lower_bound=lower_bound(problem),
    )


def assert_valid(problem: MemoryProblem, placement: Placement) -> ValidationReport:
    """Raises ValueError with a one-line message unless the placement is valid."""
    report = validate(problem, placement)
    if not report.valid:
        name = f" for {problem.name!r}" if problem.name else ""
        raise ValueError(f"placement by {placement.planner}{name} is {report.summary()}")
    return report
