"""bind_weight_only_result: a result computed from weights alone survives LiftTransformParams.

TVM's LiftTransformParams drops a lifted value that is the function's result and leaves
it undefined in `main` (apache/tvm#17231); graphopt binds such a result outside the
dataflow block first. Checked on the Relax program, and end to end on the model shape
that hit it: every input of the conformance suite's integer cases baked in as a constant.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from tvm import relax
from tvm.script import ir as I
from tvm.script import relax as R

from graphopt.transforms.bind_result import bind_weight_only_result


@I.ir_module
class _WeightOnlyResult:
    @R.function
    def main(a: R.Tensor((2,), "float32"), w: R.Tensor((2,), "float32")):
        R.func_attr({"num_input": 1})
        with R.dataflow():
            s = R.add(w, w)
            b = R.add(a, a)
            R.output(s, b)
        return s


@I.ir_module
class _ResultIsAWeight:
    @R.function
    def main(a: R.Tensor((2,), "float32"), w: R.Tensor((2,), "float32")):
        R.func_attr({"num_input": 1})
        return w


@I.ir_module
class _ResultReadsAnInput:
    @R.function
    def main(a: R.Tensor((2,), "float32"), w: R.Tensor((2,), "float32")):
        R.func_attr({"num_input": 1})
        with R.dataflow():
            s = R.add(a, w)
            R.output(s)
        return s


def _lifted(mod):
    return relax.transform.LiftTransformParams()(mod)


def test_weight_only_result_stays_defined_after_lifting():
    for mod in (_WeightOnlyResult, _ResultIsAWeight):
        result = bind_weight_only_result(mod)
        assert result.modified and result.record == {"functions": ["main"]}
        main = _lifted(result.module)["main"]
        relax.analysis.well_formed(main)  # raises "Var s is not defined" without the rewrite
        assert main.body.body.same_as(main.params[1])  # the lifted result, a weight of `main`


def test_result_that_reads_an_input_is_left_alone():
    result = bind_weight_only_result(_ResultReadsAnInput)
    assert not result.modified and result.module is _ResultReadsAnInput


def test_model_whose_output_is_all_constants_compiles_and_runs(tmp_path):
    """int16 Add of two initializers: onnxslim cannot fold it (no int16 kernel to run), so
    the sum is weight-only work in `main`, lifted, and the model's one output."""
    from graphopt.compiler import CompileOptions, compile_model
    from graphopt.runtime import load

    x = np.arange(12, dtype=np.int16).reshape(3, 4)
    y = np.full((3, 4), 7, dtype=np.int16)
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "y"], ["s"]), helper.make_node("Neg", ["a"], ["n"])], "consts",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("s", TensorProto.INT16, [3, 4]),
         helper.make_tensor_value_info("n", TensorProto.FLOAT, [2])],
        [numpy_helper.from_array(x, "x"), numpy_helper.from_array(y, "y")])
    model = helper.make_model(graph, ir_version=10, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    compile_model(model, tmp_path / "art", CompileOptions(time_limit=1.0))
    a = np.array([1.5, -2.0], dtype=np.float32)
    out = load(tmp_path / "art").run({"a": a})
    np.testing.assert_array_equal(out["s"], x + y)
    np.testing.assert_array_equal(out["n"], -a)
