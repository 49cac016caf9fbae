"""The GEMM rule's register tile (step 3 of gemm.py's design): U x V output tiles accumulated in registers,
grouped in V blocks whose operand slice fits L2, the parallel loop, the reduction split back into the
kernel's own iterators.

Split from gemm.py, whose design comment says what each step is for.
"""

from __future__ import annotations

from tvm import s_tir
from tvm.s_tir.dlight.gpu.matmul import IterTrait

from graphopt.kernels.schedules import common, gemm_stages, symbolic
from graphopt.kernels.schedules.gemm_match import K_, Tile
from graphopt.kernels.schedules.prefetch import prefetch_operands


def register_tile(sch: s_tir.Schedule, main, tile: Tile, rows: int, vec_i: bool, in_tile_stage,
                  blk_tr: list[IterTrait], block_bytes: int, prefetch: bool = True) -> None:
    """Step 3: rows x width output tiles accumulated in registers over the whole
    reduction, the parallel loop over (S, V block, U tile), or over (S, V tile) with
    `in_tile_stage` (the vector operand) packed inside it; the epilogue in the
    write-back; with `prefetch`, the operands prefetched ahead in the reduction loop (prefetch.py)."""
    s, i, j, k = sch.get_loops(main)
    u, v = (j, i) if vec_i else (i, j)
    uo, ui = sch.split(u, factors=[None, rows])
    vo, vi = sch.split(v, factors=[None, tile.width])
    vio, vii = sch.split(vi, factors=[None, tile.lanes])
    k_extent = symbolic.nominal(sch.get(k).extent)
    ks = split_reduction(sch, k, blk_tr)
    writeback = sch.cache_write(main, 0, "local")
    if in_tile_stage is not None:
        sch.reorder(s, vo, uo, *ks, ui, vio, vii)
        outer = sch.fuse(s, vo)
        parallel(sch, outer, main)
        sch.reverse_compute_at(writeback, uo, preserve_unit_loops=True)
        sch.compute_at(in_tile_stage, outer, preserve_unit_loops=True)
    else:
        vb, vo = split_blocks(sch, vo, k_extent * tile.width * 4, block_bytes)
        sch.reorder(s, vb, uo, vo, *ks, ui, vio, vii)
        parallel(sch, sch.fuse(s, vb, uo), main)
        sch.reverse_compute_at(writeback, vo, preserve_unit_loops=True)
    gemm_stages.inline_epilogue(sch, writeback)
    sch.unroll(ui)
    sch.unroll(vio)
    sch.vectorize(vii)
    sch.decompose_reduction(main, ks[0])  # the init inherits the update's unroll/vector loops
    vectorize_tile(sch, writeback, tile.lanes)
    if in_tile_stage is None and prefetch:  # an operand packed per tile is in cache already
        prefetch_operands(sch, main, ks, [ui, vio, vii])


# A GEMM with a symbolic parallel loop and fewer multiply-adds than this (symbols at NOMINAL) runs serially.
MIN_SYMBOLIC_PARALLEL_MACS = 1 << 16


def parallel(sch: s_tir.Schedule, loop, main) -> None:
    """Marks the tile loop parallel, unless its extent is symbolic and the whole GEMM is small.

    Why: a parallel loop of one iteration is dropped when its extent is a number, but a symbolic
    one (a batch-1 call of a range artifact) still pays a thread-pool launch: a 32x10 classifier
    took 2.5-5 us instead of 0.3 us. Small GEMMs gain nothing from threads at any batch."""
    if not symbolic.is_static(sch.get(loop).extent):
        macs = symbolic.nominal(symbolic.product(sch.get(block_loop).extent for block_loop in sch.get_loops(main)))
        if macs < MIN_SYMBOLIC_PARALLEL_MACS:
            return
    sch.parallel(loop)


# The broadcast operand (all of U x K) is re-read for every V tile when the vector
# operand is packed tile by tile: worth it while it stays in about half of L2.
IN_TILE_U_BYTES = 1 << 18


def pack_in_tile(sch: s_tir.Schedule, main, v_stage, u_size: int, knobs: dict) -> bool:
    """Pack the vector operand one V tile at a time, inside the parallel tile loop,
    right before the U tiles consume it (instead of materializing all of it first)?
    An im2col matrix is 9x a 3x3 convolution's data: with few output channels
    (densenet's 32) each packed element feeds only 32 multiply-adds, so writing it
    to memory and reading it back costs about as much as the arithmetic. Packed per
    tile it stays in L1/L2. Only for activations: a weight is packed at compile time."""
    if gemm_stages.reads_weight(sch, v_stage):
        return False
    if "pack_in_tile" in knobs:
        return bool(knobs["pack_in_tile"])
    k_extent = symbolic.nominal(sch.get(sch.get_loops(main)[-1]).extent)
    return symbolic.nominal(u_size) * k_extent * 4 <= IN_TILE_U_BYTES


def split_reduction(sch: s_tir.Schedule, k, blk_tr: list[IterTrait]) -> list:
    """Splits the fused reduction loop back into the kernel's own reduction iterators
    (a convolution's channel, window row, window column): an operand read in place
    is then addressed by sums of loop variables, not by `k // 9`, `k % 9 // 3`,
    `k % 3` computed for every multiply-add."""
    extents = [t.extent for t in blk_tr if t.kind == K_]
    if len(extents) < 2 or not all(symbolic.is_static(e) for e in extents):
        return [k]
    extents = [int(e) for e in extents]
    return list(sch.split(k, factors=extents))



# A block of V tiles whose packed operand slice fits in about half of L2.
BLOCK_BYTES = 1 << 18


def split_blocks(sch: s_tir.Schedule, vo, bytes_per_tile: int, block_bytes: int) -> tuple:
    """(V block loop, tile-in-block loop): block_tiles on the tile count; a symbolic count is
    blocked by a divisor of its static factor (an exact split), by 1 when it has none."""
    tiles = sch.get(vo).extent
    if symbolic.is_static(tiles):
        block = block_tiles(int(tiles), bytes_per_tile, block_bytes)
        return tuple(sch.split(vo, factors=[int(tiles) // block, block]))
    block = block_tiles(symbolic.static_factor(tiles) or 1, bytes_per_tile, block_bytes)
    return tuple(sch.split(vo, factors=[None, block]))


def block_tiles(tiles: int, bytes_per_tile: int, block_bytes: int = BLOCK_BYTES) -> int:
    """Tiles per V block: under one block the U tiles sweep the same operand slice
    (kept in L2) and each output row is written as one run of the block's width.
    Sweeping all of U per single tile wrote every output plane 64 bytes at a time
    (96 interleaved write streams in a 1x1 conv: slower than the naive loops)."""
    limit = max(1, block_bytes // max(bytes_per_tile, 1))
    return max(d for d in range(1, min(tiles, limit) + 1) if tiles % d == 0)



def vectorize_tile(sch: s_tir.Schedule, block, lanes: int) -> None:
    """The tile's write-back loops under the parallel loop follow the local tile's
    layout, V innermost (see gemm_stages.normalize): that loop is vectorized."""
    loops = sch.get_loops(block)
    if len(loops) >= 3:
        common.vectorize_inner(sch, loops[-1], lanes)

