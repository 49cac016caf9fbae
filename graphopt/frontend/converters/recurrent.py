"""ONNX LSTM, GRU and RNN (opset 7 and later) compiled natively, unrolled over the steps.

Why: TVM 0.27's ONNX importer has none of the three, and a fallback kernel would keep
the layer's states out of graphopt's planned arena. Each converter here checks the
node's attributes and input shapes, refuses in one line (UnsupportedOperatorError)
what it cannot compute exactly, and hands the checked layer to
graphopt.frontend.converters.recurrent_layer, which writes the steps out.

Accepted: direction forward/reverse/bidirectional; layout 0/1; the optional inputs B,
sequence_lens, initial_h, initial_c and P (peepholes); clip; LSTM input_forget; GRU
linear_before_reset 0/1; every activation of the specification with its alpha/beta
(graphopt.frontend.converters.recurrent_activations); any subset of the outputs.
Refused: opsets before 7 (their output_sequence attribute), element types other than
float32, inputs without a fixed shape, sequence lengths outside [0, seq_length].
"""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax
from tvm.relax.frontend.onnx.onnx_frontend import OnnxOpConverter

from graphopt.errors import UnsupportedOperatorError
from graphopt.frontend.converters.recurrent_activations import Activation, resolve
from graphopt.frontend.converters.recurrent_cells import GruCell, LstmCell, RnnCell
from graphopt.frontend.converters.recurrent_layer import Layer, static_shape, unroll

_DIRECTIONS = {"forward": (False,), "reverse": (True,), "bidirectional": (False, True)}


class _Recurrent(OnnxOpConverter):
    """What LSTM, GRU and RNN share: attribute checks, the layer, the unrolling."""

    OP = ""
    GATES = 1
    DEFAULT_ACTIVATIONS: tuple[str, ...] = ()
    INITIAL_STATES = (5,)  # input indices of initial_h (and initial_c)

    @classmethod
    def _impl_v1(cls, bb, inputs, attr, params):
        raise UnsupportedOperatorError(f"{cls.OP} before opset 7 is not supported (update the model's opset)")

    @classmethod
    def _impl_v7(cls, bb, inputs, attr, params):
        layer = cls._layer(inputs, attr)
        per_direction = len(cls.DEFAULT_ACTIVATIONS)
        acts = cls._activations(attr, layer.directions)
        return unroll(bb, layer, lambda d: cls._cell(
            bb, layer, inputs, attr, acts[d * per_direction:(d + 1) * per_direction], d))

    @classmethod
    def _cell(cls, bb, layer: Layer, inputs, attr, acts: list[Activation], d: int):
        raise NotImplementedError

    @classmethod
    def _recurrent_bias_in_projection(cls, attr, hidden: int) -> np.ndarray | None:
        return None

    @classmethod
    def _layer(cls, inputs, attr) -> Layer:
        """The node checked: shapes, direction, layout, sequence lengths."""
        x, w, r, bias, lens = inputs[0], inputs[1], inputs[2], inputs[3], inputs[4]
        if x.ty.dtype != "float32":
            raise UnsupportedOperatorError(f"{cls.OP}: only float32 is supported, got {x.ty.dtype}")
        reverse = _direction(cls.OP, attr)
        layout = int(attr.get("layout", 0))
        if layout not in (0, 1):
            raise UnsupportedOperatorError(f"{cls.OP}: layout must be 0 or 1, got {layout}")
        x_shape = static_shape(x, "X", cls.OP)
        steps, batch, _ = (x_shape[1], x_shape[0], x_shape[2]) if layout == 1 else x_shape
        hidden = int(attr.get("hidden_size", static_shape(r, "R", cls.OP)[-1]))
        d, g = len(reverse), cls.GATES * hidden
        _expect(cls.OP, "W", w, (d, g, x_shape[2]))
        _expect(cls.OP, "R", r, (d, g, hidden))
        _expect(cls.OP, "B", bias, (d, 2 * g))
        states = tuple(inputs[i] for i in cls.INITIAL_STATES)
        for name, state in zip(("initial_h", "initial_c"), states):
            _expect(cls.OP, name, state, (batch, d, hidden) if layout == 1 else (d, batch, hidden))
        if steps < 1:
            raise UnsupportedOperatorError(f"{cls.OP}: a sequence of length 0 is not supported")
        return Layer(cls.GATES, hidden, reverse, layout, x, w, bias,
                     _lengths(cls.OP, lens, steps, batch), states,
                     cls._recurrent_bias_in_projection(attr, hidden) if bias is not None else None)

    @classmethod
    def _activations(cls, attr, directions: int) -> list[Activation]:
        per_direction = len(cls.DEFAULT_ACTIVATIONS)
        names = list(attr.get("activations", cls.DEFAULT_ACTIVATIONS * directions))
        if cls.OP == "RNN" and directions == 1 and len(names) == 2 and names[0] == names[1]:
            names = names[:1]  # the spec lists RNN's default as (Tanh, Tanh) whatever the direction
        if len(names) != per_direction * directions:
            raise UnsupportedOperatorError(
                f"{cls.OP}: expected {per_direction * directions} activations, got {len(names)}")
        return resolve(cls.OP, names, attr.get("activation_alpha", ()), attr.get("activation_beta", ()),
                       directions)


class LSTM(_Recurrent):
    """Gates i, o, f, c; initial_c and peepholes P; input_forget."""

    OP = "LSTM"
    GATES = 4
    DEFAULT_ACTIVATIONS = ("Sigmoid", "Tanh", "Tanh")
    INITIAL_STATES = (5, 6)

    @classmethod
    def _cell(cls, bb, layer, inputs, attr, acts, d):
        peepholes = inputs[7]
        if peepholes is not None:
            _expect(cls.OP, "P", peepholes, (layer.directions, 3 * layer.hidden))
            p_d = bb.emit(relax.op.squeeze(_row(peepholes, d), [0]))
            parts = bb.emit(relax.op.split(p_d, 3, axis=0))
            peepholes = tuple(bb.emit(relax.TupleGetItem(parts, k)) for k in range(3))
        return LstmCell(_transposed(bb, inputs[2], d), peepholes, *acts, clip=_clip(cls.OP, attr),
                        input_forget=bool(attr.get("input_forget", 0)))


class GRU(_Recurrent):
    """Gates z, r, h; linear_before_reset 0 or 1."""

    OP = "GRU"
    GATES = 3
    DEFAULT_ACTIVATIONS = ("Sigmoid", "Tanh")

    @classmethod
    def _cell(cls, bb, layer, inputs, attr, acts, d):
        hidden, bias = layer.hidden, inputs[3]
        r_d = bb.emit(relax.op.squeeze(_row(inputs[2], d), [0]))  # [3H, H]
        rows = bb.emit(relax.op.split(r_d, [2 * hidden], axis=0))
        r_zr, r_h = (bb.emit(relax.op.permute_dims(relax.TupleGetItem(rows, k), [1, 0])) for k in range(2))
        before = _linear_before_reset(attr)
        h_bias = None
        if before and bias is not None:  # Rbh: the last H entries of B[d]
            h_bias = bb.emit(relax.op.strided_slice(relax.op.squeeze(_row(bias, d), [0]), axes=[0],
                                                    begin=[5 * hidden], end=[6 * hidden]))
        return GruCell(r_zr, r_h, h_bias, before, *acts, clip=_clip(cls.OP, attr))

    @classmethod
    def _recurrent_bias_in_projection(cls, attr, hidden: int) -> np.ndarray | None:
        """With linear_before_reset, Rbh is added inside the reset, not to the projection."""
        if not _linear_before_reset(attr):
            return None
        return np.concatenate([np.ones(2 * hidden), np.zeros(hidden)])


class RNN(_Recurrent):
    """One gate; the default activation is Tanh."""

    OP = "RNN"
    DEFAULT_ACTIVATIONS = ("Tanh",)

    @classmethod
    def _cell(cls, bb, layer, inputs, attr, acts, d):
        return RnnCell(_transposed(bb, inputs[2], d), *acts, clip=_clip(cls.OP, attr))


def _direction(op: str, attr) -> tuple[bool, ...]:
    direction = attr.get("direction", b"forward")
    direction = direction.decode() if isinstance(direction, bytes) else str(direction)
    if direction not in _DIRECTIONS:
        raise UnsupportedOperatorError(f"{op}: unknown direction {direction!r}")
    return _DIRECTIONS[direction]


def _linear_before_reset(attr) -> bool:
    return bool(attr.get("linear_before_reset", 0))


def _clip(op: str, attr) -> float | None:
    clip = attr.get("clip")
    if clip is not None and not float(clip) > 0:
        raise UnsupportedOperatorError(f"{op}: clip must be positive, got {clip}")
    return None if clip is None else float(clip)


def _expect(op: str, name: str, value: relax.Expr | None, shape: tuple[int, ...]) -> None:
    if value is not None and static_shape(value, name, op) != shape:
        raise UnsupportedOperatorError(
            f"{op}: input {name} has shape {list(static_shape(value, name, op))}, expected {list(shape)}")


def _lengths(op: str, lens: relax.Expr | None, steps: int, batch: int) -> relax.Expr | None:
    """sequence_lens, or None where it is absent or a constant of full lengths."""
    if lens is None:
        return None
    _expect(op, "sequence_lens", lens, (batch,))
    if lens.ty.dtype not in ("int32", "int64"):
        raise UnsupportedOperatorError(f"{op}: sequence_lens must be int32, got {lens.ty.dtype}")
    if isinstance(lens, tvm.ir.GenericConst):
        values = lens.value.numpy()
        if values.min() < 0 or values.max() > steps:
            raise UnsupportedOperatorError(f"{op}: sequence_lens {values.tolist()} outside [0, {steps}]")
        if (values == steps).all():
            return None
    return lens


def _row(value: relax.Expr, d: int) -> relax.Expr:
    """value[d:d+1] along the direction axis."""
    return relax.op.strided_slice(value, axes=[0], begin=[d], end=[d + 1])


def _transposed(bb: relax.BlockBuilder, r: relax.Expr, d: int) -> relax.Expr:
    """R[d]^T, [H, G*H]: computed from the weight alone, so prepared once at compile time."""
    return bb.emit(relax.op.permute_dims(relax.op.squeeze(_row(r, d), [0]), [1, 0]))


CONVERTERS = {"LSTM": LSTM, "GRU": GRU, "RNN": RNN}
