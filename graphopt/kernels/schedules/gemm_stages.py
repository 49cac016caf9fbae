"""The GEMM rule's operand stages: the reindexed [S, I, J, K] form (step 1-2 of gemm.py's design), the
packed and padded copies of the operands, weights marked for packing at compile time, the fused epilogue.

Split from gemm.py, whose design comment says what each step is for.
"""

from __future__ import annotations

from tvm import ir as tvm_ir
from tvm import s_tir, tirx
from tvm import sym as tvm_arith
from tvm.ir.expr import TensorLoad
from tvm.s_tir.dlight.gpu.matmul import make_iter_fusion_index_map

from graphopt.kernels.schedules import common, epilogue, in_place_rows, symbolic
from graphopt.kernels.schedules.gemm_match import I_, J_, K_, S_, iter_traits


def producer_of(sch: s_tir.Schedule, block, buffer) -> object | None:
    for producer in sch.get_producers(block):
        if any(w.source.same_as(buffer) for w in sch.get(producer).writes):
            return producer
    return None


def is_identity_copy(sch: s_tir.Schedule, block) -> bool:
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



def normalize(sch: s_tir.Schedule, main, vec_i: bool, tile_rows: int, tile_width: int) -> tuple:
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
    inline_epilogue(sch, reindex_c)
    sch.transform_block_layout(main, make_iter_fusion_index_map(blk_tr, [S_, I_, J_, K_]))
    _, i, j, _ = sch.get_loops(main)
    u_loop, v_loop = (j, i) if vec_i else (i, j)
    # pad to whole tiles: a multiple of the tile, symbolic or not (1: already whole)
    pad_u = 1 if symbolic.divides(sch.get(u_loop).extent, tile_rows) else tile_rows
    pad_v = 1 if symbolic.divides(sch.get(v_loop).extent, tile_width) else tile_width
    if (pad_u, pad_v) != (1, 1):
        sch.pad_einsum(main, [1, pad_v if vec_i else pad_u, pad_u if vec_i else pad_v, 1])
    reads = sch.get(main).reads
    stage_a, stage_b = (producer_of(sch, main, r.source) for r in reads[:2])
    return (stage_b, stage_a) if vec_i else (stage_a, stage_b)


def block_by_tile(sch: s_tir.Schedule, stage, vector_operand: bool, width: int) -> None:
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


def schedule_packing(sch: s_tir.Schedule, stage, lanes: int) -> None:
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
    if all(map(symbolic.is_static, extents)) \
            or symbolic.nominal(symbolic.product(extents)) >= MIN_SYMBOLIC_PARALLEL_COPY:
        common.parallel_outer(sch, loops[:-1], inner)
    common.vectorize_inner(sch, loops[-1], lanes)


# A symbolic packing stage with fewer elements than this (symbols at NOMINAL) is copied serially.
MIN_SYMBOLIC_PARALLEL_COPY = 1 << 17



def read_rows_in_place(sch: s_tir.Schedule, u_stage, u_size, keep_padding: bool) -> bool:
    """Inlines a symbolic broadcast operand's zero-padded copy into the GEMM, to be read in place through
    clamped rows (graphopt.kernels.schedules.in_place_rows); a fixed-shape kernel is never touched."""
    if u_stage is None or keep_padding or symbolic.is_static(u_size) or reads_weight(sch, u_stage):
        return False
    if not in_place_rows.is_row_padding(sch, u_stage):
        return False
    sch.compute_inline(u_stage)
    return True


def read_vector_operand_in_place(sch: s_tir.Schedule, main, u_stage, v_stage, vec_i: bool, v_size,
                                 tile_width: int) -> list:
    """The `read_v` knob: the vector operand (a convolution's data, vectors over output positions) read in
    place from the data, through a padded copy made once per run, instead of an im2col matrix packed per run;
    the broadcast operand is the weights. Returns the padded copies (stages to schedule), [] for an unpadded
    convolution.

    Why: a convolution with few output channels that do not fill whole vectors (PP-OCR det's 96->24 3x3 at
    160x160) wastes a quarter of every vector as a direct convolution over channels (24 of 32 lanes), and
    packs 9 copies of its data per run as an im2col GEMM over positions. Read in place, the data's rows
    are loaded as vectors at each window offset: no packing, no idle lanes."""
    if not vec_i or v_stage is None or reads_weight(sch, v_stage) or is_identity_copy(sch, v_stage):
        raise ValueError("read_v needs a windowed convolution's data as the vector operand")
    if not symbolic.divides(v_size, tile_width):
        raise ValueError("read_v: whole tiles must cover the positions (a padded operand is an im2col copy)")
    data = sch.get(v_stage).reads[0].source
    sch.compute_inline(v_stage)
    stages = padding_stages(sch, main, u_stage)
    if stages:
        data = sch.get(stages[-1]).writes[0].source
    if not vector_loads_contiguous(sch.get(main), data, tile_width):
        raise ValueError("read_v: a tile's positions are not consecutive in the data (a stride, a row break)")
    return stages


def vector_loads_contiguous(block: s_tir.SBlock, data, width: int) -> bool:
    """Whether every tile of `width` consecutive positions (the block's I iterator, [S, I, J, K]) reads
    `data` at consecutive addresses along its last axis, the other indices unchanged: the vector operand
    then loads as whole vectors, not gathered lane by lane (a strided convolution, a tile crossing an
    output row)."""
    loads = [load for load in _loads(block.body.value) if load.source.same_as(data)]
    position = block.iter_vars[1]
    extent = position.dom.extent
    if len(loads) != 1 or not symbolic.is_static(extent) or int(extent) % width:
        return False
    dtype = position.var.ty.dtype
    tile, lane = tirx.Var("tile", dtype), tirx.Var("lane", dtype)
    analyzer = tvm_arith.Analyzer()
    analyzer.bind(tile, tvm_ir.Range(0, int(extent) // width))
    analyzer.bind(lane, tvm_ir.Range(0, width))
    first = tile * tirx.const(width, dtype)
    expected = [tirx.const(0, dtype)] * (len(loads[0].indices) - 1) + [lane]
    for index, step in zip(loads[0].indices, expected):
        moved = in_place_rows.substitute(index, position.var, first + lane)
        start = in_place_rows.substitute(index, position.var, first)
        if moved is None or start is None or not analyzer.can_prove_equal(moved - start, step):
            return False
    return True


def _loads(value) -> list:
    """Every buffer load in an expression tree of arithmetic, casts and calls."""
    if isinstance(value, TensorLoad):
        return [value]
    parts = [getattr(value, name, None) for name in ("a", "b", "value")] + list(getattr(value, "args", []) or [])
    return [load for part in parts if part is not None for load in _loads(part)]


def padding_stages(sch: s_tir.Schedule, main, packed_operand) -> list:
    """The data's padded copy, kept as a stage of its own (`pad_copy`, `read_v`): inlined, every
    multiply-add of a padded convolution read in place tests four bounds (an
    if_then_else), copied once per run it tests none. `packed_operand`: the other operand's
    packing stage (None: none), left as it is."""
    stages = []
    for producer in sch.get_producers(main):
        if packed_operand is not None and sch.get(producer).same_as(sch.get(packed_operand)):
            continue
        epilogue.inline_producers(sch, producer)
        if is_identity_copy(sch, producer):  # TOPI's pad_temp of an unpadded convolution
            sch.compute_inline(producer)
        else:
            stages.append(producer)
    return stages



# TVM's marker for a stage that SplitLayoutRewritePreproc moves out of the kernel
PREPACK_MARK = "meta_schedule.layout_rewrite_preproc"


def reads_weight(sch: s_tir.Schedule, stage) -> bool:
    """Does this packing stage only reorder a weight (a parameter the Relax program
    passes straight from its own weights, listed in the kernel's `layout_free_buffers`)?"""
    func = sch.mod["main"]
    free = func.attrs.get("layout_free_buffers") if func.attrs is not None else None
    stmt = sch.get(stage)
    if not free or len(stmt.reads) != 1 or len(stmt.writes) != 1:
        return False
    return any(stmt.reads[0].source.same_as(func.params[int(i)]) for i in free)


def mark_prepack(sch: s_tir.Schedule, stage) -> None:
    """Marks a weight's packing stage: graphopt.lowering.prepack then packs that weight
    once at compile time instead of on every run (ONNX Runtime prepacks its weights
    too; for resnet50 the per-run copy was about 100 MB)."""
    if reads_weight(sch, stage):
        sch.annotate(stage, PREPACK_MARK, 1)



def inline_epilogue(sch: s_tir.Schedule, writeback) -> None:
    """Step 4: bias/activation/residual blocks become part of the write-back
    (raises when they cannot: the rule then declines the kernel)."""
    while True:
        consumer = epilogue.fold_epilogue(sch, writeback)
        if consumer is None:
            return
        sch.reverse_compute_inline(consumer)


