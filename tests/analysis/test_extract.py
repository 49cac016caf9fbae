"""Extraction: lifetimes follow views, outputs stay out of the arena."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from graphopt.analysis.extract import extract
from graphopt.frontend import prepare_model
from graphopt.frontend.importer import to_relax
from graphopt.lowering.lower import lower_to_explicit_memory
from graphopt.lowering.target import make_target
from tests.conftest import compile_run_check


def view_outlives_source_model() -> onnx.ModelProto:
    """`a` is read only through a Reshape view that is consumed at the very last
    step; between them three kernels allocate tensors of a's size. A planner that
    did not follow the view would hand a's bytes to one of them."""
    rng = np.random.default_rng(0)

    def weight(name: str) -> onnx.TensorProto:
        return numpy_helper.from_array(rng.standard_normal((64, 64)).astype(np.float32) * 0.3, name)

    shape = numpy_helper.from_array(np.array([8, 8], dtype=np.int64), "shape")
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["a"]),
        helper.make_node("Reshape", ["a", "shape"], ["v"]),
        helper.make_node("MatMul", ["x", "w2"], ["b"]),
        helper.make_node("Softmax", ["b"], ["s"], axis=-1),
        helper.make_node("MatMul", ["s", "w3"], ["c"]),
        helper.make_node("Reshape", ["c", "shape"], ["c8"]),
        helper.make_node("MatMul", ["v", "c8"], ["y"]),
    ]
    graph = helper.make_graph(nodes, "view_outlives_source",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [8, 8])],
                              [weight("w1"), weight("w2"), weight("w3"), shape])
    return helper.make_model(graph, ir_version=10, opset_imports=[helper.make_opsetid("", 17)])


def _extract(model: onnx.ModelProto):
    imported = to_relax(prepare_model(model).model)
    target = make_target("llvm")
    return extract(lower_to_explicit_memory(imported.mod, target)["main"])


def test_a_view_keeps_its_source_alive_until_the_views_last_use():
    extraction = _extract(view_outlives_source_model())
    problem = extraction.problem
    first = min(problem.buffers, key=lambda b: b.start)
    assert first.start == 0
    assert first.end == problem.num_steps, "source of the view must live to the final matmul"


def test_outputs_are_not_planned_and_are_counted_apart():
    extraction = _extract(view_outlives_source_model())
    assert extraction.num_outputs == 1
    assert extraction.output_bytes == 8 * 8 * 4
    assert all(b.size == 64 * 4 for b in extraction.problem.buffers)


def test_view_model_matches_onnx_runtime_with_tightest_planner(tmp_path):
    plan = compile_run_check(view_outlives_source_model(), tmp_path, planner="auto")
    assert plan["arena_bytes"] == plan["lower_bound_bytes"]
