"""NaN and Inf through compiled models (graphopt.lowering.nan_semantics), against ONNX Runtime.

One model holds every op family as independent outputs (one compile for the module), fed
inputs that mix NaN, +inf, -inf and ordinary values, with crafted rows (all -inf, all +inf,
+inf beside -inf, all NaN, NaN first). Each family's outputs must have ONNX Runtime's NaN
positions and Inf signs, and close finite values.

Where ONNX Runtime's answer depends on where a NaN falls (max/min reductions, max pooling,
ArgMax/ArgMin: see nan_semantics' docstring), the expectation is ONNX Runtime's on every row
or window without NaN, and NaN (for ArgMax/ArgMin the first NaN's index, as numpy) on the rest.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from numpy.lib.stride_tricks import sliding_window_view
from onnx import TensorProto, helper, numpy_helper

from graphopt.compiler import CompileOptions, compile_model
from graphopt.runtime import load

OPSET = 18  # Mish needs 18
F32, I64, BOOL = TensorProto.FLOAT, TensorProto.INT64, TensorProto.BOOL
SPECIAL = (np.nan, np.inf, -np.inf)


def _specials(shape, seed: int, fraction: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 2).astype(np.float32)
    flat = x.reshape(-1)
    where = rng.choice(flat.size, size=max(3, int(flat.size * fraction)), replace=False)
    flat[where] = [SPECIAL[k % 3] for k in range(where.size)]
    return x


def _inputs() -> dict[str, np.ndarray]:
    x = _specials((2, 3, 6, 6), seed=1, fraction=0.15)
    x[0, 0, :3, [1, 4]] = 1.5  # keeps the -inf block below out of padded 3x3 windows
    x[0, 0, :2, 2:4] = -np.inf  # a 2x2 pooling window of -inf only
    x[0, 1, 0], x[0, 1, 1], x[0, 1, 2] = -np.inf, np.inf, [np.inf, -np.inf, 1, 2, 3, 4]
    x[0, 2, 0], x[0, 2, 1] = np.nan, [np.nan, 1, 2, 3, 4, 5]
    x[1, 0] = np.random.default_rng(2).standard_normal((6, 6))  # a finite channel
    y = _specials((2, 3, 6, 6), seed=3, fraction=0.15)
    b = _specials((1, 3, 1, 6), seed=4, fraction=0.3)
    c = np.random.default_rng(5).standard_normal((1, 8, 8, 8)).astype(np.float32)
    c[0, 1, 2, 3], c[0, 4, 6, 1], c[0, 6, 0, 7] = SPECIAL
    a = np.random.default_rng(6).standard_normal((16, 32)).astype(np.float32)
    a[1, 3], a[7, 20], a[12, 5] = SPECIAL
    rng = np.random.default_rng(8)  # pooling shapes: +-inf, no NaN, so ONNX Runtime's answer is well defined
    p, q, r = (rng.standard_normal(shape).astype(np.float32) for shape in ((1, 2, 7, 7), (1, 2, 9), (1, 1, 4, 4, 4)))
    p[0, 0, 1, 1], p[0, 1, 6, 6], q[0, 0, 4], r[0, 0, 1, 1, 1] = np.inf, -np.inf, np.inf, -np.inf
    return {"X": x, "Y": y, "B": b, "C": c, "A": a, "P": p, "Q": q, "R": r}


class Graph:
    """Nodes and outputs of the one test model, each output filed under its family."""

    def __init__(self) -> None:
        self.nodes, self.inits, self.outputs, self.family = [], [], [], {}
        self._const = 0

    def const(self, value, dtype=np.float32) -> str:
        self._const += 1
        name = f"const{self._const}"
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype), name))
        return name

    def node(self, op: str, inputs: list[str], out: str, family: str | None = None, dtype=F32, **attrs) -> str:
        self.nodes.append(helper.make_node(op, inputs, [out], **attrs))
        if family:
            self.outputs.append(helper.make_tensor_value_info(out, dtype, None))
            self.family.setdefault(family, []).append(out)
        return out


def _elementwise(g: Graph) -> None:
    for op in ("Relu", "Sigmoid", "Tanh", "Erf", "Sqrt", "Abs", "Exp", "Log", "Floor", "Ceil", "Round",
               "Softplus", "Softsign", "Mish", "Neg", "Reciprocal"):
        g.node(op, ["X"], op.lower(), "unary")
    g.node("IsNaN", ["X"], "isnan", "unary", BOOL)
    g.node("IsInf", ["X"], "isinf", "unary", BOOL)
    for op in ("LeakyRelu", "Elu", "Selu", "HardSigmoid", "HardSwish", "Sign"):
        g.node(op, ["X"], op.lower(), "activation")
    g.node("PRelu", ["X", "B"], "prelu", "activation")
    g.node("Clip", ["X", g.const(-1.0), g.const(1.5)], "clip", "clip")
    g.node("Clip", ["X", g.const(0.0), g.const(6.0)], "relu6", "clip")
    _clip_bounds(g)
    for op in ("Max", "Min"):
        g.node(op, ["X", "Y"], f"{op}2", "max_min")
        g.node(op, ["X", "Y", "B"], f"{op}3_broadcast", "max_min")
        g.node(op, ["X"], f"{op}1", "max_min")
    for op in ("Pow", "Div", "Add", "Mul", "Sub"):
        g.node(op, ["X", "Y"], op.lower(), "arithmetic")
    for op in ("Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual"):
        g.node(op, ["X", "Y"], op.lower(), "compare", BOOL)
    g.node("Where", [g.node("Less", ["X", "B"], "mask"), "X", "Y"], "where", "compare")


def _clip_bounds(g: Graph) -> None:
    """Clip's bounds in every form a model gives them: NaN (unbounded), absent, crossed
    (min > max answers max), a Constant node, and one computed at run time."""
    g.node("Clip", ["X", g.const(np.nan), g.const(2.0)], "clip_nan_low", "clip")
    g.node("Clip", ["X", "", g.const(0.5)], "clip_high_only", "clip")
    g.node("Clip", ["X", g.const(1.0), g.const(-1.0)], "clip_crossed", "clip")
    g.nodes.append(helper.make_node("Constant", [], ["three"], value=numpy_helper.from_array(np.float32(3.0))))
    g.node("Clip", ["X", "", "three"], "clip_constant_node", "clip")
    g.node("Clip", ["X", "", g.node("ReduceMax", ["B"], "b_peak", keepdims=0)], "clip_runtime", "clip")


def _reductions(g: Graph) -> None:
    last, hw = g.const([-1], np.int64), g.const([2, 3], np.int64)
    for op in ("ReduceMax", "ReduceMin"):
        g.node(op, ["X", last], f"{op}_last", "reduce_max_min", keepdims=0)
        g.node(op, ["X", hw], f"{op}_hw", "reduce_max_min")
    for op in ("ReduceSum", "ReduceMean", "ReduceL2", "ReduceLogSumExp", "ReduceSumSquare"):
        g.node(op, ["X", last], op, "reduce_other", keepdims=0)
    for op, last_index in (("ArgMax", 0), ("ArgMin", 0), ("ArgMax", 1), ("ArgMin", 1)):
        g.node(op, ["X"], f"{op}_{last_index}", "argmax_argmin", I64, axis=-1, keepdims=0,
               select_last_index=last_index)
    g.node("Softmax", ["X"], "softmax", "softmax", axis=-1)
    g.node("LogSoftmax", ["X"], "log_softmax", "softmax", axis=-1)
    g.node("MaxPool", ["X"], "MaxPool_2", "pool_max", kernel_shape=[2, 2], strides=[2, 2])
    g.node("MaxPool", ["X"], "MaxPool_3_pad", "pool_max", kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    g.node("GlobalMaxPool", ["X"], "GlobalMaxPool", "pool_max")
    for name, attrs in (("ceil", {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}),
                        ("dilated", {"kernel_shape": [2, 2], "dilations": [2, 2], "pads": [1, 1, 1, 1]}),
                        ("asymmetric", {"kernel_shape": [3, 2], "pads": [0, 1, 2, 0], "strides": [1, 2]}),
                        ("same_upper", {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "SAME_UPPER"})):
        g.node("MaxPool", ["P"], f"MaxPool_{name}", "pool_max_shapes", **attrs)
    g.node("MaxPool", ["Q"], "MaxPool_1d", "pool_max_shapes", kernel_shape=[3], strides=[2], pads=[1, 1])
    g.node("MaxPool", ["R"], "MaxPool_3d", "pool_max_shapes", kernel_shape=[2, 2, 2], strides=[2, 2, 2])
    g.node("ReduceMax", ["R"], "ReduceMax_all", "pool_max_shapes", keepdims=0)
    g.node("AveragePool", ["X"], "average_pool", "pool_average", kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    g.node("GlobalAveragePool", ["X"], "global_average_pool", "pool_average")
    scale = g.const([0.5, 1.0, 2.0])
    g.node("BatchNormalization", ["X", scale, g.const([0.1, 0.2, 0.3]), g.const([0.0, 1.0, -1.0]),
                                  g.const([1.0, 0.5, 2.0])], "batch_norm", "normalization")
    g.node("LayerNormalization", ["X", g.const(np.linspace(0.5, 1.5, 6)), g.const(np.linspace(-1, 1, 6))],
           "layer_norm", "normalization", axis=-1)


def _epilogues(g: Graph) -> None:
    """Convolutions and matmuls with activations graphopt's schedules fuse into their tile."""
    rng = np.random.default_rng(7)
    k, bias = g.const(rng.standard_normal((16, 8, 3, 3))), g.const(rng.standard_normal(16))
    for act, extra in (("Relu", []), ("Clip", [g.const(0.0), g.const(6.0)]), ("LeakyRelu", []), ("Elu", [])):
        conv = g.node("Conv", ["C", k, bias], f"conv_{act}_in", pads=[1, 1, 1, 1])
        g.node(act, [conv, *extra], f"conv_{act}", "conv_epilogue")
    dw = g.node("Conv", ["C", g.const(rng.standard_normal((8, 1, 3, 3)))], "dw", pads=[1, 1, 1, 1], group=8)
    g.node("Relu", [dw], "depthwise_relu", "conv_epilogue")
    w, wb = g.const(rng.standard_normal((32, 24))), g.const(rng.standard_normal(24))
    g.node("Relu", [g.node("Add", [g.node("MatMul", ["A", w], "mm"), wb], "mm_bias")], "matmul_relu", "matmul_epilogue")
    g.node("Relu", [g.node("Gemm", ["A", g.const(rng.standard_normal((24, 32))), wb], "gemm", transB=1)],
           "gemm_relu", "matmul_epilogue")
    special = rng.standard_normal((32, 24)).astype(np.float32)
    special[0, 0], special[5, 3], special[9, 9] = SPECIAL
    g.node("Relu", [g.node("MatMul", ["A", g.const(special)], "mm_special")], "matmul_special_weights_relu",
           "matmul_epilogue")


def _model(feeds: dict[str, np.ndarray]) -> tuple[onnx.ModelProto, dict[str, list[str]], dict[str, np.ndarray]]:
    """(model, family table, ONNX Runtime's outputs). The outputs' shapes are taken from ONNX
    Runtime's run of the model before they are written in (the checker wants them)."""
    import onnxruntime as ort

    g = Graph()
    _elementwise(g)
    _reductions(g)
    _epilogues(g)
    inputs = [helper.make_tensor_value_info(n, F32, v.shape) for n, v in feeds.items()]
    graph = helper.make_graph(g.nodes, "nan_semantics", inputs, g.outputs, g.inits)
    model = helper.make_model(graph, ir_version=10, opset_imports=[helper.make_opsetid("", OPSET)])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in g.outputs]
    want = dict(zip(names, session.run(names, feeds)))
    del model.graph.output[:]
    model.graph.output.extend(helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
                              for n, v in want.items())
    onnx.checker.check_model(model)
    return model, g.family, want


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """(family table, graphopt's outputs, ONNX Runtime's outputs, inputs): one compile."""
    feeds = _inputs()
    model, families, want = _model(feeds)
    out = tmp_path_factory.mktemp("nan_semantics")
    compile_model(model, out / "art", CompileOptions(fallback=False))
    return families, load(out / "art").run(feeds), want, feeds


def assert_same(name: str, got: np.ndarray, want: np.ndarray) -> None:
    """NaN positions equal, Inf signs equal, finite values close (integers and booleans equal)."""
    assert got.shape == want.shape and got.dtype == want.dtype, (name, got.dtype, got.shape, want.dtype, want.shape)
    if want.dtype.kind != "f":
        np.testing.assert_array_equal(got, want, err_msg=name)
        return
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=f"{name}: NaN positions")
    infinite = np.isinf(want)
    np.testing.assert_array_equal(np.isinf(got), infinite, err_msg=f"{name}: Inf positions")
    np.testing.assert_array_equal(got[infinite], want[infinite], err_msg=f"{name}: Inf signs")
    finite = np.isfinite(want)
    np.testing.assert_allclose(got[finite], want[finite], rtol=1e-4, atol=1e-4, err_msg=name)


def _windows_with_nan(x: np.ndarray, kernel: int, stride: int, pad: int) -> np.ndarray:
    padded = np.pad(np.isnan(x), [(0, 0), (0, 0), (pad, pad), (pad, pad)])
    return sliding_window_view(padded, (kernel, kernel), axis=(2, 3))[:, :, ::stride, ::stride].any(axis=(-1, -2))


def _nan_wins(name: str, x: np.ndarray, ort: np.ndarray) -> np.ndarray:
    """ONNX Runtime's answer where no NaN is involved; NaN (ArgMax/ArgMin: the first NaN's
    index, or the last one's with select_last_index) where one is."""
    want = ort.copy()
    if name.startswith("Arg"):
        rows = np.isnan(x).any(axis=-1)
        flip = name.endswith("_1")
        nan_at = np.argmax(np.isnan(x[..., ::-1] if flip else x), axis=-1)
        want[rows] = (x.shape[-1] - 1 - nan_at if flip else nan_at)[rows]
        return want
    if name.startswith("Reduce"):
        axes = (-1,) if name.endswith("_last") else (2, 3)
        mask = np.isnan(x).any(axis=axes, keepdims=not name.endswith("_last"))
    elif name == "GlobalMaxPool":
        mask = np.isnan(x).any(axis=(2, 3), keepdims=True)
    else:
        mask = _windows_with_nan(x, *((2, 2, 0) if name == "MaxPool_2" else (3, 1, 1)))
    want[mask] = np.nan
    return want


ORT_EXACT = ("unary", "activation", "clip", "max_min", "arithmetic", "compare", "reduce_other", "softmax",
             "pool_max_shapes", "pool_average", "normalization", "conv_epilogue", "matmul_epilogue")
NAN_WINS = ("reduce_max_min", "argmax_argmin", "pool_max")


@pytest.mark.parametrize("family", ORT_EXACT)
def test_equal_to_onnx_runtime(compiled, family):
    families, got, want, _ = compiled
    for name in families[family]:
        assert_same(name, got[name], want[name])


@pytest.mark.parametrize("family", NAN_WINS)
def test_nan_wins_where_onnx_runtime_depends_on_position(compiled, family):
    families, got, want, feeds = compiled
    for name in families[family]:
        assert_same(name, got[name], _nan_wins(name, feeds["X"], want[name]))


def test_inputs_cover_every_case():
    """The crafted rows the families rely on are really there."""
    x = _inputs()["X"]
    rows = x.reshape(-1, 6)
    assert any(np.isneginf(r).all() for r in rows) and any(np.isposinf(r).all() for r in rows)
    assert any(np.isnan(r).all() for r in rows) and any(np.isnan(r[0]) and not np.isnan(r[1:]).any() for r in rows)
    assert np.isneginf(x[0, 0, :2, 2:4]).all()


def test_legalize_passes_without_legalize_ops_are_refused():
    import tvm

    from graphopt.lowering.nan_semantics import with_nan_semantics

    with pytest.raises(RuntimeError, match="no LegalizeOps"):
        with_nan_semantics([tvm.relax.transform.FuseOps()], tvm.target.Target({"kind": "llvm"}))
