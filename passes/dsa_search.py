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
Which buffer to try first at equal offsets is a static preorder; several
preorders run round robin with doubling node budgets (a preorder that is
lucky on one instance is unlucky on another).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from graphopt.passes import native
from graphopt.passes.dsa_python import fits_python, maximal_cliques

# Preorders, as keys compared descending in turn: T = most bytes live in any
# section the buffer spans, W = sections spanned, A = size x lifetime,
# Z = size, L = lifetime.
PREORDERS = ("TWA", "WAT", "TAW", "AWT", "ZTW")


@dataclass(frozen=True)
class Instance:
    """A (piece of a) problem as int64 arrays, in position order."""

    starts: np.ndarray
    ends: np.ndarray
    sizes: np.ndarray
    aligns: np.ndarray

    def __len__(self) -> int:
        return len(self.sizes)

    def subset(self, index: np.ndarray) -> "Instance":
        return Instance(self.starts[index], self.ends[index], self.sizes[index], self.aligns[index])


def preorder_ranks(inst: Instance, keys: str) -> np.ndarray:
    """rank[b]: b's position when sorted by `keys` (each descending), then by index."""
    lo, hi, count = maximal_cliques(inst.starts, inst.ends)
    delta = np.zeros(count + 1, dtype=np.int64)
    np.add.at(delta, lo, inst.sizes)
    np.add.at(delta, hi, -inst.sizes)
    live = np.cumsum(delta)[:-1]
    # max of live over [lo, hi): a sparse table would be faster, pieces are small
    total = np.array([live[a:b].max() if b > a else 0 for a, b in zip(lo.tolist(), hi.tolist())], dtype=np.int64)
    feature = {"T": total, "W": hi - lo, "A": inst.sizes * (inst.ends - inst.starts),
               "Z": inst.sizes, "L": inst.ends - inst.starts}
    order = np.lexsort([np.arange(len(inst))] + [-feature[k] for k in reversed(keys)])
    ranks = np.empty(len(inst), dtype=np.int64)
    ranks[order] = np.arange(len(inst))
    return ranks


def _fits_once(inst: Instance, ranks: np.ndarray, cap: int, seconds: float, node_limit: int):
    if native.available():
        return native.fits_native(inst.starts, inst.ends, inst.sizes, inst.aligns, ranks, cap, seconds, node_limit)
    native.warn_missing()
    return fits_python(inst.starts, inst.ends, inst.sizes, inst.aligns, ranks, cap, seconds, node_limit)


def fits(inst: Instance, cap: int, seconds: float, preorders: tuple[str, ...] = PREORDERS) -> tuple[int, np.ndarray | None]:
    """Decision search under `cap`: (1, offsets) | (0, None) proved | (-1, None) out of time.

    Round robin over the preorders with node budgets doubling from 2n, so a
    preorder that gets lost costs no more than the ones that do not.
    """
    if len(inst) == 0:
        return 1, np.zeros(0, dtype=np.int64)
    deadline = time.perf_counter() + seconds
    ranks = [preorder_ranks(inst, keys) for keys in preorders]
    budget = 2 * len(inst)
    while True:
        for rank in ranks:
            left = deadline - time.perf_counter()
            if left <= 0:
                return -1, None
            status, offsets, nodes = _fits_once(inst, rank, cap, left, budget)
            if status >= 0:
                return status, offsets
            if nodes < budget:  # stopped by the clock, not the node budget
                return -1, None
        budget *= 2
