"""The rows rule (graphopt.kernels.schedules.rows): softmax, LayerNorm (the op and the primitive form
that exporters write) and last-axis sums take it at odd sizes and agree with ONNX Runtime; a reduction
over another axis does not; NaN and Inf in softmax rows come out as ONNX Runtime's."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import tvm
from onnx import TensorProto, helper, numpy_helper
from tvm import relax

from graphopt.examples.models import IR_VERSION, OPSET
from graphopt.kernels.schedules import schedule_kernel
from graphopt.lowering.target import make_target
from tests.conftest import compile_run_check

# rows of 37 (no vector), 48 (3 x 16), 128, 75 (no power-of-two divisor: odd vectors, common.row_vector)
SHAPES = {"a": [3, 5, 37], "b": [2, 3, 48], "c": [4, 7, 128], "d": [2, 3, 75]}


def _value(name: str, shape: list) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def _primitive_layer_norm(nodes: list, inits: list, x: str, out: str) -> None:
    """LayerNorm as graphopt.train.models writes it (ReduceMean, Sub, Mul, ReduceMean, Add, Sqrt, Div)."""
    node = helper.make_node
    inits.append(numpy_helper.from_array(np.array(1e-5, np.float32), f"{out}_eps"))
    nodes += [node("ReduceMean", [x], [f"{out}_m"], axes=[-1], keepdims=1), node("Sub", [x, f"{out}_m"], [f"{out}_c"]),
              node("Mul", [f"{out}_c", f"{out}_c"], [f"{out}_s"]),
              node("ReduceMean", [f"{out}_s"], [f"{out}_v"], axes=[-1], keepdims=1),
              node("Add", [f"{out}_v", f"{out}_eps"], [f"{out}_ve"]), node("Sqrt", [f"{out}_ve"], [f"{out}_sd"]),
              node("Div", [f"{out}_c", f"{out}_sd"], [out])]


def row_zoo(seed: int = 0) -> onnx.ModelProto:
    """For each input: a scaled softmax, LayerNormalization with random scale and bias, the primitive
    LayerNorm, a last-axis ReduceSum and ReduceMax (NaN-propagating: graphopt.lowering.nan_semantics);
    one output each."""
    rng = np.random.default_rng(seed)
    nodes, inits, outputs = [], [], []
    node = helper.make_node
    for name, shape in SHAPES.items():
        dim = shape[-1]
        inits += [numpy_helper.from_array(rng.standard_normal(dim).astype(np.float32), f"{name}_g"),
                  numpy_helper.from_array(rng.standard_normal(dim).astype(np.float32), f"{name}_b"),
                  numpy_helper.from_array(np.array(0.7, np.float32), f"{name}_k")]
        nodes += [node("Mul", [name, f"{name}_k"], [f"{name}_x"]),
                  node("Softmax", [f"{name}_x"], [f"{name}_sm"], axis=-1),
                  node("LayerNormalization", [name, f"{name}_g", f"{name}_b"], [f"{name}_ln"], axis=-1),
                  node("ReduceSum", [name, "axes"], [f"{name}_sum"], keepdims=1),
                  node("ReduceMax", [name], [f"{name}_max"], axes=[-1], keepdims=1)]
        _primitive_layer_norm(nodes, inits, name, f"{name}_pln")
        outputs += [_value(f"{name}_{kind}", shape) for kind in ("sm", "ln", "pln")]
        outputs += [_value(f"{name}_{kind}", shape[:-1] + [1]) for kind in ("sum", "max")]
    inits.append(numpy_helper.from_array(np.array([-1], np.int64), "axes"))
    graph = helper.make_graph(nodes, "rows", [_value(n, s) for n, s in SHAPES.items()], outputs, inits)
    return helper.make_model(graph, ir_version=IR_VERSION, opset_imports=[helper.make_opsetid("", OPSET)])


def test_softmax_layer_norms_and_sums_take_the_rows_rule_and_match_onnx_runtime(tmp_path):
    plan = compile_run_check(row_zoo(), tmp_path)
    by_rule = plan["schedules"]["by_rule"]
    # per input: softmax, LayerNormalization and the primitive LayerNorm, fused into a LayerNormalization of
    # its own (graphopt.frontend.layer_norm_fusion; a lone ReduceSum or ReduceMax is one reduction block with
    # no spatial output block: Fallback's)
    assert plan["layer_norm"] == {"fused": len(SHAPES)}
    assert by_rule.get("rows", 0) == 3 * len(SHAPES), by_rule


def test_the_primitive_layer_norm_unfused_takes_the_rows_rule_as_two_kernels(tmp_path):
    """Where no LayerNormalization exists to fuse into (opset 16; a training step keeps them too), the
    primitive LayerNorm's two row kernels (the centred input; the variance and division) are the rows rule's."""
    nodes, inits = [], []
    _primitive_layer_norm(nodes, inits, "x", "y")
    graph = helper.make_graph(nodes, "primitive_layer_norm", [_value("x", SHAPES["c"])], [_value("y", SHAPES["c"])],
                              inits)
    model = helper.make_model(graph, ir_version=IR_VERSION, opset_imports=[helper.make_opsetid("", 16)])
    plan = compile_run_check(model, tmp_path)
    assert plan["layer_norm"] == {"fused": 0}
    assert plan["schedules"]["by_rule"].get("rows", 0) == 2, plan["schedules"]["by_rule"]


def _legalized_kernel(shape: list, build) -> tvm.tirx.PrimFunc:
    builder = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType(shape, "float32"))
    with builder.function("main", [x]):
        with builder.dataflow():
            out = builder.emit_output(build(x))
        builder.emit_func_output(out)
    legalized = relax.transform.LegalizeOps()(builder.get())
    return next(f for _, f in legalized.functions_items() if isinstance(f, tvm.tirx.PrimFunc))


@pytest.mark.parametrize("build,rule", [
    (lambda x: relax.op.nn.softmax(x, axis=-1), "rows"),
    (lambda x: relax.op.nn.softmax(x, axis=1), "fallback"),  # over an outer axis: strided, not a row
    (lambda x: relax.op.mean(x, axis=[2, 3]), "fallback"),  # two reduced axes (global pooling)
    (lambda x: relax.op.nn.max_pool2d(x, pool_size=(3, 3)), "pool"),  # windows: the pooling rule
])
def test_the_rule_takes_row_reductions_only(build, rule):
    target = make_target("llvm")
    with target:
        _, taken = schedule_kernel(_legalized_kernel([2, 5, 9, 40], build), target)
    assert taken == rule


@pytest.mark.parametrize("length", [48, 75])
def test_softmax_rows_with_nan_and_inf_come_out_as_onnx_runtimes(tmp_path, length):
    """A NaN or +inf in a row makes the whole row NaN in both engines; -inf entries give 0 and leave the
    rest of the row a distribution; a row of only -inf is NaN; huge finite values do not overflow. Rows
    of 48 (whole vectors) and 75 (odd vectors of 15 or 25 lanes)."""
    import onnxruntime as ort

    from graphopt.compiler import CompileOptions, compile_model
    from graphopt.runtime import load

    shape = [7, length]
    graph = helper.make_graph([helper.make_node("Softmax", ["x"], ["y"], axis=-1)], "softmax",
                              [_value("x", shape)], [_value("y", shape)])
    model = helper.make_model(graph, ir_version=IR_VERSION, opset_imports=[helper.make_opsetid("", OPSET)])
    path = tmp_path / "softmax.onnx"
    path.write_bytes(model.SerializeToString())
    compile_model(path, tmp_path / "art", CompileOptions())
    x = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
    x[0, 5], x[1, 7], x[2, ::3], x[3, :] = np.nan, np.inf, -np.inf, -np.inf
    x[4, 9] = 3e38
    got = load(tmp_path / "art").run({"x": x})["y"]
    want = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})[0]
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    assert np.isnan(got[[0, 1, 3]]).all() and not np.isnan(got[[2, 4, 5, 6]]).any()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7, equal_nan=True)


def test_row_vectors_divide_rows_without_a_power_of_two_divisor():
    from graphopt.kernels.schedules.common import row_vector

    assert row_vector(6625, 16) == 25 and row_vector(6625, 8) == 5  # PP-OCR rec's vocabulary: 5^3 x 53
    assert row_vector(75, 16) == 25 and row_vector(75, 8) == 15
    assert row_vector(128, 16) == 32 and row_vector(48, 16) == 16  # whole registers as before
    assert row_vector(37, 16) == 1  # prime: serial, as before
    assert row_vector(6, 16) == 2  # a power-of-two divisor under 4 and no divisor near a register: as before


@pytest.mark.parametrize("target,lanes", [({"kind": "llvm", "mcpu": "skylake-avx512"}, 25),
                                          ({"kind": "llvm", "mcpu": "haswell"}, 15)])
def test_a_softmax_over_75_is_reduced_and_stored_in_odd_vectors(target, lanes):
    """The row sum and max are rfactored into `lanes` partial results, and the output row stored `lanes` at a
    time: no loop along the row runs one element at a time."""
    with tvm.target.Target(target) as tgt:
        sch, taken = schedule_kernel(_legalized_kernel([4, 75], lambda x: relax.op.nn.softmax(x, axis=-1)), tgt)
    assert taken == "rows"
    script = sch.mod["main"].script()
    assert script.count(f"T.vectorized(T.int64({lanes}))") >= 3, script
    assert "in range(T.int64(75))" not in script, script
