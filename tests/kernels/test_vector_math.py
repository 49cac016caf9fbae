"""exp, erf and tanh as SIMD polynomials (graphopt.lowering.vector_math): accurate to float32's rounding over
the whole range, NaN and Inf as libm and ONNX Runtime answer them, and no libm call left per lane."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import tvm
from onnx import TensorProto, helper, numpy_helper
from tvm import te, tirx

from graphopt.examples.models import IR_VERSION, OPSET
from graphopt.kernels.schedules import schedule_kernel
from graphopt.lowering import vector_math
from graphopt.lowering.target import make_target

EPS = float(np.finfo(np.float32).eps)
SPECIAL = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-30, -1e-6, 88.7, 88.73, -87.5, -103.9, -104.5, 3.92, -3.9, 1.0, -1.0]
OPS = {"exp": (tirx.exp, math.exp, (-110.0, 90.0)), "erf": (tirx.erf, math.erf, (-6.0, 6.0)),
       "tanh": (tirx.tanh, math.tanh, (-12.0, 12.0))}


def _kernel(op: str, size: int):
    """The elementwise kernel op(x) over `size` floats, as the default rules schedule it: (module, asm)."""
    return _elementwise_kernel(OPS[op][0], size)


def _elementwise_kernel(function, size: int):
    """y[i] = function(x[i]) over `size` floats, scheduled by the default rules and built: (module, asm)."""
    x = te.placeholder((size,), "float32", name="x")
    y = te.compute((size,), lambda i: function(x[i]), name="y")
    target = make_target("llvm")
    with target:
        sch, _ = schedule_kernel(te.create_prim_func([x, y]), target)
    executable = tvm.compile(tvm.IRModule({"main": sch.mod["main"]}), target=target)
    return executable.jit(), executable.mod.inspect_source("asm")


def _run(lib, x: np.ndarray) -> np.ndarray:
    out = tvm.runtime.tensor(np.zeros_like(x))
    lib["main"](tvm.runtime.tensor(x), out)
    return out.numpy()


def _reference(op: str, x: np.ndarray) -> np.ndarray:
    """Correctly rounded float32 results (float64 math, then rounded), inf where float32 overflows."""
    def one(v: float) -> float:
        if math.isnan(v):
            return math.nan
        try:
            return OPS[op][1](v)
        except OverflowError:
            return math.inf
    with np.errstate(over="ignore"):
        return np.array([one(float(v)) for v in x]).astype(np.float32)


@pytest.mark.parametrize("op,ulps", [("exp", 2), ("erf", 2), ("tanh", 2)])
def test_polynomials_are_within_float32_rounding_over_the_whole_range(op, ulps):
    """Random values over the range where the result is a normal float32 and beyond, plus the edges: the
    relative error stays within `ulps` float32 epsilons of the correctly rounded value (measured over 2^20
    random values: exp and tanh 1.0, erf 1.9)."""
    lib, _ = _kernel(op, 4096)
    lo, hi = OPS[op][2]
    x = np.random.default_rng(0).uniform(lo, hi, 4096).astype(np.float32)
    x[:len(SPECIAL)] = SPECIAL
    got, want = _run(lib, x), _reference(op, x)
    normal = np.isfinite(want) & (np.abs(want) >= np.finfo(np.float32).tiny)
    error = np.abs(got[normal].astype(np.float64) - want[normal]) / np.abs(want[normal].astype(np.float64))
    assert error.max() <= ulps * EPS, (x[normal][error.argmax()], error.max())
    special = ~normal & ~np.isnan(want)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got[special], want[special], atol=float(np.finfo(np.float32).tiny))


@pytest.mark.parametrize("op,libm_call", [("exp", "expf"), ("erf", "erff"), ("tanh", "expf")])
def test_a_vectorized_kernel_calls_no_libm_and_libm_restores_tvms_lowering(op, libm_call):
    """The vectorized loop's exp/erf is inline SIMD code; inside vector_math.libm() the same kernel calls
    libm (the A/B baseline), so the switch is real."""
    _, ours = _kernel(op, 1024)
    with vector_math.libm():
        _, tvms = _kernel(op, 1024)
    assert not re.search(rf"call\w*\s+{libm_call}\b", ours)
    assert re.search(rf"call\w*\s+{libm_call}\b", tvms)


def test_gelu_with_erf_and_tanh_match_onnx_runtime_including_nan_and_inf(tmp_path):
    """GELU as BERT exports it (x/sqrt2, Erf, +1, *x, *0.5), and Tanh, at an odd size, compiled by graphopt: every
    output equals ONNX Runtime's within float32 rounding, NaN where ORT has NaN, +-inf where ORT has them."""
    import onnxruntime as ort

    from graphopt.compiler import CompileOptions, compile_model
    from graphopt.runtime import load

    consts = [numpy_helper.from_array(np.array(v, np.float32), n)
              for n, v in (("sqrt2", math.sqrt(2)), ("one", 1.0), ("half", 0.5))]
    node = helper.make_node
    nodes = [node("Div", ["x", "sqrt2"], ["a"]), node("Erf", ["a"], ["e"]), node("Add", ["e", "one"], ["p"]),
             node("Mul", ["x", "p"], ["m"]), node("Mul", ["m", "half"], ["y"]), node("Tanh", ["x"], ["t"])]
    outputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, [7, 389]) for name in ("y", "t")]
    graph = helper.make_graph(nodes, "gelu", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [7, 389])],
                              outputs, consts)
    model = helper.make_model(graph, ir_version=IR_VERSION, opset_imports=[helper.make_opsetid("", OPSET)])
    path = tmp_path / "gelu.onnx"
    path.write_bytes(model.SerializeToString())
    compile_model(path, tmp_path / "art", CompileOptions())
    x = (np.random.default_rng(1).standard_normal((7, 389)) * 4).astype(np.float32)
    x[0, :len(SPECIAL)] = SPECIAL
    ours = load(tmp_path / "art").run({"x": x})
    got, want = ours["y"], ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})[0]
    tanh = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})[1]
    np.testing.assert_array_equal(np.isnan(ours["t"]), np.isnan(tanh))
    np.testing.assert_allclose(ours["t"], tanh, rtol=4 * EPS, atol=float(np.finfo(np.float32).tiny), equal_nan=True)
    finite = np.isfinite(want)
    np.testing.assert_array_equal(got[~finite], want[~finite])  # NaN == NaN here (assert_array_equal)
    # 1 + erf(x/sqrt2) cancels for negative x: both engines' rounding there is relative to |x|, not to y
    bound = 4 * EPS * (np.abs(want[finite]) + np.abs(x[finite]))
    assert (np.abs(got[finite] - want[finite]) <= bound).all(), np.abs(got[finite] - want[finite]).max()


def _power_kernel(exponent: float, size: int):
    """pow(x, exponent) over `size` floats as the default rules schedule it: (module, asm)."""
    return _elementwise_kernel(lambda v: tirx.pow(v, tirx.const(exponent, "float32")), size)


@pytest.mark.parametrize("exponent", [0.5, 0.75, 1.0, 2.0, 3.0])
def test_constant_powers_are_powf_within_two_epsilons_with_its_special_values(exponent):
    """pow(x, c) for c in POWER_FORMS: within 2 float32 epsilons of the correctly rounded power (0.75 measured
    at 1.7), and exactly C's pow (ONNX Runtime's Pow) at NaN, +-inf, +-0, subnormals and negative x, where
    sqrt alone would differ (sqrt(-0) = -0, sqrt(-inf) = NaN); no powf call is left in the kernel."""
    lib, asm = _power_kernel(exponent, 4096)
    x = np.random.default_rng(0).uniform(-5.0, 50.0, 4096).astype(np.float32)
    special = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-30, -1e-6, 1e-40, 3e38, -2.0]
    x[:len(special)] = special
    got = _run(lib, x)
    want = np.array([_c_pow(float(v), exponent) for v in x]).astype(np.float32)
    finite = np.isfinite(want) & (want != 0)
    error = np.abs(got[finite].astype(np.float64) - want[finite]) / np.abs(want[finite].astype(np.float64))
    assert error.max() <= 2 * EPS, (x[finite][error.argmax()], error.max())
    np.testing.assert_array_equal(got[~finite], want[~finite])
    np.testing.assert_array_equal(np.signbit(got[~np.isnan(want)]), np.signbit(want[~np.isnan(want)]))
    assert not re.search(r"call\w*\s+powf\b", asm)


def test_other_exponents_keep_powf():
    """An exponent outside POWER_FORMS is left to TVM's rule: the kernel still calls powf."""
    _, asm = _power_kernel(0.3, 1024)
    assert re.search(r"call\w*\s+powf\b", asm)


def _c_pow(v: float, exponent: float) -> float:
    """C99 pow in float64 (Python's ** raises where C returns inf or NaN)."""
    if math.isnan(v):
        return math.nan
    if v == 0.0:
        return math.copysign(0.0, v) if exponent in (1.0, 3.0) else 0.0
    if math.isinf(v):
        return v if exponent in (1.0, 3.0) else math.inf
    if v < 0 and exponent != int(exponent):
        return math.nan
    try:
        return math.pow(v, exponent)
    except OverflowError:
        return math.copysign(math.inf, v) if exponent in (1.0, 3.0) else math.inf


def _lrn_model(size: int, beta: float):
    node = helper.make_node("LRN", ["x"], ["y"], size=size, alpha=2e-4, beta=beta, bias=1.5)
    shape = [2, 13, 7, 9]
    graph = helper.make_graph([node], "lrn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)])
    return helper.make_model(graph, ir_version=IR_VERSION, opset_imports=[helper.make_opsetid("", OPSET)])


@pytest.mark.parametrize("beta", [0.75, 0.5, 0.6])
def test_lrn_matches_onnx_runtime_and_its_normalizer_calls_no_powf(tmp_path, beta):
    """LRN (inception_v1's normalizer) compiled by graphopt, no node left to the fallback, equals ONNX Runtime
    on random inputs at the default beta (sqrt form), at 0.5 and at an exponent that keeps powf; the library
    links powf only for that last one."""
    import onnxruntime as ort

    from graphopt.compiler import CompileOptions, compile_model
    from graphopt.runtime import load

    model = _lrn_model(5, beta)
    path = tmp_path / "lrn.onnx"
    path.write_bytes(model.SerializeToString())
    compile_model(path, tmp_path / "art", CompileOptions())
    assert json.loads((tmp_path / "art" / "plan.json").read_text())["fallback"]["kernels"] == []
    assert (b"powf" in (tmp_path / "art" / "model.so").read_bytes()) == (beta == 0.6)
    x = (np.random.default_rng(2).standard_normal((2, 13, 7, 9)) * 30).astype(np.float32)
    got = load(tmp_path / "art").run({"x": x})["y"]
    want = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})[0]
    np.testing.assert_allclose(got, want, rtol=4 * EPS, atol=0)
