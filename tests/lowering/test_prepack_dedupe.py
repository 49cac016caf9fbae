"""A weight shared by several nodes is prepared once (graphopt.lowering.prepack step 5):
an unrolled recurrence whose Gemm nodes share two transposed weights stores each
prepared weight once, reports the bytes preparation added, keeps its memory plan,
and computes what ONNX Runtime computes."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from graphopt.compiler import compile_model
from graphopt.options import CompileOptions
from graphopt.runtime import load
from tests.conftest import onnx_runtime_outputs, random_feeds, relative_error

STEPS, HIDDEN, INPUT, BATCH = 8, 64, 32, 2


def unrolled_recurrence(trans_b: int = 1) -> onnx.ModelProto:
    """h_{t+1} = tanh(Gemm(h_t, W) + Gemm(x_t, U)) over STEPS steps: 2 weights, 2 * STEPS consumers."""
    rng = np.random.default_rng(0)

    def weight(name, rows, cols):
        shape = (cols, rows) if trans_b else (rows, cols)  # Gemm's B as [N, K] with transB=1
        return numpy_helper.from_array((rng.standard_normal(shape) / np.sqrt(rows)).astype(np.float32), name)

    inputs = [helper.make_tensor_value_info("h0", TensorProto.FLOAT, [BATCH, HIDDEN])]
    nodes, h = [], "h0"
    for t in range(STEPS):
        inputs.append(helper.make_tensor_value_info(f"x{t}", TensorProto.FLOAT, [BATCH, INPUT]))
        nodes += [helper.make_node("Gemm", [h, "W"], [f"a{t}"], transB=trans_b),
                  helper.make_node("Gemm", [f"x{t}", "U"], [f"b{t}"], transB=trans_b),
                  helper.make_node("Add", [f"a{t}", f"b{t}"], [f"s{t}"]),
                  helper.make_node("Tanh", [f"s{t}"], [f"h{t + 1}"])]
        h = f"h{t + 1}"
    graph = helper.make_graph(nodes, "recurrence", inputs,
                              [helper.make_tensor_value_info(h, TensorProto.FLOAT, [BATCH, HIDDEN])],
                              [weight("W", HIDDEN, HIDDEN), weight("U", INPUT, HIDDEN)])
    return helper.make_model(graph, ir_version=10, opset_imports=[helper.make_opsetid("", 17)])


def _compile_and_check(model: onnx.ModelProto, tmp_path, schedules: bool = True):
    path = tmp_path / f"model-{schedules}.onnx"
    onnx.save(model, path)
    result = compile_model(path, tmp_path / f"art-{schedules}", CompileOptions(time_limit=1.0, schedules=schedules))
    feeds = random_feeds(model)
    expected = onnx_runtime_outputs(path, feeds)
    actual = load(result.artifact).run(feeds)
    for name, value in expected.items():
        assert relative_error(actual[name], value) < 1e-4, (name, relative_error(actual[name], value))
    return result


def test_shared_weight_is_prepared_once(tmp_path):
    model = unrolled_recurrence(trans_b=1)
    initializer_bytes = sum(numpy_helper.to_array(i).nbytes for i in model.graph.initializer)
    result = _compile_and_check(model, tmp_path)
    stored = np.load(result.artifact / "params.npz")
    arrays = [stored[k] for k in stored.files]
    stored_bytes = sum(a.nbytes for a in arrays)
    # one prepared tensor per source weight, not one per Gemm node (16 before)
    assert len(arrays) == 2, [a.shape for a in arrays]
    assert stored_bytes <= 1.05 * initializer_bytes, (stored_bytes, initializer_bytes)
    distinct = {(a.dtype.str, a.shape, a.tobytes()) for a in arrays}
    assert len(distinct) == len(arrays)
    weights = result.plan["weights"]
    assert weights["imported"] == 2 and weights["stored"] == 2
    assert weights["imported_bytes"] == initializer_bytes
    assert weights["stored_bytes"] == stored_bytes == result.plan["params_bytes"]
    assert weights["prepared_bytes_added"] == stored_bytes - initializer_bytes
    from graphopt.report import inspect_json, summary_lines

    assert inspect_json(result.manifest, result.plan)["weights"]["prepared_bytes_added"] == 0
    assert any("prepared at compile time) +0.000 MiB over the imported" in line for line in summary_lines(result.plan))


def test_merging_keeps_the_memory_plan(tmp_path):
    """Kernels as TVM schedules them need no packing: the arena is the same with or without it."""
    model = unrolled_recurrence(trans_b=0)
    packed = _compile_and_check(model, tmp_path, schedules=True)
    stock = _compile_and_check(model, tmp_path, schedules=False)
    assert packed.plan["arena_bytes"] == stock.plan["arena_bytes"]
    assert packed.plan["weights"]["stored"] <= 2, packed.plan["weights"]


def test_merge_duplicates_rebinds_main_to_one_parameter():
    """On the IR: 2 * STEPS transform outputs become 2, and `main` takes 2 weights."""
    import tvm

    from graphopt.frontend import prepare_model
    from graphopt.frontend.importer import to_relax
    from graphopt.lowering import lower, prepack
    from graphopt.lowering.target import make_target

    target = make_target("llvm")
    imported = to_relax(prepare_model(unrolled_recurrence(), {}, fold=True, source_sha256="test").model)
    with target:
        mod = tvm.transform.Sequential(lower._through_schedules(target, True, None, prepack=True))(imported.mod)
    program, transform = prepack.split_transform(mod)
    assert len(prepack.weight_params(program["main"])) == 2 * STEPS
    merged_program, merged_transform, merged = prepack.merge_duplicates(program, transform)
    assert merged == 2 * STEPS - 2
    assert len(prepack.weight_params(merged_program["main"])) == 2
    assert len(merged_transform["main"].ret_ty.fields) == 2
    prepared = prepack.prepare_weights(merged_transform, imported.params, target)
    everything = prepack.prepare_weights(transform, imported.params, target)
    assert {a.tobytes() for a in prepared} == {a.tobytes() for a in everything}
