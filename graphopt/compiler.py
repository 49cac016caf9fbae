"""The compile driver: ONNX file in, verified artifact out.

    prepare (load, check, fix shapes, fold)  -> onnx model
    import                                   -> Relax IRModule + params
    lower (TVM passes up to explicit allocs) -> lowered module
    reorder, concat in place                 -> lowered module, fewer copies and peak bytes
    extract                                  -> MemoryProblem
    plan (a planner from passes/)            -> Placement, judged by the validator
    rewrite (one arena) + finalize + build   -> VM executable
    write                                    -> artifact directory

Each stage is one call into the module that owns it; this file only sequences
them, reports progress and assembles the manifest and plan record.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from graphopt import __version__
from graphopt.artifact import LIBRARY, PARAMS, refuse_foreign_target, write_artifact
from graphopt.plan.record import plan_record
from graphopt.errors import PlanError
from graphopt.plan.validator import validate
from graphopt.stages import Progress, StageTimer

DEFAULT_TIME_LIMIT = 10.0


@dataclass(frozen=True)
class CompileOptions:
    target: str = "llvm"
    planner: str = "auto"
    input_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    time_limit: float = DEFAULT_TIME_LIMIT
    reorder: bool = True
    schedules: bool = True
    tuning_db: Path | None = None  # a `graphopt tune-kernels` database; kernels only, never the plan
    concat_in_place: bool = True  # producers write into their concatenation (graphopt.transforms.concat_in_place)

    def as_manifest(self) -> dict:
        shapes = {k: list(v) for k, v in sorted(self.input_shapes.items())}
        return {"planner": self.planner, "input_shapes": shapes, "time_limit": self.time_limit,
                "reorder": self.reorder, "schedules": self.schedules, "concat_in_place": self.concat_in_place}


@dataclass(frozen=True)
class CompileResult:
    artifact: Path
    manifest: dict
    plan: dict
    stage_seconds: dict[str, float]
    lowered: object = None  # the lowered module in TVM's own order: the stock baseline's input
    params: list = field(default_factory=list)




def _versions() -> dict:
    import onnx
    import tvm

    return {"graphopt": __version__, "tvm": tvm.__version__, "onnx": onnx.__version__}


def compile_model(model_path: str | Path, out_dir: str | Path, options: CompileOptions,
                  progress: Progress | None = None, after_plan: Callable[[Any], None] | None = None) -> CompileResult:
    """Compiles one ONNX model into an artifact directory; raises GraphoptError subclasses on bad input.

    `after_plan(placement)` runs once the plan is validated, before the TVM build: it may
    raise to stop there (the tuner prunes a configuration whose peak is over a limit).
    """
    timed = StageTimer(progress)
    stages = timed.seconds

    from graphopt.build import pipeline

    refuse_foreign_target(Path(out_dir))  # fail before minutes of work, not after
    prepared = timed("prepare", _prepare, model_path, options.input_shapes)
    imported = timed("import", pipeline.import_model, prepared.model)
    target = pipeline.make_target(options.target)
    as_imported = list(imported.param_names)
    stock_lowered, imported = timed("lower", pipeline.lower_imported, imported, target, options.schedules,
                                    options.tuning_db)
    lowered, reorder_record = stock_lowered, {"method": "off"}
    if options.reorder:
        lowered, reorder_record = timed("reorder", pipeline.reorder_program, stock_lowered)
    concat_record = {"elided": 0, "off": True}
    if options.concat_in_place:
        lowered, concat_record = timed("concat", pipeline.concat_in_place, lowered)
    extraction = timed("extract", pipeline.extract, lowered["main"])
    placement = timed("plan", _plan, extraction.problem, options)
    report = validate(extraction.problem, placement)
    if not report.valid:
        raise PlanError(f"planner {placement.planner} produced an invalid plan: {report.errors[0]}")
    if after_plan is not None:
        after_plan(placement)
    # the baseline is TVM as it comes: its own order, its own planner
    stock_bytes = timed("stock", pipeline.stock_bytes, stock_lowered, target)
    executable = timed("build", pipeline.build_planned, lowered, extraction, placement, target)
    plan = plan_record(extraction, placement, report, stock_bytes, imported.params, stages)
    plan["reorder"] = reorder_record
    plan["concat_in_place"] = concat_record
    plan["schedules"] = _applied_schedules(stock_lowered)
    plan["weights"] = _weights_record(as_imported, imported.param_names)
    manifest = _manifest(prepared, imported, options, target)
    written = timed("write", write_artifact, Path(out_dir), manifest, plan,
                    lambda tmp: _write_payload(tmp, executable, imported.params))
    return CompileResult(Path(out_dir), written, plan, stages, stock_lowered, imported.params)


def _weights_record(imported: list[str], stored: list[str]) -> dict:
    """How many weights the artifact stores as computed at compile time (packed for
    the kernels, reshaped, transposed: graphopt.lowering.prepack) rather than as imported."""
    original = set(imported)
    return {"imported": len(imported), "stored": len(stored),
            "prepared_at_compile": sum(name not in original for name in stored)}


def _applied_schedules(lowered) -> dict:
    from graphopt.kernels.tuning.apply import applied_schedules

    return applied_schedules(lowered)


def _prepare(model_path, input_shapes):
    from graphopt.frontend import prepare

    return prepare(model_path, input_shapes)


def _plan(problem, options: CompileOptions):
    from graphopt.passes.registry import get_planner

    return get_planner(options.planner).plan(problem, time_limit=options.time_limit)


def id_fields(source_sha256: str, options, target) -> dict:
    """What the artifact id hashes (graphopt.artifact.ID_FIELDS), assembled in one place
    for compiles, training compiles and the predictions of an id made before a build
    (the tuner's and the pipeline store's cache keys)."""
    from graphopt.build.pipeline import target_record

    return {"source_sha256": source_sha256, "options": options.as_manifest(),
            "target": target_record(target), "versions": _versions()}


def _manifest(prepared, imported, options: CompileOptions, target) -> dict:
    return {
        **id_fields(prepared.source_sha256, options, target),
        "inputs": [{"name": n, "shape": list(s), "dtype": d} for n, s, d in prepared.inputs],
        "outputs": [{"name": n, "shape": list(s), "dtype": d} for n, s, d in prepared.outputs],
        "param_keys": [f"p{i:05d}" for i in range(len(imported.params))],
        "param_names": list(imported.param_names),
    }


def _write_payload(tmp: Path, executable, params: list[np.ndarray]) -> None:
    executable.export_library(str(tmp / LIBRARY))
    np.savez(tmp / PARAMS, **{f"p{i:05d}": p for i, p in enumerate(params)})
