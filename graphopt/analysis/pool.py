"""Baselines that do no planning: no reuse at all, and an online caching pool.

Design of the pool model (cnmem / PyTorch CUDA caching allocator, simplified):
- The alloc/free trace is replayed in time order: a buffer is allocated at
  `start` and freed at `end`. Lifetimes are half-open, so at one time step the
  frees happen before the allocations; allocations at one step go in problem
  order (the execution order).
- Requests are rounded up to ROUND (512 B, PyTorch's minimum block size).
- Free blocks are cached, never given back. An allocation takes the smallest
  cached free block that fits (best fit; ties: lowest segment, then offset) and
  splits off the remainder as a new free block (every remainder is a multiple
  of 512 B, so always usable).
- With no fitting block, a new segment is reserved from the device. Its size is
  the rounded request rounded again to `segment_round`: by default 512 B, i.e.
  exactly what was asked. That is the pool's best case: what remains is only the
  fragmentation an online allocator cannot avoid. Pass 2 MiB to mimic PyTorch's
  rounding of large segments (its 2 MiB small-block segments are not modelled).
- A freed block merges with free neighbours of the same segment (segments are
  separate device allocations, so blocks never merge across them).
- The answer is the peak of reserved bytes, which is the final total because
  segments are never released.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from graphopt.plan.problem import MemoryProblem

ROUND = 512
MiB = 1 << 20


def naive_bytes(problem: MemoryProblem) -> int:
    """The arena with no reuse at all: every buffer gets its own bytes."""
    return problem.total_bytes


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


@dataclass(eq=False)
class _Block:
    """A range of one segment; blocks of a segment form a linked list by address."""

    segment: int
    offset: int
    size: int
    free: bool = False
    prev: _Block | None = None
    next: _Block | None = None

    @property
    def key(self) -> tuple[int, int, int]:
        return (self.size, self.segment, self.offset)


class CachingPool:
    """Best-fit pool with splitting and coalescing; reserved bytes only grow."""

    def __init__(self, segment_round: int = ROUND) -> None:
        self.segment_round = segment_round
        self.reserved = 0
        self._segments = 0
        self._free_keys: list[tuple[int, int, int]] = []  # sorted: best fit = bisect
        self._free_blocks: dict[tuple[int, int, int], _Block] = {}

    def _cache(self, block: _Block) -> None:
        block.free = True
        bisect.insort(self._free_keys, block.key)
        self._free_blocks[block.key] = block

    def _uncache(self, block: _Block) -> None:
        block.free = False
        del self._free_keys[bisect.bisect_left(self._free_keys, block.key)]
        del self._free_blocks[block.key]

    def _new_segment(self, size: int) -> _Block:
        seg_size = _round_up(size, self.segment_round)
        self.reserved += seg_size
        self._segments += 1
        return _Block(self._segments, 0, seg_size)

    def malloc(self, nbytes: int) -> _Block:
        """Best cached block that fits, split to size; else a new segment."""
        size = _round_up(nbytes, ROUND)
        i = bisect.bisect_left(self._free_keys, (size, -1, -1))
        if i < len(self._free_keys):
            block = self._free_blocks[self._free_keys[i]]
            self._uncache(block)
        else:
            block = self._new_segment(size)
        if block.size > size:  # split: the tail stays cached
            rest = _Block(block.segment, block.offset + size, block.size - size, prev=block, next=block.next)
            if block.next is not None:
                block.next.prev = rest
            block.next, block.size = rest, size
            self._cache(rest)
        return block

    def free(self, block: _Block) -> None:
        """Returns a block to the cache, merged with its free neighbours."""
        if block.prev is not None and block.prev.free:
            low = block.prev
            self._uncache(low)
            _merge(low, block)
            block = low
        if block.next is not None and block.next.free:
            high = block.next
            self._uncache(high)
            _merge(block, high)
        self._cache(block)


def _merge(low: _Block, high: _Block) -> None:
    """Grows `low` over its right neighbour `high`, unlinking `high`."""
    low.size += high.size
    low.next = high.next
    if high.next is not None:
        high.next.prev = low


def caching_pool_peak(problem: MemoryProblem, segment_round: int = ROUND) -> int:
    """Peak reserved bytes when the trace is replayed through `CachingPool`."""
    events = []  # (time, 0 = free / 1 = alloc, position in problem order)
    for pos, b in enumerate(problem.buffers):
        events.append((b.start, 1, pos))
        events.append((b.end, 0, pos))
    events.sort()
    pool = CachingPool(segment_round)
    held: dict[int, _Block] = {}
    for _, kind, pos in events:
        if kind == 1:
            held[pos] = pool.malloc(problem.buffers[pos].size)
        else:
            pool.free(held.pop(pos))
    return pool.reserved
