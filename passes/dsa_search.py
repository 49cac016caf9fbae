"""Exact placement search: a branch and bound over canonical placements.

Design (our own implementation of the ideas of MiniMalloc, ASPLOS'23):
the search answers the decision problem "do all buffers fit under height H?"
and the planner drives H down from the best heuristic height to the lower
bound (LB). The inner loop is C++ (`_native/dsa.cpp`) with a pure-Python twin
(`dsa_python.py`); both implement these rules:

1. Canonical placements. Push any valid placement down until nothing moves:
   each buffer then rests on 0 or on a buffer it overlaps in time. Take the
   buffers of that placement in (offset, rank) order; each one's offset is its
   *floor*, the (aligned) max top of the earlier buffers it overlaps. So a DFS
   only chooses which buffer comes next; its offset is implied.
2. Monotonic offsets: along a branch offsets never decrease, so every
   unplaced buffer lies at >= the last offset.
3. Dominance: take a placement minimizing the sum of offsets. If an unplaced
   buffer u had floor(u) + size(u) <= o for the next offset o, lowering u to
   its floor would collide with nothing (earlier ones end below the floor,
   later ones start at >= o) and lower the sum. So the next buffer's offset is
   below every other unplaced buffer's floor + size.
4. Symmetry: two buffers at one offset do not overlap in time; they go in
   rank order.
5. Sections = maximal cliques of the interval graph. A section's unplaced
   bytes stack above max(its floor, last offset), where its floor is raised to
   the lowest floor of its unplaced members; above H the branch is dead.
6. Decomposition: when no unplaced buffer crosses a section boundary, the
   rest splits into independent pieces, each searched alone (and from
   offset 0: restarting the order only widens the search). A piece that
   fails fails the node; no piece is re-searched for its sibling's sake.
7. Hatless pruning (MiniMalloc): if the candidate b just tried has no
   unplaced buffer overlapping it in time, its floor can no longer change,
   so every solution below this node has b at that offset, and in
   (offset, rank) order b precedes every later candidate: b's failed branch
   covered them, and the node fails.
Which buffer to try first at equal offsets is a preorder (rank); several
preorders run round robin with doubling node budgets (a preorder that is
lucky on one instance is unlucky on another). As in MiniMalloc, every piece
the search splits off is ranked afresh, with T measured on the bytes still
unplaced; the caller's ranks come back when a piece fails.
Speed (C++ only, same nodes as the twin): section floors are kept as the
lowest floor of the unplaced members with a count of the members there,
rescanned only when the count falls to 0; the check after a placement looks only at
the sections whose floor or bytes changed, plus max bytes left + offset;
and a candidate whose offset + bytes left in some section (b's own: with
b) passes the height is rejected without being placed (it could not pass
the check), which removes most placements on the hard instances.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from graphopt.passes import native
from graphopt.passes.dsa_python import fits_python

# Preorders, as keys compared descending in turn: T = most unplaced bytes in
# any section the buffer spans (recomputed for every piece the search splits
# off, as MiniMalloc does), W = sections spanned, A = size x lifetime,
# Z = size, L = lifetime. At LB on A-K (2 cores, 1.5 s each): TLA solves all
# but B and H in <= 0.04 s; TAW solves B, C, H; TWA backs up A, C, E, F, H, K.
PREORDERS = ("TLA", "TAW", "TWA")


@dataclass(frozen=True)
class Instance:
    """A (piece of a) problem as int64 arrays, in position order."""

    starts: np.ndarray
    ends: np.ndarray
    sizes: np.ndarray
    aligns: np.ndarray

    def __len__(self) -> int:
        return len(self.sizes)

    def subset(self, index: np.ndarray) -> Instance:
        return Instance(self.starts[index], self.ends[index], self.sizes[index], self.aligns[index])


def _fits_once(inst: Instance, keys: str, cap: int, seconds: float, node_limit: int):
    if native.available():
        return native.fits_native(inst.starts, inst.ends, inst.sizes, inst.aligns, keys, cap, seconds, node_limit)
    native.warn_missing()
    return fits_python(inst.starts, inst.ends, inst.sizes, inst.aligns, keys, cap, seconds, node_limit)


def fits(inst: Instance, cap: int, seconds: float, preorders: tuple[str, ...] = PREORDERS) -> tuple[int, np.ndarray | None]:
    """Decision search under `cap`: (1, offsets) | (0, None) proved | (-1, None) out of time.

    Round robin over the preorders with node budgets doubling from 2n, so a
    preorder that gets lost costs no more than the ones that do not.
    """
    if len(inst) == 0:
        return 1, np.zeros(0, dtype=np.int64)
    deadline = time.perf_counter() + seconds
    budget = 2 * len(inst)
    while True:
        for keys in preorders:
            left = deadline - time.perf_counter()
            if left <= 0:
                return -1, None
            status, offsets, nodes = _fits_once(inst, keys, cap, left, budget)
            if status >= 0:
                return status, offsets
            if nodes < budget:  # stopped by the clock, not the node budget
                return -1, None
        budget *= 2
