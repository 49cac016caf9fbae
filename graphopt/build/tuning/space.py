"""Each rule's knobs and the candidates a search draws from them.

The grids are the values worth trying on a CPU, not every legal value:
register tiles of rows x vectors accumulators that fit the register file with
room for one broadcast value and one row of operand vectors (more spill);
cache blocks from L1 to beyond L2, or the vector operand packed tile by tile; the
vector axis either way; the broadcast operand packed or read in place. A grid has a few hundred points at most; the
search samples it (see `candidates`) and then walks around the best point.
"""

from __future__ import annotations

import itertools
import random

BLOCK_BYTES = (1 << 15, 1 << 16, 1 << 17, 1 << 18, 1 << 19, 1 << 20, 1 << 22)

# Tried first: the settings that won most often when resnet50 and squeezenet were
# tuned on a Zen 3 (AVX2) machine: vectors over output channels (swap_axes on an
# NCHW conv), the data read in place instead of an im2col copy (pack_u off): a
# direct convolution. 4 x 2 and 7 x 1 tiles divide the usual spatial extents
# (56^2, 28^2, 14^2, 7^2); densenet121's 32-channel 3x3 convolutions ran 20-30%
# faster that way than with the default's im2col.
SEEDS = {"gemm": ({"rows": 4, "vectors": 2, "block_bytes": 1 << 18, "swap_axes": True, "pack_u": False,
                   "pack_in_tile": False},
                  {"rows": 7, "vectors": 1, "block_bytes": 1 << 18, "swap_axes": True, "pack_u": False,
                   "pack_in_tile": False})}
SEEDS["grouped"] = SEEDS["gemm"]


def grid(rule: str, registers: int) -> list[dict]:
    """Every knob setting of `rule` (empty for a rule without knobs)."""
    if rule in ("gemm", "grouped"):
        tiles = [(r, v) for r in range(1, 15) for v in (1, 2, 3, 4) if r * v + v + 1 <= registers]
        # packed tile by tile (pack_in_tile), the vector operand has no V blocks to size
        blocking = [(b, False) for b in BLOCK_BYTES] + [(BLOCK_BYTES[3], True)]
        return [{"rows": r, "vectors": v, "block_bytes": b, "swap_axes": s, "pack_u": p, "pack_in_tile": t}
                for (r, v), (b, t), s, p in itertools.product(tiles, blocking, (False, True), (True, False))]
    if rule == "depthwise":
        return [{"unroll": u, "pad_at_channel": p} for u, p in itertools.product((True, False), repeat=2)]
    if rule == "fallback":
        return [{"min_parallel": m, "vectorize": v}
                for m, v in itertools.product((0, 1024, 4096, 32768, 1 << 40), (True, False))]
    return []


def neighbours(point: dict, points: list[dict]) -> list[dict]:
    """Grid points that differ from `point` in exactly one knob."""
    return [p for p in points if sum(p[k] != point.get(k) for k in p) == 1]


class Sampler:
    """Draws knob settings: the seeds, then random grid points for the first
    `explore` draws, then neighbours of the best reported so far (random points
    when none are left)."""

    def __init__(self, rule: str, registers: int, seed: str, explore: int) -> None:
        self.points = grid(rule, registers)
        self.rng = random.Random(seed)
        self.order = self.points[:]
        self.rng.shuffle(self.order)
        seeds = [p for p in SEEDS.get(rule, ()) if p in self.points]
        self.order = seeds + [p for p in self.order if p not in seeds]
        self.explore = explore
        self.seen: set = set()
        self.best: tuple[float, dict] | None = None

    def next(self) -> dict | None:
        """The next untried setting, or None when the grid is exhausted."""
        pool: list[dict] = []
        if len(self.seen) >= self.explore and self.best is not None:
            pool = [p for p in neighbours(self.best[1], self.points) if _key(p) not in self.seen]
        if not pool:
            pool = [p for p in self.order if _key(p) not in self.seen][:1]
        if not pool:
            return None
        point = self.rng.choice(pool)
        self.seen.add(_key(point))
        return point

    def report(self, point: dict, seconds: float) -> None:
        if self.best is None or seconds < self.best[0]:
            self.best = (seconds, point)


def _key(point: dict) -> tuple:
    return tuple(sorted(point.items()))
