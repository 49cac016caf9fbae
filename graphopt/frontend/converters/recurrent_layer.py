"""An ONNX recurrent layer (LSTM, GRU, RNN) unrolled over its fixed sequence length.

Why unrolled: graphopt plans every tensor of a fixed-shape program into one arena, and
TVM's ONNX importer has no recurrent operators; written out step by step with matmul,
add, split and the activations, the layer's states and gates become ordinary tensors
that the planner places and reuses. The weights stay model parameters: per-direction
slices and transposes depend on them alone, so the compile lifts them into the
one-time weight preparation (graphopt.lowering.prepack) and stores each once.

How (`unroll`):
  1. X goes time-major [T, B, I] (layout 1 is [B, T, I]);
  2. the input projection of every step and direction is one matmul,
     [T*B, I] x [I, D*G*H] plus the biases, as ONNX Runtime computes it, then split into
     the per-step, per-direction slices [B, G*H];
  3. with sequence_lens, a step t of batch row b is valid while t < lens[b]: an invalid
     step leaves the state unchanged and outputs zeros. A reverse direction walks t from
     T-1 down to 0, so each row starts at its own last valid step, as ONNX Runtime's
     per-row ReverseSequence does; Y_h/Y_c are then each row's state after its last valid
     step, and zeros for a row of length 0 (as ONNX Runtime gives, not the initial state);
  4. each direction runs its cell (graphopt.frontend.converters.recurrent_cells) over the
     steps; Y stacks the step outputs, Y_h/Y_c the final states, in the layout's order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import tvm
from tvm import relax

from graphopt.errors import UnsupportedOperatorError
from graphopt.frontend.converters.recurrent_cells import State


@dataclass(frozen=True)
class Layer:
    """What `unroll` needs of one node, its attributes checked and weights in hand."""

    gates: int
    hidden: int
    reverse: tuple[bool, ...]  # one entry per direction
    layout: int
    x: relax.Expr
    w: relax.Expr
    bias: relax.Expr | None  # B [D, 2*G*H]
    lens: relax.Expr | None
    initial: tuple[relax.Expr | None, ...]  # initial_h (and initial_c), as given
    recurrent_bias_in_projection: np.ndarray | None = None  # 0/1 per gate row; None: all 1

    @property
    def directions(self) -> int:
        return len(self.reverse)


class Cell(Protocol):
    """One direction's step function (graphopt.frontend.converters.recurrent_cells)."""

    def step(self, bb: relax.BlockBuilder, projected: relax.Expr, state: State) -> State: ...


# A direction's cell, built from the direction index.
CellFactory = Callable[[int], Cell]


def unroll(bb: relax.BlockBuilder, layer: Layer, make_cell: CellFactory) -> relax.Tuple:
    """The node's outputs (Y, Y_h[, Y_c]) as one Relax tuple; unused ones are dead code."""
    x = _time_major(bb, layer)
    steps, batch = int(x.ty.shape[0]), int(x.ty.shape[1])
    projected = _projections(bb, layer, x)
    valid = _valid_steps(bb, layer.lens, steps)
    outputs, finals = [], []
    for d, reverse in enumerate(layer.reverse):
        state = tuple(_direction_of(bb, init, d, layer.layout) for init in layer.initial)
        ys, final = _run(bb, make_cell(d), [p[d] for p in projected], state, valid, reverse)
        if layer.lens is not None and any(s is not None for s in state):
            final = _empty_rows_zeroed(bb, layer.lens, final)
        outputs.append(ys)
        finals.append(final)
    return _assemble(bb, layer, outputs, finals, steps, batch)


def _time_major(bb: relax.BlockBuilder, layer: Layer) -> relax.Expr:
    return bb.emit(relax.op.permute_dims(layer.x, [1, 0, 2])) if layer.layout == 1 else layer.x


def _projections(bb: relax.BlockBuilder, layer: Layer, x: relax.Expr) -> list[list[relax.Expr]]:
    """Step 2: Xt*(W^T) + biases for every step t and direction d, as [t][d] -> [B, G*H]."""
    steps, batch, inputs = (int(v) for v in x.ty.shape)
    width = layer.gates * layer.hidden
    total = layer.directions * width
    w_t = bb.emit(relax.op.permute_dims(relax.op.reshape(layer.w, (total, inputs)), [1, 0]))
    flat = relax.op.matmul(relax.op.reshape(x, (steps * batch, inputs)), w_t)
    if layer.bias is not None:
        flat = relax.op.add(flat, _projection_bias(bb, layer, width))
    flat = bb.emit(flat)
    per_step = _split(bb, flat, steps, axis=0) if steps > 1 else [flat]
    if layer.directions == 1:
        return [[p] for p in per_step]
    return [_split(bb, p, layer.directions, axis=1) for p in per_step]


def _projection_bias(bb: relax.BlockBuilder, layer: Layer, width: int) -> relax.Expr:
    """Wb + Rb per direction, flattened to [D*G*H]; GRU's Rbh stays out with linear_before_reset."""
    wb, rb = _split(bb, layer.bias, 2, axis=1)
    if layer.recurrent_bias_in_projection is not None:
        rb = relax.op.multiply(rb, relax.const(layer.recurrent_bias_in_projection.astype("float32")))
    return bb.emit(relax.op.reshape(relax.op.add(wb, rb), (layer.directions * width,)))


def _split(bb: relax.BlockBuilder, x: relax.Expr, parts: int, axis: int) -> list[relax.Expr]:
    """`x` cut into `parts` equal pieces along `axis` (the axis keeps its rank)."""
    tup = bb.emit(relax.op.split(x, parts, axis=axis))
    return [bb.emit(relax.TupleGetItem(tup, k)) for k in range(parts)]


def _valid_steps(bb: relax.BlockBuilder, lens: relax.Expr | None, steps: int) -> list[relax.Expr] | None:
    """Step 3: per step t, [B, 1] booleans t < lens[b]; None without sequence_lens."""
    if lens is None:
        return None
    dtype = lens.ty.dtype
    return [bb.emit(relax.op.expand_dims(relax.op.less(relax.const(t, dtype), lens), 1)) for t in range(steps)]


def _run(bb: relax.BlockBuilder, cell: Cell, projected: Sequence[relax.Expr], state: State,
         valid: list[relax.Expr] | None, reverse: bool) -> tuple[list[relax.Expr], State]:
    """Step 4 for one direction: the outputs in time order and the final state."""
    order = range(len(projected) - 1, -1, -1) if reverse else range(len(projected))
    ys: list[relax.Expr] = [None] * len(projected)
    for t in order:
        new = cell.step(bb, projected[t], state)
        if valid is None:
            state, ys[t] = new, new[0]
            continue
        keep = valid[t]
        state = tuple(bb.emit(relax.op.where(keep, n, _zero() if s is None else s)) for n, s in zip(new, state))
        ys[t] = bb.emit(relax.op.where(keep, new[0], _zero()))
    return ys, state


def _empty_rows_zeroed(bb: relax.BlockBuilder, lens: relax.Expr, state: State) -> State:
    """A row of length 0 has zero final states, not its initial ones (ONNX Runtime's result)."""
    nonempty = bb.emit(relax.op.expand_dims(relax.op.greater(lens, relax.const(0, lens.ty.dtype)), 1))
    return tuple(bb.emit(relax.op.where(nonempty, s, _zero())) for s in state)


def _direction_of(bb: relax.BlockBuilder, value: relax.Expr | None, d: int, layout: int) -> relax.Expr | None:
    """Direction d's slice [B, H] of initial_h/initial_c ([D, B, H], or [B, D, H] in layout 1)."""
    if value is None:
        return None
    axis = 1 if layout == 1 else 0
    sliced = relax.op.strided_slice(value, axes=[axis], begin=[d], end=[d + 1])
    return bb.emit(relax.op.squeeze(sliced, [axis]))


def _assemble(bb: relax.BlockBuilder, layer: Layer, outputs, finals, steps: int, batch: int) -> relax.Tuple:
    """Y [T, D, B, H] (layout 1: [B, T, D, H]), then Y_h[, Y_c] [D, B, H] (layout 1: [B, D, H])."""
    d_count, hidden = layer.directions, layer.hidden
    axis = 1 if layer.layout == 1 else 0
    items = [outputs[d][t] for t in range(steps) for d in range(d_count)]
    stacked = relax.op.stack(items, axis=axis)
    shape = (batch, steps, d_count, hidden) if layer.layout == 1 else (steps, d_count, batch, hidden)
    result = [bb.emit(relax.op.reshape(stacked, shape))]
    for k in range(len(finals[0])):
        result.append(bb.emit(relax.op.stack([finals[d][k] for d in range(d_count)], axis=axis)))
    return relax.Tuple(result)


def _zero() -> relax.Expr:
    return relax.const(0.0, "float32")


def static_shape(expr: relax.Expr | None, what: str, op: str) -> tuple[int, ...]:
    """The fixed shape of `expr`; UnsupportedOperatorError when it is unknown or symbolic."""
    try:
        return tuple(int(v) for v in expr.ty.shape)
    except (AttributeError, TypeError, tvm.TVMError) as exc:
        raise UnsupportedOperatorError(f"{op}: input {what} needs a fixed shape (pin the input shapes)") from exc
