"""The GEMM rule's matching: which kernels are C[S, I, J] += A[S, I, K] * B[S, J, K], and the choices read
from their shape alone (the vector axis, the register tile, the rows per tile).

Split from gemm.py (the rule and its steps, whose design comment covers these choices too); depthwise.py
reads the same classification.
"""

from __future__ import annotations

from dataclasses import dataclass

from tvm import s_tir, tirx
from tvm import sym as tvm_arith
from tvm.s_tir.dlight.gpu.matmul import IterKind, IterTrait
from tvm.target import Target

from graphopt.kernels.schedules import common, symbolic

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


def extent_of(traits: list[IterTrait], kind: IterKind):
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
    With 32 registers, 8-row tiles first where U has rows for them (wide_tile).
    Symbolic extents: see graphopt.kernels.schedules.symbolic."""
    lanes = common.vector_lanes(target)
    budget = common.vector_registers(target) * 3 // 4
    if budget >= 24:
        wide = wide_tile(u_extent, v_extent, lanes)
        if wide is not None:
            return wide
    vectors = 1
    for candidate in ((4, 2) if budget >= 24 else (2,)):
        if symbolic.padding_waste(v_extent, candidate * lanes) <= MAX_CONTIGUOUS_PADDING:
            vectors = candidate
            break
    rows = max(1, min(budget // vectors, symbolic.nominal(u_extent)))
    return Tile(rows, vectors, lanes)


# AVX-512 (32 registers): (least U, tile rows, vectors, most padding of V). Measured on a 2-core Xeon
# (rocketlake) over the 1x1 convolutions and matmuls of resnet50, densenet121, inception_v1, squeezenet,
# ocr_det and ocr_rec (`tile-sweep-avx512-2026-12-07`): against the tile below (6 x 4 with rows cut to
# divide U, mostly 4 x 4; 24 x 1 where 4 vectors padded V by over 12.5%) these, with the direct 1x1 tile
# (POINTWISE_DIRECT_POSITIONS), took 0.85x as long in all (the best of the tiles tried per kernel: 0.83x);
# 8 x 2 alone, 0.90x (ocr_det and ocr_rec slower: their U of 240-480 wants 24 accumulators). U under 24
# (12 or 18 channels) keeps the old tile: 8 x 2 there was 1.2-1.3x slower.
WIDE_TILES = ((128, 8, 3, 0.125), (24, 8, 2, 0.25))


def wide_tile(u_extent, v_extent, lanes: int) -> Tile | None:
    """The first of WIDE_TILES whose U and padding of V fit, else None."""
    for least_u, rows, vectors, padding in WIDE_TILES:
        if symbolic.nominal(u_extent) >= least_u and symbolic.padding_waste(v_extent, vectors * lanes) <= padding:
            return Tile(rows, vectors, lanes)
    return None


# im2col of a KxK window copies the data about K*K times; a grouped convolution
# seen as a GEMM would copy it once per output channel: those go to other rules.
MAX_PACKING_BLOWUP = 27


def packing_blowup(block: s_tir.SBlock) -> float:
    """Largest (packed operand elements) / (source buffer elements) over A and B."""
    traits = iter_traits(block)
    worst = 1.0
    for region, operand in zip(block.reads[:2], traits[:2]):
        packed = symbolic.nominal(symbolic.product(t.extent for t in operand))
        source = symbolic.nominal(symbolic.product(region.source.shape))
        worst = max(worst, packed / max(source, 1))
    return worst



# Padding the output-contiguous axis to whole vectors is worth it up to this waste.
MAX_CONTIGUOUS_PADDING = 0.125


def vector_axis_is_i(blk_traits, c_traits, lanes: int) -> bool:
    """V = the axis the output is contiguous in if it holds whole vectors or nearly
    (13x13 = 169 positions padded to 176), else the other one if that does, else the
    contiguous one (padded). The other axis writes the output one element per vector
    lane: squeezenet's 1000-class 1x1 convolution ran 1.7x slower that way. (Preferring
    a prepacked weight's axis, whose packing is free, made resnet50 1.8x slower end
    to end for the same reason.)"""
    i_size, j_size = extent_of(blk_traits, I_), extent_of(blk_traits, J_)
    prefer_i = _output_contiguous_kind(c_traits) == I_
    first, second = (i_size, j_size) if prefer_i else (j_size, i_size)
    long = symbolic.nominal(first) >= lanes
    nearly = long and symbolic.padding_waste(first, lanes) <= MAX_CONTIGUOUS_PADDING
    if symbolic.divides(first, lanes) or nearly or not symbolic.divides(second, lanes) and long:
        return prefer_i
    return not prefer_i


def is_windowed(block: s_tir.SBlock) -> bool:
    """Whether the kernel is a convolution whose window has more than one tap: an index of a read
    mixes an output position (I) with a reduced tap (K), as `oh * s + kh` does (im2col's signature;
    a 1x1 convolution, strided or not, has none)."""
    classified = classify(block)
    if classified is None:
        return False
    traits = classified[0]
    analyzer = tvm_arith.Analyzer()
    for iv in block.iter_vars:
        analyzer.bind(iv.var, iv.dom)
    for read in block.reads:
        for r in read.region:
            kinds = {traits[v].kind for v in tirx.analysis.undefined_vars(analyzer.simplify(r.min)) if v in traits}
            if {I_, K_} <= kinds:
                return True
    return False


# The direct convolution's register tile: rows tried in order for 2 vectors (output channels a multiple of
# 2 vectors) or 1 vector, by the size of the register file. With 16 registers (AVX2) about 8-10 accumulators
# (each row's broadcast needs a register too): the tuner's winners on a Zen 3 were 4x2, 3x3, 5x2, 8x1, 10x1,
# 13x1. With 32 (AVX-512), 2-vector tiles of 7-9 rows: on a 2-core Xeon (rocketlake) the 23 windowed
# convolutions (of 2^20 multiply-adds or more) of resnet50, densenet121, inception_v1, squeezenet, ocr_det and
# ocr_rec took 0.94x as long as with AVX2's rows (resnet50's 196-position 3x3s at 7 x 2: 0.87-0.89x;
# inception's 729-position ones at 9 x 2: 0.77-0.84x); the best rows per kernel, 0.93x
# (`tile-sweep-avx512-2026-12-07`).
DIRECT_ROWS = {16: {2: (4, 5, 3, 6), 1: (8, 10, 9, 12, 7, 6, 13, 11)},
               32: {2: (7, 8, 9, 6, 10, 5, 4, 3), 1: (8, 10, 9, 12, 7, 6, 13, 11)}}

# With 32 registers a 1x1 convolution over at most this many positions is read in place too (14 x 2
# accumulators): its data is then small enough to stay in L2 while every V tile sweeps it, and the default
# (positions as the vector axis) pads 14x14 = 196 positions to whole tiles. resnet50's 196-position 1x1
# convolutions took 0.69-0.98x as long as with the contiguous default, densenet121's 0.63-0.70x (tuner).
POINTWISE_DIRECT_POSITIONS = 196
POINTWISE_DIRECT_ROWS = 14


def direct_tile(block: s_tir.SBlock, blk_traits, c_traits, target: Target) -> Tile | None:
    """The default register tile of a convolution scheduled as a direct convolution, or None where the
    contiguous-output default stands: output channels (J) as the vector axis, the data read in place as
    the broadcast rows (swap_axes, pack_u=False) from a padded copy made once per run (pad_copy), for
    static shapes whose channels fill whole vectors and whose positions one of DIRECT_ROWS divides; with
    32 vector registers also a 1x1 convolution over few positions (POINTWISE_DIRECT_POSITIONS).

    Why: tuning on a Zen 3 (`tuning-db-znver3-r5-2026-12-07`) chose exactly that for 31 of the
    45 windowed convolutions of nine models (29 with the padded copy), 1.07-2.42x faster than the
    contiguous-output default (im2col packed per run: K*K copies of the data), and kept the old
    default for 11, mostly small 13x13 or 7x7 maps with many channels. There 1x1 convolutions and
    matmuls keep the old default."""
    lanes = common.vector_lanes(target)
    if not vector_axis_is_i(blk_traits, c_traits, lanes):
        return None
    positions, channels = extent_of(blk_traits, I_), extent_of(blk_traits, J_)
    if not (symbolic.is_static(positions) and symbolic.is_static(channels)) or int(channels) % lanes:
        return None
    return direct_shape_tile(int(positions), int(channels), is_windowed(block), lanes,
                             common.vector_registers(target))


def direct_shape_tile(positions: int, channels: int, windowed: bool, lanes: int, registers: int) -> Tile | None:
    """direct_tile's choice from the shape alone (positions, output channels, windowed or 1x1), for a static
    kernel whose output is contiguous in its positions and whose channels fill whole vectors."""
    if not windowed:
        wide = registers >= 32 and channels % (2 * lanes) == 0 and positions <= POINTWISE_DIRECT_POSITIONS
        return Tile(POINTWISE_DIRECT_ROWS, 2, lanes) if wide and positions % POINTWISE_DIRECT_ROWS == 0 else None
    vectors = 2 if channels % (2 * lanes) == 0 else 1
    rows = next((r for r in DIRECT_ROWS[registers][vectors] if positions % r == 0), None)
    return None if rows is None else Tile(rows, vectors, lanes)


# The default read_v tile: rows (output channels) per tile, at most (fewer with 16 vector registers); two
# vectors of positions.
READ_V_ROWS = 12


def default_read_v(block: s_tir.SBlock, blk_traits, c_traits, target: Target) -> dict:
    """The knobs of the default `read_v` schedule (the data read in place as the vector operand, see
    gemm_stages.read_vector_operand_in_place) for a static windowed convolution whose output is contiguous in
    its positions and whose output channels do not fill whole vectors; raises ValueError for any other kernel
    (the rule's own default then stands; so it does where a tile's positions are not consecutive in the data).

    Why: such a convolution idles lanes as a direct convolution over channels (24 of 32) and packs its data
    nine times per run as an im2col GEMM. PP-OCR det's 96->24 3x3 convolutions at 160x160: 7.4 ms (im2col,
    the old default), 5.8 ms (the direct form, tuned), 3.9 ms read in place (12 x 2 tile), AVX-512 VM."""
    lanes = common.vector_lanes(target)
    positions, channels = extent_of(blk_traits, I_), extent_of(blk_traits, J_)
    if not (symbolic.is_static(positions) and symbolic.is_static(channels)):
        raise ValueError("default read_v: symbolic extents")
    if int(channels) % lanes == 0 or not is_windowed(block) or not vector_axis_is_i(blk_traits, c_traits, lanes):
        raise ValueError("default read_v: not a narrow windowed convolution")
    most = min(READ_V_ROWS, (common.vector_registers(target) - 3) // 2, int(channels))  # 2 x rows + 3 registers
    rows = rows_for(int(channels), most)
    return {"rows": rows, "vectors": 2, "swap_axes": False, "pack_u": True, "read_v": True}


def rows_for(u_extent, rows: int) -> int:
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


