"""One time step of an ONNX LSTM, GRU or RNN direction, as Relax operators.

Each cell is handed the step's input projection `Xt*(W^T) + biases` (computed for every
step at once by the caller, graphopt.frontend.converters.recurrent) and the previous
state, and returns the new state. The state is a tuple, (H,) or (H, C) for LSTM, whose
first entry is the step's output; None entries stand for the all-zero initial state of
a layer without initial_h/initial_c, so the first step skips the recurrent matmul and
the peephole terms instead of multiplying zeros.

The gate math is the specification's (onnx/docs/Operators.md, LSTM/GRU/RNN), in the
order ONNX Runtime's CPU kernels apply it, which fixes what the spec leaves open:
a peephole term is added before the clip; clip bounds every gate's pre-activation,
never the cell state C; input_forget couples the gates as f = 1 - i.
"""

from __future__ import annotations

from dataclasses import dataclass

from tvm import relax

from graphopt.frontend.converters.recurrent_activations import Activation

State = tuple[relax.Expr | None, ...]


def _clipped(x: relax.Expr, clip: float | None) -> relax.Expr:
    """x bounded to [-clip, clip] (as min/max: relax.op.clip needs a normalized input)."""
    if clip is None:
        return x
    low, high = relax.const(-clip, "float32"), relax.const(clip, "float32")
    return relax.op.minimum(relax.op.maximum(x, low), high)


def _gates(bb: relax.BlockBuilder, x: relax.Expr, count: int) -> list[relax.Expr]:
    """`x` [B, count*H] split into `count` gate tensors [B, H]."""
    parts = bb.emit(relax.op.split(x, count, axis=1))
    return [bb.emit(relax.TupleGetItem(parts, k)) for k in range(count)]


def _plus_recurrence(bb: relax.BlockBuilder, projected: relax.Expr, h: relax.Expr | None,
                     recurrent: relax.Expr, bias: relax.Expr | None = None) -> relax.Expr:
    """projected + h*(R^T) (+ bias); just `projected` (+ bias) while h is the zero state."""
    total = projected
    if h is not None:
        total = relax.op.add(total, relax.op.matmul(h, recurrent))
    if bias is not None:
        total = relax.op.add(total, bias)
    return bb.emit(total)


@dataclass(frozen=True)
class RnnCell:
    """Ht = f(clip(Xt*(Wi^T) + Ht-1*(Ri^T) + Wbi + Rbi))."""

    recurrent: relax.Expr  # Ri^T [H, H]
    f: Activation
    clip: float | None

    def step(self, bb: relax.BlockBuilder, projected: relax.Expr, state: State) -> State:
        total = _plus_recurrence(bb, projected, state[0], self.recurrent)
        return (bb.emit(self.f(_clipped(total, self.clip))),)


@dataclass(frozen=True)
class GruCell:
    """zt, rt = f(...); ht = g(...) with the reset before (0) or after (1) the linear map.

    `recurrent_zr` is R[zr]^T [H, 2H] and `recurrent_h` Rh^T [H, H]; with
    linear_before_reset, `h_bias` is Rbh (added to Ht-1*(Rh^T) before the reset), and the
    projection holds Wb[zrh] + Rb[zr] only; without it the projection holds all biases.
    """

    recurrent_zr: relax.Expr
    recurrent_h: relax.Expr
    h_bias: relax.Expr | None
    linear_before_reset: bool
    f: Activation
    g: Activation
    clip: float | None

    def step(self, bb: relax.BlockBuilder, projected: relax.Expr, state: State) -> State:
        h_prev = state[0]
        x_zr, x_h = _split_zr_h(bb, projected)
        z_pre, r_pre = _gates(bb, _plus_recurrence(bb, x_zr, h_prev, self.recurrent_zr), 2)
        z = bb.emit(self.f(_clipped(z_pre, self.clip)))
        r = bb.emit(self.f(_clipped(r_pre, self.clip)))
        h_pre = bb.emit(relax.op.add(x_h, self._reset_term(bb, h_prev, r)))
        h_cand = bb.emit(self.g(_clipped(h_pre, self.clip)))
        if h_prev is None:  # Ht = (1 - zt) * ht + zt * 0
            return (bb.emit(relax.op.multiply(relax.op.subtract(_one(), z), h_cand)),)
        kept = relax.op.multiply(z, h_prev)
        return (bb.emit(relax.op.add(relax.op.multiply(relax.op.subtract(_one(), z), h_cand), kept)),)

    def _reset_term(self, bb: relax.BlockBuilder, h_prev: relax.Expr | None, r: relax.Expr) -> relax.Expr:
        """rt (.) (Ht-1*(Rh^T) + Rbh) with linear_before_reset, else (rt (.) Ht-1)*(Rh^T)."""
        if self.linear_before_reset:
            linear = _plus_recurrence(bb, _zero(), h_prev, self.recurrent_h, self.h_bias)
            return relax.op.multiply(r, linear)
        if h_prev is None:
            return _zero()
        return relax.op.matmul(bb.emit(relax.op.multiply(r, h_prev)), self.recurrent_h)


def _split_zr_h(bb: relax.BlockBuilder, projected: relax.Expr) -> tuple[relax.Expr, relax.Expr]:
    hidden = int(projected.ty.shape[1]) // 3
    parts = bb.emit(relax.op.split(projected, [2 * hidden], axis=1))
    return bb.emit(relax.TupleGetItem(parts, 0)), bb.emit(relax.TupleGetItem(parts, 1))


@dataclass(frozen=True)
class LstmCell:
    """Gates i, o, f, c (ONNX order) with optional peepholes P[iof] and coupled input/forget."""

    recurrent: relax.Expr  # R[iofc]^T [H, 4H]
    peepholes: tuple[relax.Expr, relax.Expr, relax.Expr] | None  # Pi, Po, Pf, each [H]
    f: Activation
    g: Activation
    h: Activation
    clip: float | None
    input_forget: bool

    def step(self, bb: relax.BlockBuilder, projected: relax.Expr, state: State) -> State:
        h_prev, c_prev = state
        i_pre, o_pre, f_pre, c_pre = _gates(bb, _plus_recurrence(bb, projected, h_prev, self.recurrent), 4)
        i = bb.emit(self.f(_clipped(self._peep(i_pre, 0, c_prev), self.clip)))
        cand = bb.emit(self.g(_clipped(c_pre, self.clip)))
        c_new = relax.op.multiply(i, cand)
        if c_prev is not None:
            forget = self._forget(bb, i, f_pre, c_prev)
            c_new = relax.op.add(c_new, relax.op.multiply(forget, c_prev))
        c_new = bb.emit(c_new)
        o = bb.emit(self.f(_clipped(self._peep(o_pre, 1, c_new), self.clip)))
        return bb.emit(relax.op.multiply(o, self.h(c_new))), c_new

    def _forget(self, bb: relax.BlockBuilder, i: relax.Expr, f_pre: relax.Expr, c_prev: relax.Expr) -> relax.Expr:
        if self.input_forget:
            return bb.emit(relax.op.subtract(_one(), i))
        return bb.emit(self.f(_clipped(self._peep(f_pre, 2, c_prev), self.clip)))

    def _peep(self, pre: relax.Expr, which: int, c: relax.Expr | None) -> relax.Expr:
        """pre + P[which] (.) c; `which` indexes P's order i, o, f."""
        if self.peepholes is None or c is None:
            return pre
        return relax.op.add(pre, relax.op.multiply(self.peepholes[which], c))


def _one() -> relax.Expr:
    return relax.const(1.0, "float32")


def _zero() -> relax.Expr:
    return relax.const(0.0, "float32")
