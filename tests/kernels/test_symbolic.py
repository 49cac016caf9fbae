"""Symbolic extents (range compiles): the GEMM rule takes kernels whose row or batch axis is a
symbol, and each one computes the same numbers as numpy at several values of it, odd ones too."""

from __future__ import annotations

import numpy as np
import pytest
import tvm
from tvm import te, tirx

from graphopt.kernels.schedules import schedule_kernel, symbolic
from graphopt.lowering.target import make_target


def _i64(value: int) -> tirx.IntImm:
    """Static dims as int64, like a Relax-legalized kernel's (mixing widths is refused by TVM)."""
    return tirx.IntImm("int64", value)


def _dense(rows: tirx.Var, k: int, n: int) -> tirx.PrimFunc:
    """y[rows, n] = relu(x[rows, k] @ w[k, n] + b[n]): a classifier/projection with a symbolic batch."""
    k, n = _i64(k), _i64(n)
    x, w, b = te.placeholder((rows, k), name="x"), te.placeholder((k, n), name="w"), te.placeholder((n,), name="b")
    r = te.reduce_axis((_i64(0), k), name="r")
    mm = te.compute((rows, n), lambda i, j: te.sum(x[i, r] * w[r, j], axis=r), name="mm")
    y = te.compute((rows, n), lambda i, j: te.max(mm[i, j] + b[j], tirx.const(0.0, "float32")), name="y")
    return te.create_prim_func([x, w, b, y])


def _scores(batch: tirx.Var, seq: tirx.Var, head: int) -> tirx.PrimFunc:
    """s[batch, seq, seq] = q @ k: attention scores, both output axes symbolic."""
    head = _i64(head)
    q, k = te.placeholder((batch, seq, head), name="q"), te.placeholder((batch, head, seq), name="k")
    r = te.reduce_axis((_i64(0), head), name="r")
    s = te.compute((batch, seq, seq), lambda n, i, j: te.sum(q[n, i, r] * k[n, r, j], axis=r), name="s")
    return te.create_prim_func([q, k, s])


def _conv(batch: tirx.Var, c_in: int, c_out: int, size: int) -> tirx.PrimFunc:
    """A padded 3x3 NCHW convolution with a symbolic batch (the vector axis is batch * H * W)."""
    c_in, c_out, size, three = _i64(c_in), _i64(c_out), _i64(size), _i64(3)
    x = te.placeholder((batch, c_in, size, size), name="x")
    w = te.placeholder((c_out, c_in, three, three), name="w")
    one = _i64(1)
    pad = te.compute((batch, c_in, size + 2, size + 2), lambda n, c, h, v: tirx.if_then_else(
        tirx.all(h >= one, h <= size, v >= one, v <= size), x[n, c, h - one, v - one], tirx.const(0.0, "float32")),
        name="pad")
    zero = _i64(0)
    rc, ry, rx = (te.reduce_axis((zero, c_in), "rc"), te.reduce_axis((zero, three), "ry"),
                  te.reduce_axis((zero, three), "rx"))
    y = te.compute((batch, c_out, size, size), lambda n, f, h, v: te.sum(
        pad[n, rc, h + ry, v + rx] * w[f, rc, ry, rx], axis=[rc, ry, rx]), name="y")
    return te.create_prim_func([x, w, y])


def _run(func: tirx.PrimFunc, arrays: list[np.ndarray], out_shape: tuple) -> np.ndarray:
    target = make_target("llvm")
    with target:
        sch, rule = schedule_kernel(func, target)
    assert rule == "gemm", rule
    lib = tvm.compile(tvm.IRModule({"main": sch.mod["main"]}), target=target)
    dev = tvm.cpu()
    args = [tvm.runtime.tensor(a, dev) for a in arrays] + [tvm.runtime.tensor(np.zeros(out_shape, "float32"), dev)]
    lib["main"](*args)
    return args[-1].numpy()


def _random(rng, *shape) -> np.ndarray:
    return rng.standard_normal(shape).astype("float32")


@pytest.mark.parametrize("rows", [1, 3, 7, 32])
def test_a_dense_layer_with_a_symbolic_batch_matches_numpy(rows):
    rng = np.random.default_rng(rows)
    x, w, b = _random(rng, rows, 37), _random(rng, 37, 10), _random(rng, 10)
    got = _run(_dense(tirx.Var("batch", "int64"), 37, 10), [x, w, b], (rows, 10))
    np.testing.assert_allclose(got, np.maximum(x @ w + b, 0), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("batch,seq", [(1, 1), (1, 16), (3, 17), (2, 33)])
def test_attention_scores_with_two_symbols_match_numpy(batch, seq):
    rng = np.random.default_rng(seq)
    q, k = _random(rng, batch, seq, 16), _random(rng, batch, 16, seq)
    got = _run(_scores(tirx.Var("batch", "int64"), tirx.Var("seq", "int64"), 16), [q, k], (batch, seq, seq))
    np.testing.assert_allclose(got, q @ k, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("batch", [1, 3])
def test_a_convolution_with_a_symbolic_batch_matches_numpy(batch):
    rng = np.random.default_rng(batch)
    x, w = _random(rng, batch, 5, 7, 7), _random(rng, 8, 5, 3, 3)
    got = _run(_conv(tirx.Var("batch", "int64"), 5, 8, 7), [x, w], (batch, 8, 7, 7))
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    want = np.zeros((batch, 8, 7, 7), "float32")
    for ry in range(3):
        for rx in range(3):
            want += np.einsum("nchw,fc->nfhw", padded[:, :, ry:ry + 7, rx:rx + 7], w[:, :, ry, rx])
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_static_factor_is_what_every_value_of_the_extent_is_a_multiple_of():
    n, s = tirx.Var("n", "int64"), tirx.Var("s", "int64")
    extent = symbolic.product([n, tirx.IntImm("int64", 16), tirx.IntImm("int64", 16)])
    assert symbolic.static_factor(extent) == 256 and symbolic.divides(extent, 16) and not symbolic.divides(extent, 512)
    assert symbolic.nominal(symbolic.product([n, s])) == symbolic.NOMINAL ** 2
    assert symbolic.static_factor((n * 49 + 15) // 16) is None  # not a product: callers pad or decline
    assert symbolic.product([tirx.IntImm("int64", 3), 4]) == 12


def test_every_kernel_family_takes_its_rule_with_a_symbolic_batch_and_matches_onnxruntime(tmp_path):
    """The conv zoo (dense, 1x1, strided, depthwise and grouped convolutions, poolings, a Gemm) with
    its batch a symbol: each family keeps its own rule, none raises, and the artifact agrees with ORT."""
    import onnxruntime as ort

    from graphopt.compiler import CompileOptions, compile_model
    from graphopt.frontend.ranges import DimRange
    from graphopt.runtime.session import load
    from tests.kernels.test_schedules import conv_zoo

    model = conv_zoo()
    for value in (model.graph.input[0], model.graph.output[0]):
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    result = compile_model(model, tmp_path / "art",
                           CompileOptions(input_shapes={"x": (DimRange(1, 8), 8, 14, 14), "a": (2, 20, 7)}))
    by_rule = result.plan["shape_range"]["kernels"]["by_rule"]
    assert by_rule == {"depthwise": 1, "fallback": 3, "gemm": 4, "grouped": 1}, by_rule
    session, reference = load(result.artifact), ort.InferenceSession(model.SerializeToString())
    rng = np.random.default_rng(0)
    a = _random(rng, 2, 20, 7)
    for batch in (1, 3, 8):
        x = _random(rng, batch, 8, 14, 14)
        got, want = session.run({"x": x, "a": a}), reference.run(None, {"x": x, "a": a})
        for name, expected in zip(("y", "z"), want):
            np.testing.assert_allclose(got[name], expected, rtol=1e-4, atol=1e-4)


def test_an_elementwise_kernel_with_a_symbolic_batch_is_parallel_over_it_and_vectorized_inside():
    """Fallback rule: [batch, 16, 32, 32] + 1, relu: the loops outside the innermost fuse into one
    parallel loop that grows with the batch; the static innermost axis is split into whole vectors."""
    batch = tirx.Var("batch", "int64")
    x = te.placeholder((batch, _i64(16), _i64(32), _i64(32)), name="x")
    y = te.compute(x.shape, lambda *i: te.max(x(*i) + tirx.const(1.0, "float32"), tirx.const(0.0, "float32")),
                   name="y")
    func = te.create_prim_func([x, y])
    target = make_target("llvm")
    with target:
        sch, rule = schedule_kernel(func, target)
    assert rule == "fallback"
    loops = [sch.get(loop) for loop in sch.get_loops(sch.get_sblock("y"))]
    assert loops[0].kind == tirx.ForKind.PARALLEL and not symbolic.is_static(loops[0].extent)
    assert loops[-1].kind == tirx.ForKind.VECTORIZED and int(loops[-1].extent) % 8 == 0
    lib = tvm.compile(tvm.IRModule({"main": sch.mod["main"]}), target=target)
    for n in (1, 3):
        data = _random(np.random.default_rng(n), n, 16, 32, 32)
        out = tvm.runtime.tensor(np.zeros_like(data))
        lib["main"](tvm.runtime.tensor(data), out)
        np.testing.assert_allclose(out.numpy(), np.maximum(data + 1, 0), rtol=1e-6)
