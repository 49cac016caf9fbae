"""The training step: gradients against a float64 finite-difference reference,
loss decreasing, and swaps (real copies, poisoned device tensors) changing nothing."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

import graphopt.runtime.swap as swap_runtime
from graphopt.compiler import compile_model
from graphopt.errors import InputError
from graphopt.options import TrainOptions
from graphopt.train.frontend import for_training
from graphopt.train.models import cnn, mlp, resnet, transformer
from graphopt.train.runner import TrainRunner
from graphopt.train.step import OptimizerSpec
from tests.train.reference import Reference


def _batch(runner: TrainRunner, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    sig = {s["name"]: s for s in runner.session.inputs}
    x = rng.standard_normal(sig["x"]["shape"]).astype(np.float32)
    return {"x": x, "target": rng.integers(0, 4, size=sig["target"]["shape"]).astype(np.int64)}


def _compiled(tmp_path_factory, model: onnx.ModelProto, name: str, **kw) -> TrainRunner:
    out = tmp_path_factory.mktemp(name) / "art"
    compile_model(model, out, TrainOptions(fold=False, time_limit=2.0, **kw))
    return TrainRunner(out)


def small_resnet() -> onnx.ModelProto:
    """One block per stage: its strided 1x1 projections' weight gradients are reductions that stride
    over their input, which the GEMM schedule got wrong (graphopt.kernels.schedules.gemm_match._unit_steps)."""
    return resnet(blocks=1)


@pytest.mark.parametrize("build", [mlp, cnn, transformer, small_resnet],
                         ids=["mlp", "cnn", "transformer", "resnet"])
def test_gradients_match_finite_differences(tmp_path_factory, build) -> None:
    """SGD with lr=1 makes the update w - w' exactly the gradient the step computed."""
    model = build()
    runner = _compiled(tmp_path_factory, model, build.__name__, optimizer="sgd:lr=1")
    names = runner.session.manifest["param_names"][:runner.num_params]
    before = dict(zip(names, runner.weights()))
    feeds = _batch(runner)
    runner.step(feeds)
    grads = {n: before[n] - w for n, w in zip(names, runner.weights())}
    ref = Reference(for_training(model, "cross_entropy"), "cross_entropy", feeds["x"], feeds["target"])
    rng = np.random.default_rng(1)
    worst = 0.0
    for name in names:
        scale = max(float(np.abs(grads[name]).max()), 1e-3)
        for _ in range(4):
            index = tuple(int(rng.integers(0, d)) for d in grads[name].shape)
            worst = max(worst, abs(ref.gradient(before, name, index) - grads[name][index]) / scale)
    assert worst < 1e-3, worst
    plan = runner.session.plan
    assert 0 < plan["lower_bound_bytes"] <= plan["arena_bytes"] <= plan["tvm_stock_bytes"]


def _poisoned_steps(runner: TrainRunner, feeds: dict, steps: int) -> tuple[list[float], dict]:
    """Losses of `steps` steps with every swapped-out or dropped tensor overwritten (NaN)."""
    swap_runtime.reset()
    swap_runtime.poison(True)
    try:
        losses = [runner.step(feeds) for _ in range(steps)]
    finally:
        swap_runtime.poison(False)
    return losses, swap_runtime.stats()


def test_swaps_change_nothing_but_memory(tmp_path_factory) -> None:
    """Same losses with and without swaps, with swapped-out tensors poisoned. At 60% the
    plan must also swap tensors that are read through reshape views (re-derived on swap-in)."""
    model = transformer()
    plain = _compiled(tmp_path_factory, model, "plain", optimizer="sgd:lr=0.01")
    swapped = _compiled(tmp_path_factory, model, "swapped", optimizer="sgd:lr=0.01", memory_budget="60%")
    plan = swapped.session.plan
    assert plan["swaps"] and plan["arena_bytes"] <= plan["budget_bytes"] < plan["noswap_arena_bytes"]
    feeds = _batch(plain)
    with_swaps, stats = _poisoned_steps(swapped, feeds, 6)
    assert stats["bytes_out"] == 6 * sum(s["bytes"] for s in plan["swaps"])
    without = [plain.step(feeds) for _ in range(6)]
    np.testing.assert_allclose(with_swaps, without, rtol=1e-5)
    assert with_swaps[-1] < 0.5 * with_swaps[0]


def test_recomputation_changes_nothing_but_memory(tmp_path_factory) -> None:
    """Dropped tensors are poisoned; the producer's second run must rebuild them exactly."""
    model = mlp(batch=64, hidden=(64, 64, 64, 64))
    plain = _compiled(tmp_path_factory, model, "plain_mlp", optimizer="sgd:lr=0.1")
    dropped = _compiled(tmp_path_factory, model, "recomputed", optimizer="sgd:lr=0.1", memory_budget="80%",
                        swap_planner="recompute-greedy")
    plan = dropped.session.plan
    assert plan["recomputes"] and not plan["swaps"]
    assert plan["arena_bytes"] <= plan["budget_bytes"] < plan["noswap_arena_bytes"]
    assert plan["predicted_step_seconds"] > plan["predicted_noswap_step_seconds"]  # the producers run twice
    feeds = _batch(plain)
    with_recompute, stats = _poisoned_steps(dropped, feeds, 4)
    assert stats["bytes_dropped"] == 4 * sum(r["bytes"] for r in plan["recomputes"])
    without = [plain.step(feeds) for _ in range(4)]
    np.testing.assert_array_equal(with_recompute, without)


def test_measured_step_costs_drive_the_plan(tmp_path_factory) -> None:
    """--step-costs measured: every kernel timed on this machine, in plan order."""
    model = mlp(batch=64, hidden=(64, 64, 64, 64))
    runner = _compiled(tmp_path_factory, model, "measured", memory_budget="85%", step_costs="measured")
    plan = runner.session.plan
    assert plan["cost_source"] == "measured"
    assert len(plan["step_seconds"]) == plan["num_steps"] and all(s > 0 for s in plan["step_seconds"])
    assert plan["predicted_noswap_step_seconds"] == pytest.approx(sum(plan["step_seconds"]))


def test_adam_decreases_the_loss(tmp_path_factory) -> None:
    runner = _compiled(tmp_path_factory, mlp(), "adam", optimizer="adam:lr=1e-2")
    losses = runner.run(_batch(runner), 8).losses
    assert losses[-1] < 0.5 * losses[0]


def test_optimizer_spec() -> None:
    spec = OptimizerSpec.parse("adam:lr=1e-3,beta1=0.8")
    assert (spec.name, spec.lr, dict(spec.extra)) == ("adam", 1e-3, {"beta1": 0.8})
    with pytest.raises(InputError):
        OptimizerSpec.parse("rmsprop:lr=1")
    with pytest.raises(InputError):
        OptimizerSpec.parse("sgd:momentum=0.9")
