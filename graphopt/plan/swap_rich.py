"""The rich swap model's own rules, and how its schedules execute (no TVM).

Why a second module: the rich model (graphopt.plan.swap, `SwapProblem(rich=True)`)
adds two actions the plain one has no word for, `Extend(buffer, to)` and
`Rebuild(buffer, at)`, and the program rewrite (graphopt.transforms.insert_swaps)
and the placement know only swaps and recomputes. So this module

* checks the new actions for the one validator (`rich_errors`): an extend keeps a
  buffer from its last use through step `to`; a rebuild runs the producer of a
  buffer that is dead by step `at` (and not extended there) with every input it
  reads resident at `at`: live and not away, or extended or rebuilt in turn
  (inputs are born before their readers, so the chain ends);
* lowers a schedule to what the rewrite executes (`executable`): the rebuilds of
  a buffer become recomputes of it, dropped after its last resident step and
  rebuilt before each rebuild step, in order; extends need no code, only the
  longer lifetime in placement;
* gives placement the resident segments (`rich_split_problem`), numbered as the
  rewrite numbers them: segment 0, one per swap or recompute in order of
  `after`, then one one-step segment per rebuild.
"""

from __future__ import annotations

from graphopt.plan.problem import Buffer, MemoryProblem
from graphopt.plan.swap import Extend, Rebuild, Recompute, SwapProblem, SwapSchedule, split_problem


def needed_residency(sp: SwapProblem, recomputes, extended) -> tuple[tuple[Rebuild, ...], tuple[Extend, ...]]:
    """The extends and rebuilds `recomputes` need: each input dead where it is read is extended
    through that step when `extended(input, step)` says so, else rebuilt there, its own dead
    inputs in turn (a planner's solver answers `extended`); a rebuild an extend covers is dropped."""
    ends = {b.id: b.end for b in sp.problem.buffers}
    extends: dict[int, int] = {}
    rebuilds: set[tuple[int, int]] = set()

    def need(buffer: int, step: int) -> None:
        for i in sp.recompute_inputs.get(buffer, ()):
            if step < ends[i]:
                continue
            if extended(i, step):
                extends[i] = max(extends.get(i, step), step)
            elif (i, step) not in rebuilds:
                rebuilds.add((i, step))
                need(i, step)

    for r in recomputes:
        need(r.buffer, r.before)
    rebuilds = {(i, t) for i, t in rebuilds if extends.get(i, -1) < t}
    return (tuple(Rebuild(i, t) for i, t in sorted(rebuilds)),
            tuple(Extend(i, t) for i, t in sorted(extends.items())))


def kept_steps(sp: SwapProblem, schedule: SwapSchedule) -> set[tuple[int, int]]:
    """(buffer, step) pairs an extend or a rebuild makes resident past the buffer's last use."""
    ends = {b.id: b.end for b in sp.problem.buffers}
    kept = {(e.buffer, t) for e in schedule.extends if e.buffer in ends for t in range(ends[e.buffer], e.to + 1)}
    return kept | {(r.buffer, r.at) for r in schedule.rebuilds}


def rich_errors(sp: SwapProblem, schedule: SwapSchedule, absent_at) -> tuple[set, list[str]]:
    """(kept steps, errors) of the extends and rebuilds; `absent_at(events, step)` is the
    validator's test of a buffer being away."""
    if not schedule.rebuilds and not schedule.extends:
        return set(), []
    if not sp.rich:
        return set(), ["extends and rebuilds need the rich model (SwapProblem(rich=True))"]
    errors = _extend_errors(sp, schedule)
    if errors:
        return set(), errors
    kept = kept_steps(sp, schedule)
    return kept, _rebuild_errors(sp, schedule, kept, absent_at)


def _extend_errors(sp: SwapProblem, schedule: SwapSchedule) -> list[str]:
    ends = {b.id: b.end for b in sp.problem.buffers}
    errors, seen = [], set()
    for e in schedule.extends:
        if e.buffer not in ends:
            errors.append(f"extend of unknown buffer {e.buffer}")
        elif not ends[e.buffer] <= e.to <= sp.num_steps - 1:
            errors.append(f"{e}: needs its last use < to < {sp.num_steps}")
        if e.buffer in seen:
            errors.append(f"{e}: one extend per buffer")
        seen.add(e.buffer)
    return errors


def _rebuild_errors(sp: SwapProblem, schedule: SwapSchedule, kept: set, absent_at) -> list[str]:
    """Each rebuild: recomputable, dead and not extended at `at`, once, inputs resident."""
    starts = {b.id: b.start for b in sp.problem.buffers}
    ends = {b.id: b.end for b in sp.problem.buffers}
    extended = {e.buffer: e.to for e in schedule.extends}
    away: dict[int, list] = {}
    for s in (*schedule.swaps, *schedule.recomputes):
        away.setdefault(s.buffer, []).append(s)
    errors, seen = [], set()
    for r in schedule.rebuilds:
        if r.buffer not in sp.recompute_inputs:
            errors.append(f"{r}: the producer of buffer {r.buffer} cannot be run again")
            continue
        if not ends[r.buffer] <= r.at <= sp.num_steps - 1 or extended.get(r.buffer, -1) >= r.at:
            errors.append(f"{r}: the buffer must be dead and not extended at step {r.at}")
        if r in seen:
            errors.append(f"{r}: twice")
        seen.add(r)
        for i in sp.recompute_inputs[r.buffer]:
            live = starts[i] <= r.at < ends[i]
            if (live and absent_at(away.get(i, []), r.at)) or (not live and (i, r.at) not in kept):
                errors.append(f"{r}: input buffer {i} is not resident at step {r.at}")
    return errors


def _last_resident(sp: SwapProblem, schedule: SwapSchedule) -> dict[int, int]:
    """Buffer -> its last resident step before any rebuild: its last use, or its extend's end."""
    last = {b.id: b.end - 1 for b in sp.problem.buffers}
    for e in schedule.extends:
        last[e.buffer] = max(last[e.buffer], e.to)
    return last


def executable(sp: SwapProblem, schedule: SwapSchedule) -> SwapSchedule:
    """The schedule as the program rewrite runs it: rebuilds as recomputes (dropped after the
    last resident step, rebuilt before each rebuild step); nothing else changes."""
    if not schedule.rebuilds:
        return SwapSchedule(schedule.swaps, schedule.planner, schedule.seconds, schedule.meta, schedule.recomputes)
    last = _last_resident(sp, schedule)
    lowered = []
    for buffer, ats in sorted(_rebuild_steps(schedule).items()):
        previous = last[buffer]
        for at in ats:
            lowered.append(Recompute(buffer, previous, at))
            previous = at
    return SwapSchedule(schedule.swaps, schedule.planner, schedule.seconds, schedule.meta,
                        (*schedule.recomputes, *lowered))


def _rebuild_steps(schedule: SwapSchedule) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for r in schedule.rebuilds:
        out.setdefault(r.buffer, []).append(r.at)
    return {b: sorted(ats) for b, ats in out.items()}


def rich_split_problem(sp: SwapProblem, schedule: SwapSchedule) -> tuple[MemoryProblem, dict[int, tuple[int, int]]]:
    """The resident segments of every buffer for placement; id -> (original id, segment index).

    Segments as graphopt.plan.swap.split_problem cuts them, the last one lengthened
    through its extend, then one segment [at, at + 1) per rebuild, in order of `at`."""
    split, origin = split_problem(sp, schedule.swaps, schedule.recomputes)
    if not schedule.rebuilds and not schedule.extends:
        return split, origin
    last = _last_resident(sp, schedule)
    segments: dict[int, int] = {}
    for buffer, seg in origin.values():
        segments[buffer] = max(segments.get(buffer, -1), seg)
    buffers = []
    for b in split.buffers:
        buffer, seg = origin[b.id]
        if seg == segments[buffer] and last[buffer] + 1 > b.end:
            b = Buffer(b.id, b.start, last[buffer] + 1, b.size, b.alignment, b.name)
        buffers.append(b)
    next_id = max(origin, default=-1) + 1
    sizes = {b.id: b for b in sp.problem.buffers}
    for buffer, ats in sorted(_rebuild_steps(schedule).items()):
        for at in ats:
            segments[buffer] += 1
            src = sizes[buffer]
            buffers.append(Buffer(next_id, at, at + 1, src.size, src.alignment, f"{src.name}@re{at}"))
            origin[next_id] = (buffer, segments[buffer])
            next_id += 1
    return MemoryProblem(tuple(buffers), split.num_steps, split.name), origin
