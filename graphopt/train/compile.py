"""The train compile driver: ONNX forward model in, training-step artifact out.

    prepare + for_training      -> onnx model (shapes fixed, Gradient-friendly)
    import                      -> Relax forward, weights as parameters
    build_train_step            -> one Relax function: forward, loss, backward, update
    lower (+ reorder) + extract -> MemoryProblem (+ uses, step calls)
    [--memory-budget] costs + swap planner -> SwapSchedule on split lifetimes
    plan + validate             -> Placement (and the swap validator's verdict)
    rewrite (arena, swaps) + build + write -> artifact

The artifact runs like an inference artifact whose inputs are the model's
inputs plus `target`, whose params are the weights then the optimizer states,
and whose outputs are the loss, the new weights and the new states.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from graphopt.compiler import CompileResult, id_fields
from graphopt.errors import InputError, PlanError, first_line
from graphopt.stages import Progress, StageTimer

DEFAULT_OPTIMIZER = "sgd:lr=0.1"


@dataclass(frozen=True)
class TrainOptions:
    """What `graphopt compile --train` accepts; `memory_budget` is bytes or 'NN%'."""

    loss: str = "cross_entropy"
    optimizer: str = DEFAULT_OPTIMIZER
    target: str = "llvm"
    planner: str = "auto"
    input_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    time_limit: float = 10.0
    reorder: bool = True
    fold: bool = True
    memory_budget: str | None = None
    swap_planner: str = "ours"
    link_bandwidth: float | None = None  # bytes/s; None: the cost model's PCIe 5 x16 default
    link_latency: float | None = None  # seconds
    step_costs: str = "analytic"  # or "measured": profile a no-swap build on this machine first

    def as_manifest(self) -> dict:
        shapes = {k: list(v) for k, v in sorted(self.input_shapes.items())}
        return {"train": True, "loss": self.loss, "optimizer": self.optimizer, "planner": self.planner,
                "input_shapes": shapes, "time_limit": self.time_limit, "reorder": self.reorder,
                "fold": self.fold, "memory_budget": self.memory_budget, "swap_planner": self.swap_planner,
                "link_bandwidth": self.link_bandwidth, "link_latency": self.link_latency,
                "step_costs": self.step_costs}


@dataclass(frozen=True)
class Lowered:
    """Everything the TVM half produced that planning and the tests need."""

    prepared: object
    imported: object
    step: object
    lowered: object
    extraction: object
    target: object
    states: list[np.ndarray]
    stock_lowered: object = None  # TVM's own order: what the stock planner is measured on
    reorder_record: dict | None = None


def lower_train_model(model_path, options: TrainOptions, stages: dict | None = None,
                      say: Progress | None = None) -> Lowered:
    """Front half of the compile: up to the extracted MemoryProblem (no planning)."""
    import onnx

    from graphopt.build import pipeline
    from graphopt.frontend import prepare_model
    from graphopt.frontend.load import load_model
    from graphopt.train.frontend import for_training
    from graphopt.train.step import OptimizerSpec, build_train_step

    timed = StageTimer(say, stages)

    spec = OptimizerSpec.parse(options.optimizer)
    model = model_path if isinstance(model_path, onnx.ModelProto) else load_model(model_path)
    prepared = timed("prepare", lambda: prepare_model(model, options.input_shapes, fold=options.fold))
    trainable = for_training(prepared.model, options.loss)
    imported = timed("import", pipeline.import_model, trainable)
    step = timed("gradient", build_train_step, imported.mod, len(imported.input_names), options.loss, spec)
    target = pipeline.make_target(options.target)
    lowered = stock_lowered = timed("lower", _lower, step.mod, target)
    record = {"method": "off"}
    if options.reorder:
        lowered, record = timed("reorder", pipeline.reorder_program, lowered)
    extraction = timed("extract", pipeline.extract, lowered["main"])
    states = spec.initial_states(imported.params)
    return Lowered(prepared, imported, step, lowered, extraction, target, states, stock_lowered, record)


def _lower(mod, target):
    """Lowering with graphopt's CPU schedules; if a schedule rule fails on a
    gradient kernel, TVM's stock kernels (the memory plan is the same either way)."""
    from graphopt.build import pipeline

    try:
        return pipeline.lower_to_explicit_memory(mod, target)
    except Exception as exc:  # noqa: BLE001  (TVM raises InternalError/TVMError from schedule rules; said loudly)
        import logging

        logging.getLogger(__name__).warning("CPU schedules failed (%s); using stock kernels", first_line(exc))
        return pipeline.lower_to_explicit_memory(mod, target, schedules=False)


def compile_train_model(model_path, out_dir, options: TrainOptions, progress: Progress | None = None,
                        after_plan=None) -> CompileResult:
    """Compiles the training step of an ONNX forward model into an artifact directory.

    `after_plan(placement)` runs once the memory plan is checked, before the TVM build;
    it may raise to stop there (the tuner prunes a configuration whose peak is too high).
    """
    from graphopt.artifact import refuse_foreign_target, write_artifact
    from graphopt.plan.record import plan_record
    from graphopt.train.swapping import build_with_swaps, plan_memory

    refuse_foreign_target(Path(out_dir))
    timed = StageTimer(progress)
    stages = timed.seconds
    low = lower_train_model(model_path, options, stages, progress)
    measured, base = timed("profile", _measured_step_costs, low, options) if _wants_profile(options) else (None, None)
    memory = timed("plan", plan_memory, low, options, measured, base)
    if after_plan is not None:
        after_plan(memory.placement)
    executable = timed("build", build_with_swaps, low, memory)
    from graphopt.build.pipeline import stock_bytes

    stock = stock_bytes(low.stock_lowered, low.target)
    plan = plan_record(memory.extraction_view, memory.placement, memory.report, stock, low.imported.params, stages)
    plan.update(memory.record, reorder=low.reorder_record)
    manifest = _manifest(low, options)
    params = list(low.imported.params) + list(low.states)
    written = write_artifact(Path(out_dir), manifest, plan, lambda tmp: _payload(tmp, executable, params))
    return CompileResult(Path(out_dir), written, plan, stages, low.lowered, params)


def _wants_profile(options: TrainOptions) -> bool:
    if options.step_costs not in ("analytic", "measured"):
        raise InputError(f"--step-costs {options.step_costs!r}: choose analytic or measured")
    return options.step_costs == "measured" and options.memory_budget is not None


def _measured_step_costs(low: Lowered, options: TrainOptions):
    """Builds the step without swaps in a scratch directory and times its kernels there;
    returns the times and the no-swap placement (the budgeted plan starts from it)."""
    import tempfile

    from graphopt.train.profile import profile_steps
    from graphopt.train.swapping import build_with_swaps, plan_memory

    plain = replace(options, memory_budget=None)
    memory = plan_memory(low, plain)
    executable = build_with_swaps(low, memory)
    with tempfile.TemporaryDirectory(prefix="graphopt-profile-") as scratch:
        from graphopt.artifact import write_artifact
        from graphopt.plan.record import plan_record

        plan = plan_record(memory.extraction_view, memory.placement, memory.report, 0, low.imported.params, {})
        params = list(low.imported.params) + list(low.states)
        art = Path(scratch) / "art"
        write_artifact(art, _manifest(low, plain), plan, lambda tmp: _payload(tmp, executable, params))
        return profile_steps(art), memory.placement


def _manifest(low: Lowered, options: TrainOptions) -> dict:
    from graphopt.train.step import TARGET_NAME

    prepared, imported, step = low.prepared, low.imported, low.step
    inputs = [{"name": n, "shape": list(s), "dtype": d} for n, s, d in prepared.inputs]
    inputs.append({"name": TARGET_NAME, "shape": list(step.target_shape), "dtype": step.target_dtype})
    weights = [{"name": f"param:{n}", "shape": list(p.shape), "dtype": str(p.dtype)}
               for n, p in zip(imported.param_names, imported.params)]
    states = [{"name": f"state:{i}", "shape": list(s.shape), "dtype": str(s.dtype)} for i, s in enumerate(low.states)]
    loss = {"name": "loss", "shape": [], "dtype": "float32"}
    count = len(imported.params) + len(low.states)
    return {
        **id_fields(prepared.source_sha256, options, low.target),
        "inputs": inputs,
        "outputs": [loss, *weights, *states],
        "param_keys": [f"p{i:05d}" for i in range(count)],
        "param_names": list(imported.param_names) + [f"state:{i}" for i in range(len(low.states))],
        "train": {"num_params": len(imported.params), "num_states": len(low.states), "loss": options.loss,
                  "optimizer": options.optimizer},
    }


def _payload(tmp: Path, executable, params: list[np.ndarray]) -> None:
    from graphopt.artifact import LIBRARY, PARAMS

    executable.export_library(str(tmp / LIBRARY))
    np.savez(tmp / PARAMS, **{f"p{i:05d}": p for i, p in enumerate(params)})


__all__ = ["PlanError", "TrainOptions", "compile_train_model", "lower_train_model", "replace"]
