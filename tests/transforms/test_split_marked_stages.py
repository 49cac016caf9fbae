"""split_marked_stages: weight packing is split out of the marked kernels only, and an
opaque kernel (TOPI's scatter_elements) in the same module no longer stops the compile."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import tvm
from onnx import TensorProto, helper, numpy_helper
from tvm import relax
from tvm.script import ir as I
from tvm.script import relax as R
from tvm.script import tirx as T

from graphopt.transforms.split_marked_stages import has_marked_stage, split_marked_stages


@I.ir_module
class _Unmarked:
    @T.prim_func(private=True, s_tir=True)
    def copy(a: T.Buffer((4,), "float32"), b: T.Buffer((4,), "float32")):
        with T.sblock("copy_generic"):  # opaque, as TOPI's hand-written kernels are
            T.reads()
            T.writes()
            for i in range(4):
                b[i] = a[i]

    @R.function
    def main(x: R.Tensor((4,), "float32")):
        R.func_attr({"num_input": 1})
        cls = _Unmarked
        with R.dataflow():
            y = R.call_tir(cls.copy, (x,), out_ty=R.Tensor((4,), "float32"))
            R.output(y)
        return y


def test_nothing_marked_is_a_no_op():
    assert not has_marked_stage(_Unmarked["copy"])
    result = split_marked_stages(_Unmarked)
    assert not result.modified and result.module is _Unmarked


def test_packed_weight_and_scatter_in_one_model(tmp_path):
    """MatMul with a weight (its packing is marked and split) feeding ScatterElements
    (TOPI's opaque kernel, which TVM's split pass alone refuses): compiles, and computes
    what ONNX Runtime computes."""
    import onnxruntime as ort

    from graphopt.compiler import CompileOptions, compile_model
    from graphopt.runtime import load

    rng = np.random.default_rng(0)
    weight = rng.standard_normal((16, 32)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["m"]),
         helper.make_node("ScatterElements", ["m", "idx", "upd"], ["y"], axis=1)], "mm_scatter",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [8, 16]),
         helper.make_tensor_value_info("idx", TensorProto.INT64, [8, 2]),
         helper.make_tensor_value_info("upd", TensorProto.FLOAT, [8, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [8, 32])],
        [numpy_helper.from_array(weight, "w")])
    model = helper.make_model(graph, ir_version=10, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    feeds = {"x": rng.standard_normal((8, 16)).astype(np.float32),
             "idx": rng.integers(-32, 32, (8, 2)).astype(np.int64),
             "upd": rng.standard_normal((8, 2)).astype(np.float32)}
    feeds["idx"][:, 1] = (feeds["idx"][:, 0] + 7) % 32  # distinct targets per row: one answer
    result = compile_model(model, tmp_path / "art", CompileOptions(time_limit=1.0))
    assert result.plan["weights"]["prepared_at_compile"] >= 1  # the MatMul weight was packed
    expected = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    np.testing.assert_allclose(load(tmp_path / "art").run(feeds)["y"], expected, rtol=1e-4, atol=1e-5)


def test_tvm_pass_alone_still_fails_on_opaque_kernels():
    """Why the rewrite exists; if TVM learns to skip such kernels, this is the sign to drop it."""
    with pytest.raises(tvm.error.InternalError, match="compute block"):
        relax.transform.SplitLayoutRewritePreproc()(_Unmarked)
