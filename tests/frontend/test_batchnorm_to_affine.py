"""A BatchNormalization that no convolution absorbs (after a Concat) becomes
Mul + Add with the statistics folded once: same numbers, one fused kernel with
the ReLU after it, and the statistics no longer stored."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from graphopt.examples.models import IR_VERSION, OPSET
from tests.conftest import compile_run_check


def _preactivation_model() -> onnx.ModelProto:
    """Concat(x, y) -> BatchNormalization -> Relu -> Conv 1x1 (DenseNet's layer)."""
    rng = np.random.default_rng(0)
    c = 6
    params = {"scale": rng.uniform(0.5, 2.0, c), "bias": rng.standard_normal(c),
              "mean": rng.standard_normal(c), "var": rng.uniform(0.1, 3.0, c)}
    inits = [numpy_helper.from_array(v.astype(np.float32), k) for k, v in params.items()]
    inits.append(numpy_helper.from_array((rng.standard_normal((4, c, 1, 1)) * 0.3).astype(np.float32), "w"))
    nodes = [helper.make_node("Concat", ["x", "y"], ["cat"], axis=1),
             helper.make_node("BatchNormalization", ["cat", "scale", "bias", "mean", "var"], ["bn"],
                              epsilon=1e-3, name="bn0"),
             helper.make_node("Relu", ["bn"], ["r"]),
             helper.make_node("Conv", ["r", "w"], ["out"])]
    graph = helper.make_graph(
        nodes, "preactivation",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 5, 5]),
         helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 5, 5])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 4, 5, 5])], inits)
    return helper.make_model(graph, ir_version=IR_VERSION, opset_imports=[helper.make_opsetid("", OPSET)])


def test_batchnorm_becomes_mul_add_with_folded_statistics():
    from onnx.reference import ReferenceEvaluator

    from graphopt.frontend.batchnorm_to_affine import batchnorms_to_affine
    from graphopt.frontend.shapes import infer_shapes

    model = infer_shapes(_preactivation_model())
    result = batchnorms_to_affine(model)
    rewritten, count = result.module, result.record["rewritten"]
    assert result.modified
    assert count == 1
    assert [n.op_type for n in rewritten.graph.node] == ["Concat", "Mul", "Add", "Relu", "Conv"]
    assert {t.name for t in rewritten.graph.initializer} == {"w", "bn0__bn_factor", "bn0__bn_shift"}
    onnx.checker.check_model(rewritten, full_check=True)
    rng = np.random.default_rng(1)
    feeds = {"x": rng.standard_normal((1, 2, 5, 5)).astype(np.float32),
             "y": rng.standard_normal((1, 4, 5, 5)).astype(np.float32)}
    before = ReferenceEvaluator(model).run(None, feeds)[0]
    after = ReferenceEvaluator(rewritten).run(None, feeds)[0]
    assert np.abs(after - before).max() <= 1e-5 * np.abs(before).max()


def test_computed_statistics_are_left_alone():
    from graphopt.frontend.batchnorm_to_affine import batchnorms_to_affine
    from graphopt.frontend.shapes import infer_shapes

    model = _preactivation_model()
    model.graph.node.insert(0, helper.make_node("Identity", ["mean"], ["mean_copy"]))
    model.graph.node[2].input[3] = "mean_copy"
    unchanged = infer_shapes(model)
    result = batchnorms_to_affine(unchanged)
    assert result.record["rewritten"] == 0 and not result.modified and result.module is unchanged


def test_compiled_preactivation_matches_onnx_runtime_in_one_elementwise_kernel(tmp_path):
    compile_run_check(_preactivation_model(), tmp_path)
    plan = __import__("json").loads((tmp_path / "art" / "plan.json").read_text())
    kernels = [str(step) for step in plan["steps"]]
    assert not any("sqrt" in k or "divide" in k for k in kernels), kernels
    assert any("multiply" in k and "add" in k and "relu" in k for k in kernels), kernels
