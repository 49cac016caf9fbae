"""Matmul, dense, batched matmul and 2-D convolution on CPU, as one GEMM rule.

Design. A kernel matches when its one reduction block has the form
C[S, I, J] += A[S, I, K] * B[S, J, K] up to a re-indexing of its iterators: a
matmul directly, a convolution through im2col (the data's reindex buffer *is* the
im2col matrix, built by `sch.reindex` from the block's own access pattern; the
rule never looks at names). Iterators that index A and C but not B are I, those
of B and C but not A are J, the reduced ones K, and those of all three S.

  1. reindex A, B, C into [S, I, K], [S, J, K] / [S, K, J] and [S, I, J] (C as
     [S, J, I] when I is the vector axis, so the local tile is V-innermost and
     its write-back is whole vectors; an NCHW conv's output is then a plain copy)
     and pad I, J to whole register tiles (pad_einsum) when they do not divide;
  2. one axis becomes the vector axis V (the one the output is contiguous in when
     its extent is a multiple of the vector width, else the other; for a windowed
     convolution the output channels, its data read in place: the direct
     convolution, see gemm_match.direct_tile), the other the broadcast axis U;
     the V operand is packed [K, V] so a vector load reads it
     (a U operand read in place goes through the convolution's padding: with the
     `pad_copy` knob from a padded copy made once per run, not by bounds tests);
     with the `read_v` knob a convolution's data, as the V operand over output
     positions, is read in place from its padded copy instead of packed
     (gemm_stages.read_vector_operand_in_place; the default where output channels
     do not fill whole vectors: gemm_match.default_read_v);
  3. register tile: U x (NV * lanes) accumulators in a local buffer, about as many
     vectors as the register file holds minus the operands (more spills), with
     K innermost but one (split back into the kernel's own reduction iterators);
     tiles are grouped in V blocks whose operand slice fits L2, the U tiles
     sweeping each block (see _block_tiles); the parallel loop is (S, V block,
     U tile). When the weights fit L2, an im2col operand is instead packed one V
     tile at a time inside the parallel loop (S, V tile) (see _pack_in_tile);
     annotations go on before decompose_reduction;
  4. the fused epilogue (bias, ReLU, residual add, and swish / hardswish, which
     read the value twice and are first folded into one block) is inlined into
     the tile's write-back; packing and padding stages are parallel and vectorized;
  5. both operands are prefetched some reduction steps ahead (prefetch.py): in a
     model the weights come from memory, not from the cache a warm timing sees.

Grouped convolutions reach this rule through grouped.py (split per group first).

Files: gemm_match.py (which kernels match, the vector axis and tile from their shape), gemm_stages.py
(steps 1-2 and 4: the reindexed form, operand copies, weights packed at compile time, the epilogue),
gemm_tile.py (step 3: the register tile, blocking, the parallel loop); this file is the rule and the
order of the steps.

Symbolic extents (a range compile): usually only the I side (batch, batch * seq, a convolution's
batch * H * W) is symbolic. The same steps apply; the choices read the extent through
graphopt.kernels.schedules.symbolic (divisibility from its static factor, sizes at a nominal
value), an axis no tile provably divides is padded to a symbolic multiple by pad_einsum, and the
weights' prepacked layout is the fixed compile's (it depends on K and J only). The padded broadcast
operand is then read in place through clamped rows (in_place_rows), and a padded symbolic vector axis
(attention scores' keys) gets a second nest, its last tile shifted back, chosen when a call's axis
holds a whole tile (overlap_tail): no per-call padded copies, whole-vector write-backs.
"""

from __future__ import annotations

from tvm import s_tir, tirx
from tvm.s_tir.dlight.base import ScheduleRule
from tvm.target import Target

from graphopt.kernels.schedules import common, epilogue, in_place_rows, overlap_tail, symbolic
from graphopt.kernels.schedules.gemm_match import (
    I_,
    J_,
    K_,
    MAX_CONTIGUOUS_PADDING,
    MAX_PACKING_BLOWUP,
    S_,
    IterKind,
    Tile,
    choose_tile,
    classify,
    default_read_v,
    direct_tile,
    extent_of,
    iter_traits,
    packing_blowup,
    rows_for,
    vector_axis_is_i,
)
from graphopt.kernels.schedules.gemm_stages import (
    PREPACK_MARK,
    block_by_tile,
    is_identity_copy,
    mark_prepack,
    normalize,
    padding_stages,
    read_rows_in_place,
    read_vector_operand_in_place,
    reads_weight,
    schedule_packing,
)
from graphopt.kernels.schedules.gemm_tile import BLOCK_BYTES, pack_in_tile, register_tile


class GEMM(ScheduleRule):
    """Matmul-like kernels (dense, batched matmul, conv2d via im2col) on CPU."""

    name = "gemm"

    def apply(self, func: tirx.PrimFunc, target: Target, _tunable: bool) -> s_tir.Schedule | None:
        return self.schedule(func, target, {})

    def schedule(self, func: tirx.PrimFunc, target: Target, knobs: dict) -> s_tir.Schedule | None:
        """The rule with its tunable choices (see KNOBS) overridden by `knobs`. A symbolic vector axis that
        no tile divides gets two nests, chosen at run time: its last tile shifted back when the axis holds a
        whole tile, padded otherwise (graphopt.kernels.schedules.overlap_tail)."""
        from graphopt.kernels.schedules import has_symbolic_shape

        if not knobs:  # the default: the data read in place where that suits the kernel (default_read_v)
            read_v = self._schedule_once(func, target, {DEFAULT_READ_V: True})
            if read_v is not None:
                return read_v
        padded = self._schedule_once(func, target, knobs)
        if padded is None or OVERLAP in knobs or not has_symbolic_shape(func) or _has_prepack_stage(padded):
            return padded  # a weight-packing stage must stay at the top (SplitLayoutRewritePreproc)
        variant = {**knobs, OVERLAP: True}
        shifted = self._schedule_once(func, target, variant)
        if shifted is None or OVERLAP_GUARD not in variant:
            return padded
        from graphopt.kernels.schedules.by_size import choose

        return choose(variant[OVERLAP_GUARD], shifted.mod["main"], padded.mod["main"], ("whole_tiles", "padded"))

    def _schedule_once(self, func: tirx.PrimFunc, target: Target, knobs: dict) -> s_tir.Schedule | None:
        started = common.start(func, target)
        if started is None:
            return None
        sch, infos = started
        main = single_reduction(sch, infos)
        if main is None or not try_schedule(sch, main, target, knobs):
            return None
        return sch


def _has_prepack_stage(sch: s_tir.Schedule) -> bool:
    """Whether a top-level stage is marked for compile-time weight packing (gemm_stages.mark_prepack)."""
    root = sch.get_sblock("root")
    return any(PREPACK_MARK in (sch.get(block).annotations or {}) for block in sch.get_child_blocks(root))


def single_reduction(sch: s_tir.Schedule, infos: list):
    """The kernel's one reduction block (all others injective), else None."""
    reductions = [b for b in infos if not b.is_injective()]
    if len(reductions) != 1:
        return None
    if any(b.dom_kind().count("R") and b is not reductions[0] for b in infos):
        return None
    return reductions[0].block_rv


def try_schedule(sch: s_tir.Schedule, main, target: Target, knobs: dict | None = None) -> bool:
    """Schedules `main` as a GEMM when it has that form and packing stays cheap;
    False (the schedule possibly half-changed: discard it) otherwise."""
    if iter_traits(sch.get(main)) is None or packing_blowup(sch.get(main)) > MAX_PACKING_BLOWUP:
        return False
    try:
        _schedule(sch, main, target, knobs or {})
    except Exception:  # noqa: BLE001  (a shape the primitives refuse: leave it to the next rule)
        return False
    return True


# Internal to symbolic kernels (not tunable): schedule the shifted-last-tile variant; its run-time guard.
OVERLAP, OVERLAP_GUARD = "_overlap_tail", "_overlap_guard"
# Internal (not tunable): try the default read_v form (gemm_match.default_read_v) before the default schedule.
DEFAULT_READ_V = "_default_read_v"


# The choices a tuner may override (graphopt.kernels.tuning searches them); absent
# keys keep the rule's own choice, so {} is the default schedule. `prefetch` (on by default) is not
# searched: warm timing cannot see what it is for (prefetch.py); False turns it off for a comparison.
KNOBS = ("rows", "vectors", "block_bytes", "swap_axes", "pack_u", "pack_in_tile", "pad_copy", "prefetch", "read_v")


def _schedule(sch: s_tir.Schedule, main, target: Target, knobs: dict) -> None:
    lanes = common.vector_lanes(target)
    _, _, c_tr, blk_tr = iter_traits(sch.get(main))
    if knobs.pop(DEFAULT_READ_V, False):
        knobs.update(default_read_v(sch.get(main), blk_tr, c_tr, target))
    direct = direct_tile(sch.get(main), blk_tr, c_tr, target)
    if direct is not None and not knobs.get("swap_axes", True):
        direct = None  # the tuner asked for the contiguous-output form: its defaults are the old ones
    vec_i = vector_axis_is_i(blk_tr, c_tr, lanes) != bool(knobs.get("swap_axes", direct is not None))
    pack_u = knobs.get("pack_u", None if direct is None else False)
    u_size = extent_of(blk_tr, J_ if vec_i else I_)
    v_size = extent_of(blk_tr, I_ if vec_i else J_)
    tile = choose_tile(target, u_size, v_size) if direct is None or "vectors" in knobs else direct
    if "vectors" in knobs:
        tile = Tile(tile.rows, int(knobs["vectors"]), tile.lanes)
    # the direct tile's rows divide U, so rows_for keeps them
    rows = min(int(knobs["rows"]), symbolic.nominal(u_size)) if "rows" in knobs else rows_for(u_size, tile.rows)
    if knobs and symbolic.nominal(v_size) < tile.lanes:
        # a tuned tile padding a missing (unit) axis wrote every padded row to index 0
        raise ValueError("the vector axis is shorter than a vector")
    if pack_u is False and not symbolic.divides(u_size, rows) and symbolic.is_static(u_size):
        # padding U materializes the broadcast operand anyway (a padded copy per run); a symbolic U is
        # read in place through clamped rows instead (in_place_rows)
        raise ValueError("the broadcast operand read in place needs rows dividing U")
    u_stage, v_stage = normalize(sch, main, vec_i, rows, tile.width)
    v_paddings = []
    if knobs.get("read_v"):
        v_paddings = read_vector_operand_in_place(sch, main, u_stage, v_stage, vec_i, v_size, tile.width)
        v_stage = None
    keep_padding = pack_u is False and bool(knobs.get("pad_copy", direct is not None))
    # operands: the broadcast one is read in place; the vector one stays packed
    for stage in (u_stage, v_stage):
        if stage is not None and not (keep_padding and stage == u_stage):
            epilogue.inline_producers(sch, stage)
    # symbolic: padded operands read in place (clamped rows; the vector operand in the shifted-tile nest)
    clamp = read_rows_in_place(sch, u_stage, u_size, keep_padding)
    if clamp:
        u_stage = None
    overlap = bool(knobs.get(OVERLAP)) and read_rows_in_place(sch, v_stage, v_size, False)
    if overlap:
        v_stage = None
    # a copy onto the same layout is not worth its time, unless it is a weight's
    # (done once, at compile time: then the blocked layout below is free)
    if u_stage is not None and (is_identity_copy(sch, u_stage) and not reads_weight(sch, u_stage)
                                or pack_u is False):
        sch.compute_inline(u_stage)
        u_stage = None
    if v_stage is not None and is_identity_copy(sch, v_stage) and not reads_weight(sch, v_stage):
        sch.compute_inline(v_stage)
        v_stage = None
    if v_stage is not None:
        block_by_tile(sch, v_stage, True, tile.width)
    if u_stage is not None:
        block_by_tile(sch, u_stage, False, rows)
    in_tile = v_stage is not None and pack_in_tile(sch, main, v_stage, u_size, knobs)
    paddings = (padding_stages(sch, main, v_stage) if keep_padding else []) + v_paddings
    if keep_padding and not paddings and knobs.get("pad_copy"):
        raise ValueError("pad_copy on a kernel that pads nothing")
    register_tile(sch, main, tile, rows, vec_i, v_stage if in_tile else None, blk_tr,
                  int(knobs.get("block_bytes", BLOCK_BYTES)), bool(knobs.get("prefetch", True)))
    if clamp and not in_place_rows.clamp_rows(sch, main, 2 if vec_i else 1):
        raise ValueError("the padded broadcast rows could not be clamped")  # never seen: the rule declines
    if overlap:
        bound = overlap_tail.shift_last_tile(sch, main, 1 if vec_i else 2, tile.width)
        if bound is None:
            raise ValueError("the vector axis' last tile could not be shifted")  # the padded nest alone is kept
        knobs[OVERLAP_GUARD] = bound >= tirx.const(tile.width, bound.ty.dtype)
    for stage in paddings:
        schedule_packing(sch, stage, lanes)
    for stage in (u_stage, v_stage):
        if stage is None:
            continue
        if stage == v_stage and in_tile:
            common.vectorize_inner(sch, sch.get_loops(stage)[-1], lanes)
        else:
            schedule_packing(sch, stage, lanes)
            mark_prepack(sch, stage)


__all__ = ["BLOCK_BYTES", "GEMM", "I_", "J_", "KNOBS", "K_", "MAX_CONTIGUOUS_PADDING", "MAX_PACKING_BLOWUP",
           "PREPACK_MARK", "S_", "IterKind", "Tile", "choose_tile", "classify", "iter_traits", "single_reduction",
           "try_schedule"]
