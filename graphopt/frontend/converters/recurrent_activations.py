"""The activation functions of ONNX LSTM, GRU and RNN, with their alpha/beta, as Relax.

Why a resolver of our own: the attributes `activations`, `activation_alpha` and
`activation_beta` are three flat lists whose pairing the specification leaves loose
("consumed in the order of activation functions"; defaults "as the ONNX operator"),
and ONNX Runtime reads them in two different ways:

* LSTM and GRU walk the functions in order and take the next alpha (beta) only for a
  function that uses one; an exhausted list falls back to 0.01 (LeakyRelu), 0.2/0.5
  (HardSigmoid), 1.0 (Elu), and to 0 for Affine, ThresholdedRelu and ScaledTanh, whose
  operators' own defaults are 1.0/0.0 (Affine, ThresholdedRelu) or none (ScaledTanh);
* RNN takes alpha[d] and beta[d] for direction d, and defaults every one to 0.

`resolve` accepts exactly the lists on which the specification's reading and ONNX
Runtime's agree, and refuses the rest in one line (UnsupportedOperatorError) rather
than pick one reading silently: an Affine, ThresholdedRelu or ScaledTanh without its
values; an RNN function that takes alpha/beta without one at its direction's index, or
whose in-order value would differ from that index.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tvm import relax

from graphopt.errors import UnsupportedOperatorError

# lower-case name -> (uses alpha, uses beta)
_USES: dict[str, tuple[bool, bool]] = {
    "relu": (False, False), "tanh": (False, False), "sigmoid": (False, False),
    "affine": (True, True), "leakyrelu": (True, False), "thresholdedrelu": (True, False),
    "scaledtanh": (True, True), "hardsigmoid": (True, True), "elu": (True, False),
    "softsign": (False, False), "softplus": (False, False),
}
# Defaults that the specification and ONNX Runtime's LSTM/GRU share.
_DEFAULTS: dict[str, tuple[float | None, float | None]] = {
    "leakyrelu": (0.01, None), "hardsigmoid": (0.2, 0.5), "elu": (1.0, None),
}


@dataclass(frozen=True)
class Activation:
    """One activation function with its parameters (None where it takes none)."""

    name: str  # lower case
    alpha: float | None = None
    beta: float | None = None

    def __call__(self, x: relax.Expr) -> relax.Expr:
        """`x` through this function, as an unemitted Relax expression."""
        return _BUILDERS[self.name](x, self.alpha, self.beta)


def resolve(op: str, names: Sequence[str], alphas: Sequence[float], betas: Sequence[float],
            directions: int) -> list[Activation]:
    """The activations of every direction, in attribute order (per direction: f, g, h...).

    `names` must already hold one entry per function and direction; raises
    UnsupportedOperatorError for an unknown name or an ambiguous alpha/beta.
    """
    lowered = [_known(op, name) for name in names]
    if op == "RNN":
        return _per_direction(lowered, list(alphas), list(betas))
    alpha_iter, beta_iter = iter(alphas), iter(betas)
    return [_in_order(op, name, alpha_iter, beta_iter) for name in lowered]


def _known(op: str, name: str | bytes) -> str:
    text = name.decode() if isinstance(name, bytes) else str(name)
    if text.lower() not in _USES:
        raise UnsupportedOperatorError(f"{op}: unknown activation {text!r}")
    return text.lower()


def _in_order(op: str, name: str, alphas, betas) -> Activation:
    """LSTM/GRU: the next alpha/beta for a function that uses one, else its default."""
    uses_alpha, uses_beta = _USES[name]
    default_alpha, default_beta = _DEFAULTS.get(name, (None, None))
    alpha = next(alphas, default_alpha) if uses_alpha else None
    beta = next(betas, default_beta) if uses_beta else None
    if (uses_alpha and alpha is None) or (uses_beta and beta is None):
        raise UnsupportedOperatorError(
            f"{op}: activation {name} needs explicit activation_alpha/activation_beta "
            "(the specification's and ONNX Runtime's defaults differ)")
    return Activation(name, alpha, beta)


def _per_direction(names: list[str], alphas: list[float], betas: list[float]) -> list[Activation]:
    """RNN: direction d's function takes alpha[d]/beta[d], checked equal to the in-order reading."""
    result = []
    used_alpha = used_beta = 0
    for d, name in enumerate(names):
        uses_alpha, uses_beta = _USES[name]
        alpha = _indexed("activation_alpha", alphas, d, used_alpha) if uses_alpha else None
        beta = _indexed("activation_beta", betas, d, used_beta) if uses_beta else None
        used_alpha += uses_alpha
        used_beta += uses_beta
        result.append(Activation(name, alpha, beta))
    return result


def _indexed(attr: str, values: list[float], direction: int, consumed: int) -> float:
    if direction >= len(values) or consumed != direction:
        raise UnsupportedOperatorError(
            f"RNN: {attr} must give one value per direction for activations that take it "
            "(the specification's and ONNX Runtime's readings differ otherwise)")
    return float(values[direction])


def _const(value: float) -> relax.Expr:
    return relax.const(float(value), "float32")


def _elu(x: relax.Expr, alpha: float, _beta) -> relax.Expr:
    negative = relax.op.multiply(_const(alpha), relax.op.subtract(relax.op.exp(x), _const(1.0)))
    return relax.op.where(relax.op.greater_equal(x, _const(0.0)), x, negative)


def _softplus(x: relax.Expr, _alpha, _beta) -> relax.Expr:
    """log(1 + e^x) written as max(x, 0) + log(1 + e^-|x|): no overflow for large x."""
    tail = relax.op.log(relax.op.add(_const(1.0), relax.op.exp(relax.op.negative(relax.op.abs(x)))))
    return relax.op.add(relax.op.maximum(x, _const(0.0)), tail)


_BUILDERS: dict[str, Callable[[relax.Expr, float | None, float | None], relax.Expr]] = {
    "relu": lambda x, a, b: relax.op.nn.relu(x),
    "tanh": lambda x, a, b: relax.op.tanh(x),
    "sigmoid": lambda x, a, b: relax.op.sigmoid(x),
    "affine": lambda x, a, b: relax.op.add(relax.op.multiply(_const(a), x), _const(b)),
    "leakyrelu": lambda x, a, b: relax.op.nn.leakyrelu(x, float(a)),
    "thresholdedrelu": lambda x, a, b: relax.op.where(relax.op.greater(x, _const(a)), x, _const(0.0)),
    "scaledtanh": lambda x, a, b: relax.op.multiply(_const(a), relax.op.tanh(relax.op.multiply(_const(b), x))),
    "hardsigmoid": lambda x, a, b: relax.op.minimum(
        relax.op.maximum(relax.op.add(relax.op.multiply(_const(a), x), _const(b)), _const(0.0)), _const(1.0)),
    "elu": _elu,
    "softsign": lambda x, a, b: relax.op.divide(x, relax.op.add(relax.op.abs(x), _const(1.0))),
    "softplus": _softplus,
}
