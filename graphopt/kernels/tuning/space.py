"""Each rule's knobs and the candidates a search draws from them.

The grids are the values worth trying on a CPU, not every legal value:
register tiles of rows x vectors accumulators that fit the register file with
room for one broadcast value and one row of operand vectors (more spill);
cache blocks from L1 to beyond L2, or the vector operand packed tile by tile; the
vector axis either way; the broadcast operand packed or read in place (through
the padding or from a padded copy); or the data read in place as the vector
operand (read_v). A grid has about a thousand points; the search (`Sampler`)
tries the seeds, samples the grid and then walks around the best point.
"""

from __future__ import annotations

import itertools
import random

BLOCK_BYTES = (1 << 15, 1 << 16, 1 << 17, 1 << 18, 1 << 19, 1 << 20, 1 << 22)

# Tried first: the direct convolution, i.e. vectors over output channels (swap_axes
# on an NCHW conv) with the data read in place instead of an im2col copy (pack_u
# off). It won most often when resnet50, squeezenet and densenet121 were tuned on a
# Zen 3 (AVX2) machine (densenet121's 32-channel 3x3 convolutions 1.24-1.39x,
# resnet50's stride-2 one 1.77x, squeezenet's first one 1.5x), but only with tile
# rows that divide the output's positions, which differ per kernel (56^2: 4, 7, 14;
# 55^2: 5, 11; 27^2: 3, 9; 13^2: 13). So every direct tile that fits the register
# file is a seed, most accumulators first; the rule refuses those that do not
# divide, which costs no trial. With the padded data copied once per run (pad_copy):
# read in place through the padding, every multiply-add tested four bounds; the copy
# made densenet121's 3x3 convolutions 4-41% faster on the same tile (14x14: 0.143 ->
# 0.084 ms). The rule refuses pad_copy where nothing is padded (a 1x1 convolution:
# then the same tiles without it are the seeds that count).
def direct_seeds(registers: int) -> list[dict]:
    """Direct-convolution settings, largest register tiles first."""
    tiles = [(r, v) for r in range(1, 15) for v in (1, 2, 3, 4) if r * v + v + 1 <= registers and r * v >= 6]
    tiles.sort(key=lambda t: (-t[0] * t[1], -t[0]))
    return [{"rows": r, "vectors": v, "block_bytes": 1 << 18, "swap_axes": True, "pack_u": False,
             "pack_in_tile": False, "pad_copy": copy, "read_v": False} for copy in (True, False) for r, v in tiles]


# Tried before the direct seeds: the data read in place as the vector operand (vectors over output
# positions, the weights broadcast; the `read_v` knob, gemm_stages.read_vector_operand_in_place), two
# vectors wide, rows that divide common channel counts (24, 48, 96). Where output channels do not fill
# whole vectors it beats both other forms: PP-OCR det's 96->24 3x3 convolution at 160x160 took 3.9 ms
# read in place (12 x 2 tile), 5.8 ms as a direct convolution over channels (the tuned choice, 24 of
# 32 lanes busy) and 7.4 ms as an im2col GEMM (AVX-512 VM). The rule refuses it where the data is not
# the vector operand, at no trial's cost.
READ_V_SEED_ROWS = (12, 8, 6, 4)


def read_in_place_seeds(registers: int) -> list[dict]:
    """Three `read_v` settings, two vectors wide, most rows first."""
    rows = [r for r in READ_V_SEED_ROWS if 2 * r + 3 <= registers][:3]
    return [_read_v_point(r, 2, 1 << 18) for r in rows]


def _read_v_point(rows: int, vectors: int, block_bytes: int) -> dict:
    """A `read_v` grid point: the weights (the broadcast operand) stay packed, nothing else applies."""
    return {"rows": rows, "vectors": vectors, "block_bytes": block_bytes, "swap_axes": False, "pack_u": True,
            "pack_in_tile": False, "pad_copy": False, "read_v": True}


def gemm_seeds(registers: int) -> list[dict]:
    """The GEMM rule's seeds: the read_v ones, then the direct convolution's."""
    return read_in_place_seeds(registers) + direct_seeds(registers)


SEEDS = {"gemm": gemm_seeds}
SEEDS["grouped"] = SEEDS["gemm"]


def grid(rule: str, registers: int) -> list[dict]:
    """Every knob setting of `rule` (empty for a rule without knobs)."""
    if rule in ("gemm", "grouped"):
        tiles = [(r, v) for r in range(1, 15) for v in (1, 2, 3, 4) if r * v + v + 1 <= registers]
        # packed tile by tile (pack_in_tile), the vector operand has no V blocks to size
        blocking = [(b, False) for b in BLOCK_BYTES] + [(BLOCK_BYTES[3], True)]
        # pad_copy only means something for an operand read in place (pack_u off)
        packing = [(True, False), (False, False), (False, True)]
        packed = [{"rows": r, "vectors": v, "block_bytes": b, "swap_axes": s, "pack_u": p, "pack_in_tile": t,
                   "pad_copy": c, "read_v": False}
                  for (r, v), (b, t), s, (p, c) in itertools.product(tiles, blocking, (False, True), packing)]
        return packed + [_read_v_point(r, v, b) for (r, v), b in itertools.product(tiles, BLOCK_BYTES)]
    if rule == "depthwise":
        return [{"unroll": u, "pad_at_channel": p} for u, p in itertools.product((True, False), repeat=2)]
    if rule == "pool":
        return [{"window_rows": w, "unroll": u} for w, u in itertools.product((True, False), repeat=2)]
    if rule == "fallback":
        return [{"min_parallel": m, "vectorize": v}
                for m, v in itertools.product((0, 1024, 4096, 32768, 1 << 40), (True, False))]
    return []


def neighbours(point: dict, points: list[dict]) -> list[dict]:
    """Grid points that differ from `point` in exactly one knob."""
    return [p for p in points if sum(p[k] != point.get(k) for k in p) == 1]


class Sampler:
    """Draws knob settings: every seed first, then random grid points until
    `explore` settings have been measured, then neighbours of the best reported so
    far (random points when none are left). A setting the rule refused (`refused`)
    does not count as measured."""

    def __init__(self, rule: str, registers: int, seed: str, explore: int) -> None:
        self.points = grid(rule, registers)
        self.rng = random.Random(seed)
        self.order = self.points[:]
        self.rng.shuffle(self.order)
        self.seeds = [p for p in SEEDS[rule](registers) if p in self.points] if rule in SEEDS else []
        self.explore = explore
        self.seen: set = set()
        self.refusals = 0
        self.best: tuple[float, dict] | None = None

    def next(self) -> dict | None:
        """The next untried setting, or None when the grid is exhausted."""
        pool = [p for p in self.seeds if _key(p) not in self.seen][:1]
        if not pool and len(self.seen) - self.refusals >= self.explore and self.best is not None:
            pool = [p for p in neighbours(self.best[1], self.points) if _key(p) not in self.seen]
        if not pool:
            pool = [p for p in self.order if _key(p) not in self.seen][:1]
        if not pool:
            return None
        point = self.rng.choice(pool)
        self.seen.add(_key(point))
        return point

    def refused(self) -> None:
        """The last setting drawn was refused by the rule (nothing was measured)."""
        self.refusals += 1

    def report(self, point: dict, seconds: float) -> None:
        if self.best is None or seconds < self.best[0]:
            self.best = (seconds, point)


def _key(point: dict) -> tuple:
    return tuple(sorted(point.items()))
