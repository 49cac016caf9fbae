"""The one compile driver: an ONNX model in, a verified artifact out.

`STAGES` below is the whole compile, inference and training, as one literal list
of named stages over one `CompileState`. A stage reads what earlier stages left
in the state and adds its own result; `applies(options)` says whether it runs for
a compile, so the stages a compile will run are known before it starts (the CLI's
progress bar counts them). Each stage is a thin call into the module that owns
the work (graphopt.frontend, lowering, transforms, analysis, passes, plan, train);
this file only sequences them, times them (plan.json's `stage_seconds`) and
reports progress.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graphopt.compile_stages import (
    CompileState,
    build,
    concat,
    extract,
    gradient,
    import_model,
    lower,
    place,
    prepare,
    profile,
    reorder,
    stock,
    swap,
    verify,
    write,
)
from graphopt.options import CompileOptions, TrainOptions

Progress = Callable[[str], None]
AfterPlan = Callable[[Any], None]


@dataclass(frozen=True)
class Stage:
    """One named step of the compile; `applies(options)` is false where it is skipped."""

    name: str
    run: Callable[[CompileState], None]
    applies: Callable[[CompileOptions], bool] = lambda _options: True


def _training(options: CompileOptions) -> bool:
    return options.training


def _measured_swaps(options: CompileOptions) -> bool:
    return options.training and options.step_costs == "measured" and options.memory_budget is not None


STAGES: tuple[Stage, ...] = (
    Stage("prepare", prepare),  # load, check, pin input shapes, fold, frontend rewrites
    Stage("import", import_model),  # TVM's ONNX importer: Relax, weights as parameters
    Stage("gradient", gradient, _training),  # loss, backward and update in the same function
    Stage("lower", lower),  # legalize, fuse, schedule kernels, explicit allocations
    # a shape range keeps TVM's order and plain concatenations (plan.json says why: "shape range")
    Stage("reorder", reorder, lambda options: options.reorder and not options.ranged),  # a lower-peak order
    Stage("concat", concat, lambda options: options.concat_in_place and not options.ranged),  # write into the concat
    Stage("extract", extract),  # the MemoryProblem: every tensor's lifetime in execution order
    Stage("plan", place),  # offsets in one arena, by the chosen planner
    Stage("profile", profile, _measured_swaps),  # time each kernel of a no-swap build on this machine
    Stage("swap", swap, _training),  # swaps and recomputes under --memory-budget, placement on split lifetimes
    Stage("verify", verify),  # the one validator; the caller's after_plan hook
    Stage("stock", stock),  # TVM's own StaticPlanBlockMemory on the same program: the baseline
    Stage("build", build),  # swaps inserted, arena applied, finalize, code generation
    Stage("write", write),  # manifest, plan.json, library and params, atomically
)


def stages_for(options: CompileOptions) -> list[Stage]:
    """The stages a compile with these options runs, in order."""
    return [stage for stage in STAGES if stage.applies(options)]


def stage_names(options: CompileOptions) -> list[str]:
    return [stage.name for stage in stages_for(options)]


@dataclass(frozen=True)
class CompileResult:
    artifact: Path
    manifest: dict
    plan: dict
    stage_seconds: dict[str, float]
    lowered: object = None  # the lowered module in TVM's own order: the stock baseline's input
    params: list = field(default_factory=list)


def run_stages(state: CompileState, progress: Progress | None = None, until: str | None = None) -> CompileState:
    """Runs the stages `state.options` selects, through `until` (inclusive) when given."""
    for stage in stages_for(state.options):
        if progress is not None:
            progress(stage.name)
        began = time.perf_counter()
        stage.run(state)
        state.seconds[stage.name] = time.perf_counter() - began
        if stage.name == until:
            break
    return state


def compile_model(model, out_dir: str | Path, options: CompileOptions, progress: Progress | None = None,
                  after_plan: AfterPlan | None = None) -> CompileResult:
    """Compiles one ONNX model (a path or a ModelProto) into an artifact directory;
    a TrainOptions compiles its training step. Raises GraphoptError subclasses on bad input.

    `after_plan(placement)` runs once the plan is verified, before the TVM build: it
    may raise to stop there (the tuner prunes a configuration whose peak is over a limit).
    """
    from graphopt.artifact import refuse_foreign_target

    options.check()
    refuse_foreign_target(Path(out_dir))  # fail before minutes of work, not after
    state = run_stages(CompileState(model, Path(out_dir), options, after_plan), progress)
    params = list(state.imported.params) + list(state.states)
    return CompileResult(state.out_dir, state.manifest, state.plan, state.seconds, state.stock_lowered, params)


__all__ = ["STAGES", "CompileOptions", "CompileResult", "CompileState", "Stage",
           "TrainOptions", "compile_model", "run_stages", "stage_names", "stages_for"]
