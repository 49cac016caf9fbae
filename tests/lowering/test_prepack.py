"""Weights prepared at compile time (graphopt.lowering.prepack): the artifact stores
weights packed for its kernels, computes the same outputs, keeps the same memory
plan, and the tuner times the kernels without the packing the compile removed."""

from __future__ import annotations

import numpy as np

from graphopt.compiler import CompileOptions, compile_model
from graphopt.runtime import load
from tests.conftest import onnx_runtime_outputs, random_feeds, relative_error
from tests.kernels.test_schedules import conv_zoo


def _compile(tmp_path, schedules: bool):
    import onnx

    model = conv_zoo()
    path = tmp_path / "zoo.onnx"
    onnx.save(model, path)
    result = compile_model(path, tmp_path / f"art-{schedules}", CompileOptions(schedules=schedules, time_limit=2.0))
    return model, path, result


def test_prepared_weights_keep_outputs_and_arena(tmp_path):
    model, path, packed = _compile(tmp_path, schedules=True)
    _, _, stock_kernels = _compile(tmp_path, schedules=False)
    weights = packed.plan["weights"]
    assert weights["imported"] == len(model.graph.initializer)
    assert weights["prepared_at_compile"] >= 3, weights  # the dense convolutions' weights at least
    # a packed weight is blocked by the register tile: [1, V / width, K, width]
    assert any(p.ndim == 4 and p.shape[0] == 1 and p.shape[3] in (8, 16, 24, 32) for p in packed.params)
    assert packed.plan["arena_bytes"] == stock_kernels.plan["arena_bytes"]
    from graphopt.report import summary_lines

    shown = f"({weights['prepared_at_compile']} of {weights['stored']} prepared at compile time)"
    assert any(shown in line for line in summary_lines(packed.plan))
    feeds = random_feeds(model)
    expected = onnx_runtime_outputs(path, feeds)
    for result in (packed, stock_kernels):
        actual = load(result.artifact).run(feeds)
        for name, value in expected.items():
            assert relative_error(actual[name], value) < 1e-4, (result.artifact, name)


def test_tuner_times_the_kernel_without_its_weight_packing():
    from graphopt.frontend import prepare
    from graphopt.frontend.importer import to_relax
    from graphopt.kernels.schedules import schedule_kernel
    from graphopt.kernels.tuning.measure import per_run_part
    from graphopt.kernels.tuning.search import tasks_of
    from graphopt.lowering import prepack
    from graphopt.lowering.lower import legalize
    from graphopt.lowering.target import make_target
    from tests.kernels.test_schedules import prepare_model

    target = make_target("llvm")
    legal = legalize(to_relax(prepare_model(conv_zoo(), prepare)).mod, target)
    marked = prepack.mark_weights()(legal)
    # marking which parameters are weights does not change a kernel's workload key
    assert {t.workload for t in tasks_of(marked)} == {t.workload for t in tasks_of(legal)}
    split = kept = 0
    for task in tasks_of(marked):
        sch, rule = schedule_kernel(task.func, target)
        if rule != "gemm":
            continue
        scheduled = sch.mod["main"]
        timed = per_run_part(scheduled, task.call)
        if timed is scheduled:
            kept += 1
            continue
        split += 1
        shapes = [tuple(int(d) for d in p.ty.shape) for p in timed.params]
        assert shapes != [tuple(int(d) for d in p.ty.shape) for p in scheduled.params]
        assert len(timed.params) == len(scheduled.params)
    assert split >= 3, (split, kept)
    # without the weights marked nothing is split off
    unmarked = next(t for t in tasks_of(legal) if "conv2d" in t.name)
    sch, _ = schedule_kernel(unmarked.func, target)
    whole = sch.mod["main"]
    assert per_run_part(whole, unmarked.call) is whole


def test_prepared_weights_are_the_imported_ones_reordered(tmp_path):
    """Every imported weight's values survive in the stored weights (as a permutation,
    possibly padded with zeros for whole register tiles): nothing is approximated."""
    model, _, packed = _compile(tmp_path, schedules=True)
    from onnx import numpy_helper

    stored = [np.sort(p.ravel()) for p in packed.params]
    for init in model.graph.initializer:
        values = np.sort(numpy_helper.to_array(init).ravel())
        nonzero = values[values != 0]
        assert any(np.array_equal(s[s != 0], nonzero) for s in stored), init.name
