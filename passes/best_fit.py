"""The placement core shared by the greedy planners: fit buffers one at a time.

Design: buffers are taken in a caller-given order. Each goes into the tightest
address gap left by the already-placed buffers that overlap it in time (best
fit; "first" fit takes the lowest gap instead), respecting its alignment, or
on top of them when no gap fits. Greedy-by-size, SmartPool and the
best-of-orderings portfolio differ only in the order they pass in.

Speed: only time-overlapping buffers matter, and they are found with a static
index built once per problem (all lifetimes are known up front; only "placed
or not" changes). The buffers overlapping [s, e) are
  (a) those starting in [s, e): a slice of the start-sorted order, and
  (b) those with start < s < end: a stabbing query at s, answered by a segment
      tree over the distinct start times, where each buffer is stored in the
      O(log n) canonical nodes covering the starts it strictly spans.
The two sets are disjoint. The gap search over the candidates is vectorized.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from graphopt.plan.problem import MemoryProblem

_INFINITY = np.int64(2**62)


@dataclass(frozen=True)
class ProblemArrays:
    """The problem as int64 arrays, indexed by position in `problem.buffers`."""

    ids: tuple[int, ...]
    starts: np.ndarray
    ends: np.ndarray
    sizes: np.ndarray
    aligns: np.ndarray

    @staticmethod
    def of(problem: MemoryProblem) -> ProblemArrays:
        columns = [np.array([getattr(b, a) for b in problem.buffers], dtype=np.int64)
                   for a in ("start", "end", "size", "alignment")]
        return ProblemArrays(tuple(b.id for b in problem.buffers), *columns)


class OverlapIndex:
    """Answers "which buffers overlap buffer i in time" without scanning all."""

    def __init__(self, arrays: ProblemArrays) -> None:
        self.by_start = np.argsort(arrays.starts, kind="stable")
        self.sorted_starts = arrays.starts[self.by_start]
        self.points = np.unique(arrays.starts)
        self.leaves = 1 << max(1, (len(self.points) - 1).bit_length())
        nodes: list[list[int]] = [[] for _ in range(2 * self.leaves)]
        lows = np.searchsorted(self.points, arrays.starts, side="right")
        highs = np.searchsorted(self.points, arrays.ends, side="left")
        for buf, (lo, hi) in enumerate(zip(lows.tolist(), highs.tolist())):
            lo += self.leaves
            hi += self.leaves
            while lo < hi:  # canonical cover of leaves [lo, hi)
                if lo & 1:
                    nodes[lo].append(buf)
                    lo += 1
                if hi & 1:
                    hi -= 1
                    nodes[hi].append(buf)
                lo >>= 1
                hi >>= 1
        self.nodes = [np.array(n, dtype=np.int64) if n else None for n in nodes]
        self.starts, self.ends = arrays.starts, arrays.ends

    def overlapping(self, buf: int) -> np.ndarray:
        """Indices of all other buffers whose lifetime intersects buffer `buf`'s."""
        s, e = self.starts[buf], self.ends[buf]
        lo, hi = np.searchsorted(self.sorted_starts, (s, e), side="left")
        parts = [self.by_start[lo:hi]]  # (a) start in [s, e), includes buf itself
        node = int(np.searchsorted(self.points, s)) + self.leaves
        while node:  # (b) root-to-leaf path of point s: start < s < end
            if self.nodes[node] is not None:
                parts.append(self.nodes[node])
            node >>= 1
        found = np.concatenate(parts) if len(parts) > 1 else parts[0]
        return found[found != buf]


def fit_offset(offsets: np.ndarray, tops: np.ndarray, size: int, align: int, rule: str = "best") -> int:
    """Lowest aligned offset of the tightest (or first) gap between placed ranges.

    `offsets`/`tops` are the address ranges [offset, top) of the placed buffers
    that overlap in time. Gaps lie between the running maximum of tops and the
    next offset in address order; the gap above everything is unbounded.
    """
    order = np.argsort(offsets)
    covered = np.maximum.accumulate(tops[order])
    gap_lo = np.concatenate(([0], covered))
    gap_hi = np.concatenate((offsets[order], [_INFINITY]))
    aligned = -(-gap_lo // align) * align
    fits = aligned + size <= gap_hi
    if rule == "first":
        return int(aligned[np.argmax(fits)])
    slack = np.where(fits, gap_hi - gap_lo, _INFINITY + 1)
    slack[-1] = _INFINITY  # the open top gap fits always, chosen only as a last resort
    return int(aligned[np.argmin(slack)])


def place_in_order(
    arrays: ProblemArrays, index: OverlapIndex, order: np.ndarray, rule: str = "best"
) -> np.ndarray:
    """Offsets (by buffer position) from fitting the buffers in `order`."""
    offsets = np.full(len(arrays.sizes), -1, dtype=np.int64)
    sizes, aligns = arrays.sizes, arrays.aligns
    for buf in order.tolist():
        others = index.overlapping(buf)
        others = others[offsets[others] >= 0]
        if len(others) == 0:
            offsets[buf] = 0
            continue
        placed = offsets[others]
        offsets[buf] = fit_offset(placed, placed + sizes[others], int(sizes[buf]), int(aligns[buf]), rule)
    return offsets


def offsets_by_id(arrays: ProblemArrays, offsets: np.ndarray) -> dict[int, int]:
    """The placement's dict form, from offsets by buffer position."""
    return dict(zip(arrays.ids, offsets.tolist()))


def plan_in_order(problem, ordering, name: str):
    """One best-fit pass over `problem` in the order `ordering(arrays)` gives: the
    whole of a single-ordering heuristic, shared by greedy_by_size and smartpool."""
    import time

    from graphopt.plan.placement import Placement

    began = time.perf_counter()
    arrays = ProblemArrays.of(problem)
    offsets = place_in_order(arrays, OverlapIndex(arrays), ordering(arrays))
    return Placement.from_offsets(problem, offsets_by_id(arrays, offsets), name,
                                  seconds=time.perf_counter() - began)
