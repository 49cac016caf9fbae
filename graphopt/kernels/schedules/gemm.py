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
     its extent is a multiple of the vector width, else the other), the other
     the broadcast axis U; the V operand is packed [K, V] so a vector load reads it
     (a U operand read in place goes through the convolution's padding: with the
     `pad_copy` knob from a padded copy made once per run, not by bounds tests);
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
     the tile's write-back; packing and padding stages are parallel and vectorized.

Grouped convolutions reach this rule through grouped.py (split per group first).

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

from dataclasses import dataclass

from tvm import s_tir, tirx
from tvm import sym as tvm_arith
from tvm.s_tir.dlight.base import ScheduleRule
from tvm.s_tir.dlight.gpu.matmul import IterKind, IterTrait, make_iter_fusion_index_map
from tvm.target import Target

from graphopt.kernels.schedules import common, epilogue, in_place_rows, overlap_tail, symbolic

S_, I_, J_, K_ = IterKind.kIter_S, IterKind.kIter_I, IterKind.kIter_J, IterKind.kIter_K


@dataclass(frozen=True)
class Tile:
    """Register tile: `rows` broadcast rows times `vectors` vectors of `lanes`."""

    rows: int
    vectors: int
    lanes: int

    @property
    def width(self) -> int:
        return self.vectors * self.lanes


def _axes(region, analyzer: tvm_arith.Analyzer) -> set | None:
    """Iterators an access depends on, after simplifying with their ranges: a grouped
    convolution split into (group, channel) reads `(g*F + f) // F * C + c`, which
    depends on g and c only (sch.reindex simplifies the same way)."""
    axes: set = set()
    for r in region:
        if not (isinstance(r.extent, tirx.IntImm) and r.extent.value == 1):
            return None
        axes |= set(tirx.analysis.undefined_vars(analyzer.simplify(r.min)))
    return axes


def classify(block: s_tir.SBlock) -> tuple[dict, set, set, set] | None:
    """({var: IterTrait}, A's, B's and C's iterators) of a two-input reduction whose
    accesses are single points, with each iterator's kind (S/I/J/K, unit T); None
    when some iterator fits none of the kinds."""
    if len(block.reads) != 2 or len(block.writes) != 1 or block.init is None:
        return None
    analyzer = tvm_arith.Analyzer()
    for iv in block.iter_vars:
        analyzer.bind(iv.var, iv.dom)
    a, b, c = (_axes(access.region, analyzer) for access in (*block.reads, *block.writes))
    if a is None or b is None or c is None:
        return None
    traits = {}
    for iv in block.iter_vars:
        v, unit = iv.var, isinstance(iv.dom.extent, tirx.IntImm) and iv.dom.extent.value == 1
        if unit:
            kind = IterKind.kIter_T
        elif iv.iter_type == tirx.IterVar.DataPar:
            kind = {(1, 1, 1): S_, (1, 0, 1): I_, (0, 1, 1): J_}.get((v in a, v in b, v in c))
        elif iv.iter_type == tirx.IterVar.CommReduce and v in a and v in b and v not in c:
            kind = K_
        else:
            kind = None
        if kind is None:
            return None
        traits[v] = IterTrait(kind, iv.dom.extent)
    reduced = {v for v, t in traits.items() if t.kind == K_}
    if any(not _unit_steps(access.region, reduced, analyzer) for access in block.reads):
        return None
    return traits, a, b, c


def _unit_steps(region, reduced: set, analyzer: tvm_arith.Analyzer) -> bool:
    """Whether every reduced iterator moves each index of an access by exactly one.

    Why: a reduction that strides over an operand (a strided 1x1 convolution's weight gradient,
    dW[o, i] = sum over n, h, w of dY[n, o, h, w] * X[n, i, 2h, 2w]) came out wrong under this
    rule (0.28 off a finite-difference gradient of 0.15; right under the fallback rule and in
    TVM's unscheduled kernel). Until the cause is found such kernels are declined: slower, never
    wrong. Dilated convolutions (h + d*kh) decline too."""
    for r in region:
        index = analyzer.simplify(r.min)
        for var in set(tirx.analysis.undefined_vars(index)) & reduced:
            coefficients = tvm_arith.detect_linear_equation(index, [var])
            if len(coefficients) != 2 or not isinstance(coefficients[0], tirx.IntImm):
                return False
            if abs(int(coefficients[0].value)) != 1:
                return False
    return True


def iter_traits(block: s_tir.SBlock) -> tuple[list[IterTrait], ...] | None:
    """(A, B, C, block) iterator traits of C[S,I,J] += A[S,I,K] * B[S,J,K], or None.

    Unlike dlight's GPU version, a missing I or J is allowed (GEMV-shaped dense
    layers: batch 1 times a weight matrix) and becomes a unit dimension."""
    classified = classify(block)
    if classified is None:
        return None
    traits, a, b, c = classified
    kinds = {t.kind for t in traits.values()}
    if K_ not in kinds or not ({I_, J_} & kinds):
        return None
    if S_ in kinds and not {I_, J_} <= kinds:
        return None  # depthwise windows: see depthwise.py
    pick = lambda axes: [traits[iv.var] for iv in block.iter_vars if iv.var in axes]
    return pick(a), pick(b), pick(c), [traits[iv.var] for iv in block.iter_vars]


def _extent_of(traits: list[IterTrait], kind: IterKind):
    """The fused extent of one kind of iterator: an int, or a product of symbols and an int."""
    return symbolic.product(t.extent for t in traits if t.kind == kind)


def _output_contiguous_kind(c_traits: list[IterTrait]) -> IterKind | None:
    """The kind of the output's innermost non-unit axis: where vector stores go."""
    for t in reversed(c_traits):
        if t.kind != IterKind.kIter_T:
            return t.kind
    return None


def choose_tile(target: Target, u_extent, v_extent) -> Tile:
    """Register tile for a U x V output: rows * vectors accumulators fill the vector
    registers but leave room for the operands (16 -> 12, 32 -> 24). Several vectors
    per broadcast value even when V needs a little padding for them (169 -> 176:
    5 x 2 vectors ran 1.7x faster than 10 x 1 on squeezenet's last convolution).
    Symbolic extents: see graphopt.kernels.schedules.symbolic."""
    lanes = common.vector_lanes(target)
    budget = common.vector_registers(target) * 3 // 4
    vectors = 1
    for candidate in ((4, 2) if budget >= 24 else (2,)):
        if symbolic.padding_waste(v_extent, candidate * lanes) <= MAX_CONTIGUOUS_PADDING:
            vectors = candidate
            break
    rows = max(1, min(budget // vectors, symbolic.nominal(u_extent)))
    return Tile(rows, vectors, lanes)


def _pad(size: int, multiple: int) -> int:
    return -(-size // multiple) * multiple


# im2col of a KxK window copies the data about K*K times; a grouped convolution
# seen as a GEMM would copy it once per output channel: those go to other rules.
MAX_PACKING_BLOWUP = 27


def _packing_blowup(block: s_tir.SBlock) -> float:
    """Largest (packed operand elements) / (source buffer elements) over A and B."""
    traits = iter_traits(block)
    worst = 1.0
    for region, operand in zip(block.reads[:2], traits[:2]):
        packed = symbolic.nominal(symbolic.product(t.extent for t in operand))
        source = symbolic.nominal(symbolic.product(region.source.shape))
        worst = max(worst, packed / max(source, 1))
    return worst


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
    """Whether a top-level stage is marked for compile-time weight packing (_mark_prepack)."""
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
    if iter_traits(sch.get(main)) is None or _packing_blowup(sch.get(main)) > MAX_PACKING_BLOWUP:
        return False
    try:
        _schedule(sch, main, target, knobs or {})
    except Exception:  # noqa: BLE001  (a shape the primitives refuse: leave it to the next rule)
        return False
    return True


def _producer_of(sch: s_tir.Schedule, block, buffer) -> object | None:
    for producer in sch.get_producers(block):
        if any(w.source.same_as(buffer) for w in sch.get(producer).writes):
            return producer
    return None


def _is_identity_copy(sch: s_tir.Schedule, block) -> bool:
    """True when a packing stage copies a buffer onto the same flat layout (a plain
    matmul's weight already [K, N], a 1x1 convolution's data already [C, H*W]):
    then packing only costs a copy and reading the source directly is as good."""
    stmt = sch.get(block)
    if len(stmt.reads) != 1 or len(stmt.writes) != 1:
        return False

    def flat(region, buffer):
        offset = 0
        for r, dim in zip(region.region, buffer.shape):
            offset = offset * dim + r.min
        return offset

    read, write = stmt.reads[0], stmt.writes[0]
    analyzer = tvm_arith.Analyzer()
    difference = analyzer.simplify(flat(read, read.source) - flat(write, write.source))
    return isinstance(difference, tirx.IntImm) and difference.value == 0


# Padding the output-contiguous axis to whole vectors is worth it up to this waste.
MAX_CONTIGUOUS_PADDING = 0.125


def _vector_axis_is_i(blk_traits, c_traits, lanes: int) -> bool:
    """V = the axis the output is contiguous in if it holds whole vectors or nearly
    (13x13 = 169 positions padded to 176), else the other one if that does, else the
    contiguous one (padded). The other axis writes the output one element per vector
    lane: squeezenet's 1000-class 1x1 convolution ran 1.7x slower that way. (Preferring
    a prepacked weight's axis, whose packing is free, made resnet50 1.8x slower end
    to end for the same reason.)"""
    i_size, j_size = _extent_of(blk_traits, I_), _extent_of(blk_traits, J_)
    prefer_i = _output_contiguous_kind(c_traits) == I_
    first, second = (i_size, j_size) if prefer_i else (j_size, i_size)
    long = symbolic.nominal(first) >= lanes
    nearly = long and symbolic.padding_waste(first, lanes) <= MAX_CONTIGUOUS_PADDING
    if symbolic.divides(first, lanes) or nearly or not symbolic.divides(second, lanes) and long:
        return prefer_i
    return not prefer_i


def _rows_for(u_extent, rows: int) -> int:
    """Rows of the register tile: the largest divisor of U not below rows/2, so the
    broadcast operand needs no padding; else `rows` (U gets padded). A symbolic U that no
    such row count divides gets the largest power of two among them: batch sizes and
    sequence lengths are often multiples of one (a 16-row U: 4 rows, like a fixed compile)."""
    candidates = range(rows, max(rows // 2, 1) - 1, -1)
    for r in candidates:
        if symbolic.divides(u_extent, r):
            return r
    if symbolic.is_static(u_extent):
        return rows
    return max(r for r in candidates if r & (r - 1) == 0)


def _normalize(sch: s_tir.Schedule, main, vec_i: bool, tile_rows: int, tile_width: int) -> tuple:
    """Steps 1-2: reindex into [S, I, J, K] with the V operand packed [S, K, V];
    pads U and V to whole tiles. Returns (u_operand_stage, v_operand_stage)."""
    reindex_a = sch.reindex(main, ("read", 0))
    reindex_b = sch.reindex(main, ("read", 1))
    reindex_c = sch.reindex(main, ("write", 0))
    a_tr, b_tr, c_tr, blk_tr = iter_traits(sch.get(main))
    a_order = [S_, K_, I_] if vec_i else [S_, I_, K_]
    b_order = [S_, J_, K_] if vec_i else [S_, K_, J_]
    for stage, traits, order in ((reindex_a, a_tr, a_order), (reindex_b, b_tr, b_order)):
        layout = make_iter_fusion_index_map(traits, order)
        sch.transform_layout(stage, ("write", 0), layout)
        sch.transform_block_layout(stage, layout)  # packing loops follow the packed layout
    # the tile (and its local accumulators) keep V innermost: vector loads and stores
    c_order = [S_, J_, I_] if vec_i else [S_, I_, J_]
    sch.transform_layout(reindex_c, ("read", 0), make_iter_fusion_index_map(c_tr, c_order))
    # before padding: the write-back then keeps the [S, I, J] domain as its bound
    # (inlined after pad_einsum, a grouped conv's g*F + f < G*F lost f < F)
    _inline_epilogue(sch, reindex_c)
    sch.transform_block_layout(main, make_iter_fusion_index_map(blk_tr, [S_, I_, J_, K_]))
    _, i, j, _ = sch.get_loops(main)
    u_loop, v_loop = (j, i) if vec_i else (i, j)
    # pad to whole tiles: a multiple of the tile, symbolic or not (1: already whole)
    pad_u = 1 if symbolic.divides(sch.get(u_loop).extent, tile_rows) else tile_rows
    pad_v = 1 if symbolic.divides(sch.get(v_loop).extent, tile_width) else tile_width
    if (pad_u, pad_v) != (1, 1):
        sch.pad_einsum(main, [1, pad_v if vec_i else pad_u, pad_u if vec_i else pad_v, 1])
    reads = sch.get(main).reads
    stage_a, stage_b = (_producer_of(sch, main, r.source) for r in reads[:2])
    return (stage_b, stage_a) if vec_i else (stage_a, stage_b)


def _block_by_tile(sch: s_tir.Schedule, stage, vector_operand: bool, width: int) -> None:
    """[S, K, V] -> [S, V / width, K, width] (the vector operand) or [S, U, K] ->
    [S, U / rows, K, rows] (the broadcast one): what one register tile reads for
    consecutive k is then consecutive in memory (one stream the prefetcher follows,
    instead of one cache line per k per vector or row). Measured end to end: V
    blocked, resnet50 0.73x and inception_v1 0.93x; U blocked too, a further
    0.93x / 0.83x, squeezenet 0.82x."""
    if vector_operand:
        layout = lambda s, k, v: (s, v // width, k, v % width)
    else:
        layout = lambda s, u, k: (s, u // width, k, u % width)
    sch.transform_layout(stage, ("write", 0), layout)
    sch.transform_block_layout(stage, layout)


def _schedule_packing(sch: s_tir.Schedule, stage, lanes: int) -> None:
    """A materialized packing stage (im2col, transposed weights): parallel over its
    outer loops, vectorized over the innermost when the extent allows.

    A symbolic stage (a range compile's padded copy of an activation) runs serially below
    MIN_SYMBOLIC_PARALLEL_COPY elements at the nominal size: a copy is memory-bound, and a second
    parallel region per kernel is a second thread launch. Measured on the encoder's attention
    kernels (2 threads, shared 2-core VM, load 2.7): batch 1 x seq 16, scores 33 -> 5.8 us and
    context 33 -> 6.8 us serial; batch 16 x seq 128, 1714 -> 1569 us and 764 -> 738 us."""
    loops = sch.get_loops(stage)
    inner = common.extent(sch, loops[-1]) or 1
    extents = [sch.get(loop).extent for loop in loops]
    if all(map(symbolic.is_static, extents)) or symbolic.nominal(symbolic.product(extents)) >= MIN_SYMBOLIC_PARALLEL_COPY:
        common.parallel_outer(sch, loops[:-1], inner)
    common.vectorize_inner(sch, loops[-1], lanes)


# A symbolic packing stage with fewer elements than this (symbols at NOMINAL) is copied serially.
MIN_SYMBOLIC_PARALLEL_COPY = 1 << 17


# Internal to symbolic kernels (not tunable): schedule the shifted-last-tile variant; its run-time guard.
OVERLAP, OVERLAP_GUARD = "_overlap_tail", "_overlap_guard"


# The choices a tuner may override (graphopt.kernels.tuning searches them); absent
# keys keep the rule's own choice, so {} is the default schedule.
KNOBS = ("rows", "vectors", "block_bytes", "swap_axes", "pack_u", "pack_in_tile", "pad_copy")


def _schedule(sch: s_tir.Schedule, main, target: Target, knobs: dict) -> None:
    lanes = common.vector_lanes(target)
    _, _, c_tr, blk_tr = iter_traits(sch.get(main))
    vec_i = _vector_axis_is_i(blk_tr, c_tr, lanes) != bool(knobs.get("swap_axes", False))
    u_size = _extent_of(blk_tr, J_ if vec_i else I_)
    v_size = _extent_of(blk_tr, I_ if vec_i else J_)
    tile = choose_tile(target, u_size, v_size)
    if "vectors" in knobs:
        tile = Tile(tile.rows, int(knobs["vectors"]), tile.lanes)
    rows = min(int(knobs["rows"]), symbolic.nominal(u_size)) if "rows" in knobs else _rows_for(u_size, tile.rows)
    if knobs and symbolic.nominal(v_size) < tile.lanes:
        # a tuned tile padding a missing (unit) axis wrote every padded row to index 0
        raise ValueError("the vector axis is shorter than a vector")
    if knobs.get("pack_u") is False and not symbolic.divides(u_size, rows) and symbolic.is_static(u_size):
        # padding U materializes the broadcast operand anyway (a padded copy per run); a symbolic U is
        # read in place through clamped rows instead (in_place_rows)
        raise ValueError("the broadcast operand read in place needs rows dividing U")
    u_stage, v_stage = _normalize(sch, main, vec_i, rows, tile.width)
    keep_padding = knobs.get("pack_u") is False and bool(knobs.get("pad_copy", False))
    # operands: the broadcast one is read in place; the vector one stays packed
    for stage in (u_stage, v_stage):
        if stage is not None and not (keep_padding and stage == u_stage):
            epilogue.inline_producers(sch, stage)
    # symbolic: padded operands read in place (clamped rows; the vector operand in the shifted-tile nest)
    clamp = _read_rows_in_place(sch, u_stage, u_size, keep_padding)
    if clamp:
        u_stage = None
    overlap = bool(knobs.get(OVERLAP)) and _read_rows_in_place(sch, v_stage, v_size, False)
    if overlap:
        v_stage = None
    # a copy onto the same layout is not worth its time, unless it is a weight's
    # (done once, at compile time: then the blocked layout below is free)
    if u_stage is not None and (_is_identity_copy(sch, u_stage) and not _reads_weight(sch, u_stage)
                                or knobs.get("pack_u") is False):
        sch.compute_inline(u_stage)
        u_stage = None
    if v_stage is not None and _is_identity_copy(sch, v_stage) and not _reads_weight(sch, v_stage):
        sch.compute_inline(v_stage)
        v_stage = None
    if v_stage is not None:
        _block_by_tile(sch, v_stage, True, tile.width)
    if u_stage is not None:
        _block_by_tile(sch, u_stage, False, rows)
    in_tile = v_stage is not None and _pack_in_tile(sch, main, v_stage, u_size, knobs)
    paddings = _padding_stages(sch, main, v_stage) if keep_padding else []
    if keep_padding and not paddings:
        raise ValueError("pad_copy on a kernel that pads nothing")
    _register_tile(sch, main, tile, rows, vec_i, v_stage if in_tile else None, blk_tr,
                   int(knobs.get("block_bytes", BLOCK_BYTES)))
    if clamp and not in_place_rows.clamp_rows(sch, main, 2 if vec_i else 1):
        raise ValueError("the padded broadcast rows could not be clamped")  # never seen: the rule declines
    if overlap:
        bound = overlap_tail.shift_last_tile(sch, main, 1 if vec_i else 2, tile.width)
        if bound is None:
            raise ValueError("the vector axis' last tile could not be shifted")  # the padded nest alone is kept
        knobs[OVERLAP_GUARD] = bound >= tirx.const(tile.width, bound.ty.dtype)
    for stage in paddings:
        _schedule_packing(sch, stage, lanes)
    for stage in (u_stage, v_stage):
        if stage is None:
            continue
        if stage == v_stage and in_tile:
            common.vectorize_inner(sch, sch.get_loops(stage)[-1], lanes)
        else:
            _schedule_packing(sch, stage, lanes)
            _mark_prepack(sch, stage)


def _read_rows_in_place(sch: s_tir.Schedule, u_stage, u_size, keep_padding: bool) -> bool:
    """Inlines a symbolic broadcast operand's zero-padded copy into the GEMM, to be read in place through
    clamped rows (graphopt.kernels.schedules.in_place_rows); a fixed-shape kernel is never touched."""
    if u_stage is None or keep_padding or symbolic.is_static(u_size) or _reads_weight(sch, u_stage):
        return False
    if not in_place_rows.is_row_padding(sch, u_stage):
        return False
    sch.compute_inline(u_stage)
    return True


def _padding_stages(sch: s_tir.Schedule, main, v_stage) -> list:
    """The data's padded copy, kept as a stage of its own (`pad_copy`): inlined, every
    multiply-add of a padded convolution read in place tests four bounds (an
    if_then_else), copied once per run it tests none."""
    stages = []
    for producer in sch.get_producers(main):
        if v_stage is not None and sch.get(producer).same_as(sch.get(v_stage)):
            continue
        epilogue.inline_producers(sch, producer)
        if _is_identity_copy(sch, producer):  # TOPI's pad_temp of an unpadded convolution
            sch.compute_inline(producer)
        else:
            stages.append(producer)
    return stages


def _register_tile(sch: s_tir.Schedule, main, tile: Tile, rows: int, vec_i: bool, in_tile_stage,
                   blk_tr: list[IterTrait], block_bytes: int) -> None:
    """Step 3: rows x width output tiles accumulated in registers over the whole
    reduction, the parallel loop over (S, V block, U tile), or over (S, V tile) with
    `in_tile_stage` (the vector operand) packed inside it; the epilogue in the
    write-back."""
    s, i, j, k = sch.get_loops(main)
    u, v = (j, i) if vec_i else (i, j)
    uo, ui = sch.split(u, factors=[None, rows])
    vo, vi = sch.split(v, factors=[None, tile.width])
    vio, vii = sch.split(vi, factors=[None, tile.lanes])
    k_extent = symbolic.nominal(sch.get(k).extent)
    ks = _split_reduction(sch, k, blk_tr)
    writeback = sch.cache_write(main, 0, "local")
    if in_tile_stage is not None:
        sch.reorder(s, vo, uo, *ks, ui, vio, vii)
        outer = sch.fuse(s, vo)
        _parallel(sch, outer, main)
        sch.reverse_compute_at(writeback, uo, preserve_unit_loops=True)
        sch.compute_at(in_tile_stage, outer, preserve_unit_loops=True)
    else:
        vb, vo = _split_blocks(sch, vo, k_extent * tile.width * 4, block_bytes)
        sch.reorder(s, vb, uo, vo, *ks, ui, vio, vii)
        _parallel(sch, sch.fuse(s, vb, uo), main)
        sch.reverse_compute_at(writeback, vo, preserve_unit_loops=True)
    _inline_epilogue(sch, writeback)
    sch.unroll(ui)
    sch.unroll(vio)
    sch.vectorize(vii)
    sch.decompose_reduction(main, ks[0])  # the init inherits the update's unroll/vector loops
    _vectorize_tile(sch, writeback, tile.lanes)


# A GEMM with a symbolic parallel loop and fewer multiply-adds than this (symbols at NOMINAL) runs serially.
MIN_SYMBOLIC_PARALLEL_MACS = 1 << 16


def _parallel(sch: s_tir.Schedule, loop, main) -> None:
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


def _pack_in_tile(sch: s_tir.Schedule, main, v_stage, u_size: int, knobs: dict) -> bool:
    """Pack the vector operand one V tile at a time, inside the parallel tile loop,
    right before the U tiles consume it (instead of materializing all of it first)?
    An im2col matrix is 9x a 3x3 convolution's data: with few output channels
    (densenet's 32) each packed element feeds only 32 multiply-adds, so writing it
    to memory and reading it back costs about as much as the arithmetic. Packed per
    tile it stays in L1/L2. Only for activations: a weight is packed at compile time."""
    if _reads_weight(sch, v_stage):
        return False
    if "pack_in_tile" in knobs:
        return bool(knobs["pack_in_tile"])
    k_extent = symbolic.nominal(sch.get(sch.get_loops(main)[-1]).extent)
    return symbolic.nominal(u_size) * k_extent * 4 <= IN_TILE_U_BYTES


def _split_reduction(sch: s_tir.Schedule, k, blk_tr: list[IterTrait]) -> list:
    """Splits the fused reduction loop back into the kernel's own reduction iterators
    (a convolution's channel, window row, window column): an operand read in place
    is then addressed by sums of loop variables, not by `k // 9`, `k % 9 // 3`,
    `k % 3` computed for every multiply-add."""
    extents = [t.extent for t in blk_tr if t.kind == K_]
    if len(extents) < 2 or not all(symbolic.is_static(e) for e in extents):
        return [k]
    extents = [int(e) for e in extents]
    return list(sch.split(k, factors=extents))


# TVM's marker for a stage that SplitLayoutRewritePreproc moves out of the kernel
PREPACK_MARK = "meta_schedule.layout_rewrite_preproc"


def _reads_weight(sch: s_tir.Schedule, stage) -> bool:
    """Does this packing stage only reorder a weight (a parameter the Relax program
    passes straight from its own weights, listed in the kernel's `layout_free_buffers`)?"""
    func = sch.mod["main"]
    free = func.attrs.get("layout_free_buffers") if func.attrs is not None else None
    stmt = sch.get(stage)
    if not free or len(stmt.reads) != 1 or len(stmt.writes) != 1:
        return False
    return any(stmt.reads[0].source.same_as(func.params[int(i)]) for i in free)


def _mark_prepack(sch: s_tir.Schedule, stage) -> None:
    """Marks a weight's packing stage: graphopt.lowering.prepack then packs that weight
    once at compile time instead of on every run (ONNX Runtime prepacks its weights
    too; for resnet50 the per-run copy was about 100 MB)."""
    if _reads_weight(sch, stage):
        sch.annotate(stage, PREPACK_MARK, 1)


# A block of V tiles whose packed operand slice fits in about half of L2.
BLOCK_BYTES = 1 << 18


def _split_blocks(sch: s_tir.Schedule, vo, bytes_per_tile: int, block_bytes: int) -> tuple:
    """(V block loop, tile-in-block loop): _block_tiles on the tile count; a symbolic count is
    blocked by a divisor of its static factor (an exact split), by 1 when it has none."""
    tiles = sch.get(vo).extent
    if symbolic.is_static(tiles):
        block = _block_tiles(int(tiles), bytes_per_tile, block_bytes)
        return tuple(sch.split(vo, factors=[int(tiles) // block, block]))
    block = _block_tiles(symbolic.static_factor(tiles) or 1, bytes_per_tile, block_bytes)
    return tuple(sch.split(vo, factors=[None, block]))


def _block_tiles(tiles: int, bytes_per_tile: int, block_bytes: int = BLOCK_BYTES) -> int:
    """Tiles per V block: under one block the U tiles sweep the same operand slice
    (kept in L2) and each output row is written as one run of the block's width.
    Sweeping all of U per single tile wrote every output plane 64 bytes at a time
    (96 interleaved write streams in a 1x1 conv: slower than the naive loops)."""
    limit = max(1, block_bytes // max(bytes_per_tile, 1))
    return max(d for d in range(1, min(tiles, limit) + 1) if tiles % d == 0)


def _inline_epilogue(sch: s_tir.Schedule, writeback) -> None:
    """Step 4: bias/activation/residual blocks become part of the write-back
    (raises when they cannot: the rule then declines the kernel)."""
    while True:
        consumer = epilogue.fold_epilogue(sch, writeback)
        if consumer is None:
            return
        sch.reverse_compute_inline(consumer)


def _vectorize_tile(sch: s_tir.Schedule, block, lanes: int) -> None:
    """The tile's write-back loops under the parallel loop follow the local tile's
    layout, V innermost (see _normalize): that loop is vectorized."""
    loops = sch.get_loops(block)
    if len(loops) >= 3:
        common.vectorize_inner(sch, loops[-1], lanes)
