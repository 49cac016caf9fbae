"""exp, erf, tanh and constant powers on float32 as code the CPU evaluates a vector at a time, not one libm call per lane.

Why. TVM lowers `exp` on llvm to LLVM's `llvm.exp` intrinsic, `erf` to a call of libm's `erff` and `tanh`
to an expression of `exp`; LLVM has no vector form of these, so a vectorized loop calls libm once per lane
(checked in the assembly: 64 `expf` calls for a 64-lane loop, a scalar `erff` loop). Over 2^20 floats
at 1 thread that was 5.7x (exp), 5.8x (tanh) and 8.8x (erf) slower than the polynomials below
(benchmarks.kernel_ab, loaded VM). ONNX Runtime (MLAS) and OpenVINO evaluate them as SIMD polynomials.

What. A lowering rule for `tirx.exp`, `tirx.erf` and `tirx.tanh` on llvm targets, float32 only (scalar or any
number of lanes; other types keep TVM's own rule), run by LowerIntrin after vectorization:

* exp(x) = 2^n * p(r), n = round(x / ln 2), r = x - n ln 2 (ln 2 in two parts, Cody-Waite, so r is
  exact to float32), p the degree-7 Taylor polynomial of e^r on |r| <= ln2/2 (truncation 5e-9
  relative). 2^n is built from the exponent bits as two factors 2^(n//2) * 2^(n - n//2), so results
  from the subnormal range (x >= -103.9) up to FLT_MAX (x <= 88.72) need no special case.
  Beyond: 0 below, +inf above; NaN stays NaN.
* erf(x) = x * P(x^2) for |x| < 1, 1 - e^(-x^2) * Q((|x| - 2.5) / 1.5) for 1 <= |x| < 4 (erfc(x) e^(x^2)
  is smooth there, and on [-1, 1] Q's monomial coefficients stay small), sign(x) beyond (erf rounds
  to +-1 in float32 from |x| = 3.92); odd; NaN stays NaN. P and Q are least-squares fits in float64
  on Chebyshev nodes, made when this module is imported (`fit`); their error is below float32's
  rounding (checked in tests/kernels/test_vector_math.py against math.erf, with ONNX Runtime).
* tanh(x) = x * T(x^2) for |x| < 0.625 (T fitted as P), else sign(x) (1 - 2 / (e^(2|x|) + 1)) with |x|
  clamped at 10 (tanh rounds to +-1 from 9.1); odd; NaN stays NaN. TVM's own tanh calls expf per lane.

* pow(x, c) for a constant c in POWER_FORMS: x*x, x*x*x, or from sqrt (a SIMD instruction) for c = 0.5 and
  0.75 (LRN's default beta: s * sqrt(s), s = sqrt(x)), where TVM calls libm's powf once per lane (LRN's
  normalizer was 11% of inception_v1). pow's special values are kept: pow(+-0, c) = +0 and
  pow(-inf, c) = +inf for c = 0.5, 0.75 (sqrt alone gives -0 and NaN there); negative x gives NaN as
  powf does. Within 2 float32 epsilons of the correctly rounded power (tests/kernels/test_vector_math.py).
  Any other exponent, or one only known at run time, keeps TVM's powf.

`install()` registers the rules (graphopt.lowering's import does it, so every compile and every tuning
build uses them); `libm()` is a context in which the rules step aside for TVM's, for an A/B.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import numpy as np
import tvm
from tvm import tirx

PLEVEL = 101  # above TVM's own registration (10), so ours is the llvm rule
LN2_HI = 0.693359375  # ln 2 = LN2_HI + LN2_LO; LN2_HI has 10 significant bits, so n * LN2_HI is exact
LN2_LO = -2.12194440e-4
EXP_MAX = 88.72283935546875  # the largest float32 whose exp is finite
EXP_MIN = -103.97207641601562  # below this exp rounds to 0 even as a subnormal
ERF_SPLIT, ERF_ONE = 1.0, 4.0
_state = {"on": True, "previous": {}}


def fit(function, lo: float, hi: float, degree: int, variable=lambda x: x) -> list[float]:
    """Monomial coefficients (lowest first) of the least-squares polynomial in `variable(x)` that fits
    `function(x)` on 4000 Chebyshev nodes of [lo, hi] (near-minimax; computed in float64)."""
    nodes = np.cos(np.pi * (np.arange(4000) + 0.5) / 4000)
    x = lo + (hi - lo) * (nodes + 1) / 2
    return [float(c) for c in np.polynomial.polynomial.polyfit(variable(x), function(x), degree)]


def _erf_over_x(x: np.ndarray) -> np.ndarray:
    return np.array([math.erf(v) / v for v in x])


def _scaled_erfc(x: np.ndarray) -> np.ndarray:
    return np.array([math.erfc(v) * math.exp(v * v) for v in x])


def _tanh_over_x(x: np.ndarray) -> np.ndarray:
    return np.tanh(x) / x


ERF_SMALL = fit(_erf_over_x, 1e-6, ERF_SPLIT, 6, lambda x: x * x)  # erf(x)/x in x^2, |x| < 1
ERF_LARGE = fit(_scaled_erfc, ERF_SPLIT, ERF_ONE, 12, lambda x: (x - 2.5) / 1.5)  # erfc(x) e^(x^2)
TANH_SPLIT, TANH_ONE = 0.625, 10.0
TANH_SMALL = fit(_tanh_over_x, 1e-6, TANH_SPLIT, 6, lambda x: x * x)  # tanh(x)/x in x^2, |x| < 0.625


def _const(value: float, like) -> tirx.PrimExpr:
    return tirx.const(value, like.ty.dtype if hasattr(like, "ty") else like.dtype)


def _dtype(x) -> str:
    return str(x.ty.dtype if hasattr(x, "ty") else x.dtype)


def _let(value, body_of) -> tirx.PrimExpr:
    """`body_of(v)` with v bound once to `value` (so a subexpression used several times is computed once)."""
    var = tirx.Var("v", _dtype(value))
    return tirx.Let(var, value, body_of(var))


def _horner(t, coefficients: list[float]) -> tirx.PrimExpr:
    acc = _const(coefficients[-1], t)
    for c in reversed(coefficients[:-1]):
        acc = acc * t + _const(c, t)
    return acc


def _pow2(n_int) -> tirx.PrimExpr:
    """2^n for an int32 n in [-126, 127], from the exponent bits."""
    dtype = _dtype(n_int).replace("int32", "float32")
    return tirx.reinterpret(dtype, tirx.shift_left(n_int + _const(127, n_int), _const(23, n_int)))


def exp(x) -> tirx.PrimExpr:
    """e^x for a float32 expression of any lanes (see the module docstring)."""
    int_type = _dtype(x).replace("float32", "int32")

    def body(v):
        clamped = tirx.Max(tirx.Min(v, _const(EXP_MAX, v)), _const(EXP_MIN, v))

        def reduced(c):
            n = tirx.floor(c * _const(1 / math.log(2), c) + _const(0.5, c))

            def with_n(nf):
                r = c - nf * _const(LN2_HI, c) - nf * _const(LN2_LO, c)
                p = _horner(r, [1.0 / math.factorial(k) for k in range(8)])
                n_int = tirx.Cast(int_type, nf)
                half = tirx.shift_right(n_int, _const(1, n_int))
                return p * _pow2(half) * _pow2(n_int - half)
            return _let(n, with_n)
        value = _let(clamped, reduced)
        value = tirx.Select(v < _const(EXP_MIN, v), _const(0.0, v), value)
        value = tirx.Select(v > _const(EXP_MAX, v), _const(math.inf, v), value)
        return tirx.Select(tirx.isnan(v), v, value)
    return _let(x, body)


def erf(x) -> tirx.PrimExpr:
    """erf(x) for a float32 expression of any lanes (see the module docstring)."""
    def pieces(a):
        def small(sq):
            return a * _horner(sq, ERF_SMALL)
        clamped = tirx.Min(tirx.Max(a, _const(ERF_SPLIT, a)), _const(ERF_ONE, a))
        t = (clamped - _const(2.5, a)) * _const(1 / 1.5, a)
        large = _const(1.0, a) - exp(-(clamped * clamped)) * _horner(t, ERF_LARGE)
        value = tirx.Select(a < _const(ERF_SPLIT, a), _let(a * a, small), large)
        return tirx.Select(a >= _const(ERF_ONE, a), _const(1.0, a), value)
    return _odd(x, pieces)


def tanh(x) -> tirx.PrimExpr:
    """tanh(x) for a float32 expression of any lanes (see the module docstring)."""
    def pieces(a):
        small = _let(a * a, lambda sq: a * _horner(sq, TANH_SMALL))
        clamped = tirx.Min(a, _const(TANH_ONE, a))
        large = _const(1.0, a) - _const(2.0, a) / (exp(clamped + clamped) + _const(1.0, a))
        return tirx.Select(a < _const(TANH_SPLIT, a), small, large)
    return _odd(x, pieces)


def _odd(x, pieces) -> tirx.PrimExpr:
    """f(x) for an odd f given as `pieces(|x|)`: the sign put back, NaN passed through."""
    def body(v):
        a = tirx.Select(v < _const(0.0, v), -v, v)
        # a Let node must not appear twice (the simplifier would bind its variable twice)
        signed = _let(_let(a, pieces), lambda m: tirx.Select(v < _const(0.0, v), -m, m))
        return tirx.Select(tirx.isnan(v), v, signed)
    return _let(x, body)


def _root_power(x, exponent: float) -> tirx.PrimExpr:
    """x^0.5 or x^0.75 through sqrt, with pow's answers at +-0 and -inf."""
    def body(v):
        root = _let(tirx.sqrt(v), lambda s: s if exponent == 0.5 else s * tirx.sqrt(s))
        value = tirx.Select(v == _const(-math.inf, v), _const(math.inf, v), root)
        return tirx.Select(v == _const(0.0, v), _const(0.0, v), value)
    return _let(x, body)


POWER_FORMS = {
    1.0: lambda x: x,
    2.0: lambda x: _let(x, lambda v: v * v),
    3.0: lambda x: _let(x, lambda v: v * v * v),
    0.5: lambda x: _root_power(x, 0.5),
    0.75: lambda x: _root_power(x, 0.75),
}


def _constant_exponent(e) -> float | None:
    """The exponent's value when it is a constant (a scalar, or one broadcast to every lane), else None."""
    if isinstance(e, tirx.Broadcast):
        e = e.value
    return float(e.value) if isinstance(e, tirx.FloatImm) else None


def _power_rule(call):
    """pow(x, c) for c in POWER_FORMS on float32; anything else to TVM's rule (powf per lane)."""
    exponent = _constant_exponent(call.args[1])
    if _state["on"] and _dtype(call).startswith("float32") and exponent in POWER_FORMS:
        return POWER_FORMS[exponent](call.args[0])
    previous = _state["previous"].get("tirx.pow")
    return previous(call) if previous is not None else call


def _rule(op_name: str, build):
    def lower(call):
        if not _state["on"] or not _dtype(call).startswith("float32"):
            previous = _state["previous"].get(op_name)
            return previous(call) if previous is not None else call
        return build(call.args[0])
    return lower


def install() -> None:
    """Registers the llvm lowering of exp, erf, tanh and pow (once per process; TVM keeps the highest plevel)."""
    if _state["previous"]:
        return
    rules = [(name, _rule(name, build)) for name, build in (("tirx.exp", exp), ("tirx.erf", erf), ("tirx.tanh", tanh))]
    for name, rule in rules + [("tirx.pow", _power_rule)]:
        op = tvm.ir.Op.get(name)
        _state["previous"][name] = op.get_attr("llvm.FLowerIntrinsic")
        tvm.ir.register_op_attr(name, "llvm.FLowerIntrinsic", rule, level=PLEVEL)


@contextlib.contextmanager
def libm() -> Iterator[None]:
    """Kernels built inside use TVM's lowering (llvm.exp, libm's erff, tanh through expf, powf): an A/B's "before"."""
    _state["on"] = False
    try:
        yield
    finally:
        _state["on"] = True
