"""Small schedule helpers shared by the CPU rules: the host's vector width, loop
extents, inlining, and the parallel + vectorize treatment of one spatial block.

Why a module of its own: every rule ends the same way (parallel outer loops, a
vector inner loop whose length divides the extent), and the measured facts behind
those choices (16 vector registers on AVX2, 32 on AVX-512; odd vector lengths such
as 28/49/56 lanes run 5-7x slower than a full register) live in one place.
"""

from __future__ import annotations

from tvm import s_tir, tirx
from tvm.target import Target
from tvm.target.codegen import llvm_cpu_has_features

from graphopt.kernels.schedules import symbolic

SBlockRV = s_tir.schedule.SBlockRV
LoopRV = s_tir.schedule.LoopRV

# Parallel loops are fused until they give at least this many chunks per thread pool.
MIN_PARALLEL_CHUNKS = 64
# Above this many elements per parallel chunk, splitting further is not worth it.
MAX_SERIAL_ELEMENTS = 1 << 14


def start(func, target: Target):
    """(schedule, block infos) for an llvm PrimFunc that dlight can analyse, else None:
    the prologue every CPU rule shares."""
    from tvm.s_tir.dlight.analysis import normalize_prim_func

    if not isinstance(func, tirx.PrimFunc) or target.kind.name != "llvm":
        return None
    sch = s_tir.Schedule(func)
    infos = normalize_prim_func(sch)
    return None if infos is None else (sch, infos)


def vector_bits(target: Target) -> int:
    """Widest SIMD register of the target CPU, in bits (LLVM's own query reports 512
    for CPUs without AVX-512, so the features are asked instead)."""
    if target.kind.name != "llvm":
        return 128
    for feature, bits in (("avx512f", 512), ("avx", 256)):
        try:
            if llvm_cpu_has_features(feature, target):
                return bits
        except Exception:  # noqa: BLE001  (non-x86 triples reject x86 feature names)
            return 128
    return 128


def vector_lanes(target: Target, dtype_bits: int = 32) -> int:
    return max(vector_bits(target) // dtype_bits, 1)


def vector_registers(target: Target) -> int:
    """Architectural vector registers: 32 with AVX-512, 16 with AVX/SSE."""
    return 32 if vector_bits(target) >= 512 else 16


def extent(sch: s_tir.Schedule, loop: LoopRV) -> int | None:
    """A loop's constant extent, or None when it is symbolic."""
    value = sch.get(loop).extent
    return int(value.value) if isinstance(value, tirx.IntImm) else None


def try_inline_all(sch: s_tir.Schedule, blocks: list[SBlockRV]) -> list[SBlockRV]:
    """Inlines every block that can be (forward first, then into producers) and
    returns the ones left; fused elementwise chains become one loop nest."""
    remaining = list(blocks)
    changed = True
    while changed:
        changed = False
        for primitive in (sch.compute_inline, sch.reverse_compute_inline):
            for block in list(remaining):
                if len(remaining) == 1:
                    return remaining
                try:
                    primitive(block)
                except Exception:  # noqa: BLE001, S112  (the schedule refuses; the block stays)
                    continue
                remaining.remove(block)
                changed = True
    return remaining


def pick_vector(length: int | None, lanes: int) -> int:
    """The vector length for an inner loop: one or two registers when that divides
    it, else its largest power-of-two divisor up to a register (a split that does
    not divide leaves a predicate that blocks vectorizing; odd full-extent vectors
    such as 28/49/56 lanes measured 5-7x slower)."""
    if length is None or length < 2:
        return 1
    for multiple in (2, 1):
        if length % (lanes * multiple) == 0:
            return lanes * multiple
    width = 1
    while width * 2 <= lanes and length % (width * 2) == 0:
        width *= 2
    return width


def row_vector(length: int | None, lanes: int) -> int:
    """pick_vector, except for a row with no power-of-two divisor of 4 or more: the largest divisor
    of it from half a register to two registers, an odd vector (a 6625-word vocabulary's softmax rows
    take 25 lanes: LLVM runs them as a 16-lane, an 8-lane and a scalar operation). Why: such a row
    was reduced and stored one element at a time, 3.3x slower than with 25 lanes (PP-OCR rec's
    softmax, benchmarks/results/odd-rows-2026-12-08.md). Unlike the full-extent odd vectors of
    pick_vector's note, the vector here is a small piece of a long row."""
    width = pick_vector(length, lanes)
    if length is None or width >= 4:
        return width
    divisors = [d for d in range(max(lanes // 2, 3), 2 * lanes + 1) if length % d == 0]
    return divisors[-1] if divisors else width


def parallel_outer(sch: s_tir.Schedule, loops: list[LoopRV], inner_elements: int) -> LoopRV | None:
    """Fuses leading loops until there are enough parallel chunks, marks the fused
    loop parallel, and returns it (None when there is nothing to parallelize).

    A symbolic loop (a range compile's batch) is fused like the others and counted at the
    range's smallest point (graphopt.kernels.schedules.symbolic): the chunks then grow with the
    batch, and a batch-1 call pays a thread launch only where a batch-1 compile would."""
    if not loops:
        return None
    count, taken = 1, 0
    for loop in loops:
        size = extent(sch, loop)
        if size is None:
            size = symbolic.static_factor(sch.get(loop).extent) or 1
        count *= size
        taken += 1
        rest = inner_elements
        for other in loops[taken:]:
            rest *= extent(sch, other) or 1
        if count >= MIN_PARALLEL_CHUNKS or rest <= MAX_SERIAL_ELEMENTS:
            break
    if taken == 0:
        return None
    fused = sch.fuse(*loops[:taken]) if taken > 1 else loops[0]
    if count > 1:
        sch.parallel(fused)
    return fused


def vectorize_inner(sch: s_tir.Schedule, loop: LoopRV, lanes: int, pick=pick_vector) -> None:
    """Vectorizes the innermost loop with a length that divides it (`pick`: pick_vector or row_vector)."""
    length = extent(sch, loop)
    if length is None:  # symbolic: a vector length dividing every value of it (its static factor)
        length = symbolic.static_factor(sch.get(loop).extent)
    width = pick(length, lanes)
    if width < 2:
        return
    if extent(sch, loop) != width:
        _, loop = sch.split(loop, factors=[None, width])
    sch.vectorize(loop)
