"""Pure-Python twin of the compiled search (passes/_native/dsa.cpp).

Design: the same algorithm, statement for statement where it matters, so the
two can be checked against each other (tests/passes/test_dsa_search.py) and a
machine without a compiler still gets exact answers, only slower. The rules
and why they keep the search complete are in `dsa_search.py`'s docstring.

Decision problem: do all buffers fit under `cap`? DFS over canonical
placements: the next buffer goes at its floor (aligned max top of the placed
buffers it overlaps); offsets never decrease along a branch; a buffer may go
next only if its floor is below every other unplaced buffer's floor + size
(dominance); equal offsets go in rank order (symmetry); every section (a
maximal clique of the interval graph) must hold its unplaced bytes above
max(section floor, last offset) under `cap`; a boundary no unplaced buffer
crosses splits the rest into independent pieces, each ranked afresh by the
preorder keys (T on the bytes still unplaced); when a candidate that has
nothing unplaced overlapping it in time ("hatless") fails, the later
candidates of that node are not tried (its branch covered them).
The compiled twin keeps the section floors incrementally and rejects some
candidates before placing them; both are exact shortcuts of this code, so
the two explore the same nodes.
"""

from __future__ import annotations

import time

import numpy as np


def maximal_cliques(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Each buffer's range [lo, hi) of sections, and the number of sections.

    A section is the live set just before an end that follows a start; every
    other cross-section is a subset of one, so checking these implies the rest.
    """
    n = len(starts)
    times = np.concatenate((starts, ends))
    kinds = np.concatenate((np.ones(n, np.int64), np.zeros(n, np.int64)))  # ends first at a tie
    order = np.lexsort((kinds, times))
    lo, hi = np.zeros(n, np.int64), np.zeros(n, np.int64)
    count, grew = 0, False
    for ev in order.tolist():
        b = ev % n
        if ev < n:
            lo[b], grew = count, True
        else:
            count += grew
            grew = False
            hi[b] = count
    return lo, hi, count


class _Search:
    """State of one decision search; every change goes on a trail for undo."""

    def __init__(self, starts, ends, sizes, aligns, keys: str, cap: int, deadline: float, node_limit: int):
        self.size, self.align = sizes.tolist(), aligns.tolist()
        self.keys, self.life = keys, (ends - starts).tolist()
        self.rank = [0] * len(self.size)
        self.cap, self.deadline, self.node_limit = cap, deadline, node_limit
        n = len(self.size)
        lo, hi, count = maximal_cliques(starts, ends)
        self.lo, self.hi = lo.tolist(), hi.tolist()
        self.members = [[] for _ in range(count)]
        self.left = [0] * count
        for b in range(n):
            for s in range(self.lo[b], self.hi[b]):
                self.members[s].append(b)
                self.left[s] += self.size[b]
        self.sec_floor = [0] * count
        self.cuts = [0] * max(count, 1)
        for b in range(n):
            for k in range(self.lo[b], self.hi[b] - 1):
                self.cuts[k] += 1
        order = np.argsort(starts, kind="stable").tolist()
        st, en = starts.tolist(), ends.tolist()
        self.overlap = [[] for _ in range(n)]
        for i, a in enumerate(order):
            for c in order[i + 1:]:
                if st[c] >= en[a]:
                    break
                self.overlap[a].append(c)
                self.overlap[c].append(a)
        self.floor = [0] * n
        self.offset = [-1] * n
        self.placed: list[int] = []
        self.trail: list[tuple[int, int]] = []
        self.sec_trail: list[tuple[int, int]] = []
        self.nodes, self.count, self.aborted = 0, count, False

    def place(self, b: int, o: int) -> bool:
        """Puts b at o, raises floors; True when a section boundary came free."""
        self.offset[b] = o
        self.placed.append(b)
        split = False
        for k in range(self.lo[b], self.hi[b] - 1):
            self.cuts[k] -= 1
            split |= self.cuts[k] == 0
        top = o + self.size[b]
        touched = set(range(self.lo[b], self.hi[b]))
        for s in touched:
            self.sec_trail.append((s, self.sec_floor[s]))
            self.sec_floor[s] = top
            self.left[s] -= self.size[b]
        for u in self.overlap[b]:
            if self.offset[u] < 0 and self.floor[u] < top:
                self.trail.append((u, self.floor[u]))
                a = self.align[u]
                self.floor[u] = -(-top // a) * a
                touched.update(range(self.lo[u], self.hi[u]))
        for s in touched:
            lows = [self.floor[u] for u in self.members[s] if self.offset[u] < 0]
            if lows and min(lows) > self.sec_floor[s]:
                self.sec_trail.append((s, self.sec_floor[s]))
                self.sec_floor[s] = min(lows)
        return split

    def undo_to(self, mark: tuple[int, int, int]) -> None:
        placed, trail, sec = mark
        while len(self.placed) > placed:
            b = self.placed.pop()
            for s in range(self.lo[b], self.hi[b]):
                self.left[s] += self.size[b]
            for k in range(self.lo[b], self.hi[b] - 1):
                self.cuts[k] += 1
            self.offset[b] = -1
        while len(self.sec_trail) > sec:
            s, old = self.sec_trail.pop()
            self.sec_floor[s] = old
        while len(self.trail) > trail:
            u, old = self.trail.pop()
            self.floor[u] = old

    def sections_ok(self, lo: int, hi: int, last: int) -> bool:
        return all(self.left[s] <= 0 or max(self.sec_floor[s], last) + self.left[s] <= self.cap
                   for s in range(lo, hi))

    def candidates(self, unplaced: list[int], last: int) -> list[tuple[int, int, int]]:
        tops = sorted((self.floor[u] + self.size[u], u) for u in unplaced)[:2] + [(2**62, -1)]
        out = []
        for b in unplaced:
            o = self.floor[b]
            bound = tops[1][0] if tops[0][1] == b else tops[0][0]
            if last <= o < bound and o + self.size[b] <= self.cap:
                out.append((o, self.rank[b], b))
        return sorted(out)

    def feature(self, key: str, b: int) -> int:
        """T: most unplaced bytes in a section b spans; W: sections spanned;
        A: size x lifetime; Z: size; L: lifetime."""
        if key == "T":
            return max(self.left[s] for s in range(self.lo[b], self.hi[b]))
        if key == "W":
            return self.hi[b] - self.lo[b]
        if key == "A":
            return self.size[b] * self.life[b]
        return self.size[b] if key == "Z" else self.life[b]

    def rerank(self, piece: list[int]) -> list[int]:
        """The piece sorted by the preorder keys (each descending, then index); sets ranks."""
        piece = sorted(piece, key=lambda b: (*(-self.feature(k, b) for k in self.keys), b))
        for r, b in enumerate(piece):
            self.rank[b] = r
        return piece

    def solve_range(self, bufs: list[int], lo: int, hi: int) -> bool:
        """Splits at free boundaries and solves each piece alone, each ranked
        afresh by the preorder (the caller's ranks come back on failure)."""
        saved = [self.rank[b] for b in bufs]
        piece_lo = lo
        for k in range(lo, hi):
            if k + 1 < hi and self.cuts[k] > 0:
                continue
            piece = [b for b in bufs if self.lo[b] >= piece_lo and self.hi[b] <= k + 1]
            if piece and not self.dfs(self.rerank(piece), piece_lo, k + 1, 0, -1):
                for b, r in zip(bufs, saved):
                    self.rank[b] = r
                return False
            piece_lo = k + 1
        return True

    def dfs(self, unplaced: list[int], lo: int, hi: int, last: int, last_buf: int) -> bool:
        if not unplaced:
            return True
        self.nodes += 1
        if self.nodes % 256 == 0 and (time.perf_counter() > self.deadline or 0 < self.node_limit < self.nodes):
            self.aborted = True
        if self.aborted:
            return False
        for o, rank, b in self.candidates(unplaced, last):
            if o == last and last_buf >= 0 and rank < self.rank[last_buf]:
                continue  # symmetry
            hatless = all(self.offset[u] >= 0 for u in self.overlap[b])
            mark = (len(self.placed), len(self.trail), len(self.sec_trail))
            split = self.place(b, o)
            if self.sections_ok(lo, hi, o):
                rest = [u for u in unplaced if u != b]
                if self.solve_range(rest, lo, hi) if split else self.dfs(rest, lo, hi, o, b):
                    return True
            self.undo_to(mark)
            if self.aborted or hatless:  # hatless: b's floor is final, its branch covered the rest
                return False
        return False


def fits_python(starts: np.ndarray, ends: np.ndarray, sizes: np.ndarray, aligns: np.ndarray,
                keys: str, cap: int, seconds: float, node_limit: int) -> tuple[int, np.ndarray | None, int]:
    """Same contract as `native.fits_native`: (1 | 0 | -1, offsets or None, nodes)."""
    search = _Search(starts, ends, sizes, aligns, keys, int(cap), time.perf_counter() + seconds, node_limit)
    everything = list(range(len(sizes)))
    ok = search.sections_ok(0, search.count, 0) and search.solve_range(everything, 0, search.count)
    if ok:
        return 1, np.array(search.offset, dtype=np.int64), search.nodes
    return (-1 if search.aborted else 0), None, search.nodes
