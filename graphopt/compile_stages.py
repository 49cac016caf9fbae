"""The stages of a compile and the state they share (graphopt.compiler lists them).

Every stage is `stage(state) -> None`: it reads what earlier stages left in the
`CompileState` and stores its own result there. A stage is a thin call into the
module that owns the work; the training stages call graphopt.train.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from graphopt.errors import PlanError
from graphopt.options import CompileOptions


@dataclass
class CompileState:
    """Everything one compile knows, filled in stage by stage."""

    model: Any  # a path or an onnx.ModelProto
    out_dir: Path
    options: CompileOptions
    after_plan: Any = None  # Callable[[Placement], None] | None
    prepared: Any = None  # graphopt.frontend.PreparedModel
    importable: Any = None  # the ONNX model handed to TVM's importer
    imported: Any = None  # graphopt.frontend.importer.ImportedModule (weights as the program takes them)
    imported_names: list[str] = field(default_factory=list)  # weight names as imported, before preparation
    imported_bytes: int = 0  # weight bytes as imported, before preparation
    fallback: tuple = ()  # graphopt.frontend.fallback_kernel.FallbackKernel: nodes onnxruntime runs
    target: Any = None
    step: Any = None  # graphopt.train.step.TrainStep
    states: list[np.ndarray] = field(default_factory=list)  # optimizer states (training)
    stock_lowered: Any = None  # lowered in TVM's own order: the stock baseline's input
    lowered: Any = None  # what is planned and built
    extraction: Any = None  # graphopt.analysis.extract.Extraction
    memory: Any = None  # graphopt.train.swapping.MemoryPlan
    report: Any = None  # the validator's verdict on `memory`
    measured: list[float] | None = None  # per-step seconds from the profile stage
    stock_bytes: int = 0
    executable: Any = None
    records: dict[str, dict] = field(default_factory=dict)  # plan.json sections from the rewrites
    seconds: dict[str, float] = field(default_factory=dict)
    manifest: dict | None = None
    plan: dict | None = None


def prepare(state: CompileState) -> None:
    """Load, check, pin input shapes, fold; a training step also gets its trainable form."""
    from graphopt.frontend import prepare_model
    from graphopt.frontend.layer_norm_fusion import fuse_layer_norms
    from graphopt.frontend.load import load_model
    from graphopt.identity import source_sha256
    from graphopt.plan.memory_limit import host_limit

    options = state.options
    model = state.model if not isinstance(state.model, (str, Path)) else load_model(state.model)
    memory = None if options.allow_huge_arena else host_limit(options.target)
    state.prepared = prepare_model(model, options.input_shapes, fold=options.fold,
                                   source_sha256=source_sha256(state.model), memory=memory,
                                   allow_ort_only=options.fallback and not options.training,
                                   input_values=options.input_values)
    state.importable = state.prepared.model
    state.records["reorder"] = {"method": "off"}
    if state.prepared.symbols:  # a range compile: its kernel order is TVM's (graphopt.analysis.range_plan)
        state.records["reorder"] = {"method": "off", "why": "shape range"}
    if options.training:
        from graphopt.train.frontend import for_training
        from graphopt.train.parameters import fixed_parameters

        fixed = fixed_parameters(model, state.prepared.model, options.frozen)
        state.importable = for_training(state.prepared.model, options.loss, fixed)
        state.records["parameters"] = {"fixed": sorted(fixed)}
    else:
        state.records["concat_in_place"] = {"elided": 0, "off": True}
        if state.prepared.symbols:
            state.records["concat_in_place"]["why"] = "shape range"
        fused = fuse_layer_norms(state.importable)  # training keeps them: TVM has no layer_norm gradient
        state.importable = fused.module
        state.records["layer_norm"] = fused.record


def import_model(state: CompileState) -> None:
    """TVM's importer; an inference compile hands what it cannot import to fallback kernels."""
    from graphopt.frontend.importer import import_with_fallback, to_relax
    from graphopt.lowering.target import make_target

    options = state.options
    if options.training:  # gradients cannot flow through an onnxruntime kernel
        state.imported = to_relax(state.importable)
    else:
        state.imported, state.fallback = import_with_fallback(state.importable, options.fallback)
        _check_fallback_target(state.fallback, options.target)
        state.records["fallback"] = {"kernels": [k.record() for k in state.fallback]}
    if state.prepared.symbols:
        _bound_symbols(state)
    state.imported_names = list(state.imported.param_names)
    state.imported_bytes = int(sum(p.nbytes for p in state.imported.params))
    state.target = make_target(state.options.target)


def _check_fallback_target(kernels: tuple, target: str) -> None:
    """Fallback kernels run on the host CPU; a CUDA program cannot call them on device tensors."""
    from graphopt.errors import UnsupportedOperatorError

    if kernels and target != "llvm":
        ops = ", ".join(sorted({k.op_type for k in kernels}))
        raise UnsupportedOperatorError(f"{ops}: TVM cannot import these for {target}, and onnxruntime fallback "
                                       "kernels run on CPU targets only")


def _bound_symbols(state: CompileState) -> None:
    """A range compile: every symbol's upper bound on `main` (graphopt.lowering.shape_bounds)."""
    from graphopt.errors import ShapeError
    from graphopt.lowering.shape_bounds import with_upper_bounds

    if state.fallback:
        raise ShapeError("a shape range cannot run onnxruntime fallback kernels yet; compile for fixed shapes")
    state.imported = state.imported._replace(mod=with_upper_bounds(state.imported.mod, state.prepared.symbols))


def gradient(state: CompileState) -> None:
    """Training: forward, loss, backward and update as one Relax function."""
    from graphopt.train.step import OptimizerSpec, build_train_step

    spec = OptimizerSpec.parse(state.options.optimizer)
    imported = state.imported
    state.step = build_train_step(imported.mod, len(imported.input_names), state.options.loss, spec)
    state.states = spec.initial_states(imported.params)


def lower(state: CompileState) -> None:
    """Inference: weights prepared once at compile time. Training keeps them as
    imported (they change every step) and lowers the step function."""
    options = state.options
    if options.training:
        from graphopt.train.lowering import lower_step

        state.stock_lowered = lower_step(state.step.mod, state.target, options.schedules, options.tuning_db)
    else:
        from graphopt.lowering.lower import lower_imported

        state.stock_lowered, state.imported = lower_imported(state.imported, state.target, options.schedules,
                                                             options.tuning_db, options.kernel_library)
    state.lowered = state.stock_lowered
    if state.prepared.symbols:
        from graphopt.lowering.shape_bounds import kernel_report, warn_default_kernels

        state.records["shape_range_kernels"] = kernel_report(state.stock_lowered)
        warn_default_kernels(state.records["shape_range_kernels"], options.schedules and options.target == "llvm")


def reorder(state: CompileState) -> None:
    from graphopt.transforms.reorder import reorder_kernels

    result = reorder_kernels(state.lowered)
    state.lowered, state.records["reorder"] = result.module, result.record


def concat(state: CompileState) -> None:
    from graphopt.transforms.concat_no_worse import concat_in_place_no_worse

    result = concat_in_place_no_worse(state.lowered)
    state.lowered, state.records["concat_in_place"] = result.module, result.record


def extract(state: CompileState) -> None:
    from graphopt.analysis.extract import extract as extract_problem

    symbols = state.prepared.symbols  # a range compile is planned at its maximum (graphopt.analysis.range_plan)
    at = {name: hi for name, (_lo, hi) in symbols.items()} if symbols else None
    state.extraction = extract_problem(state.lowered["main"], at=at)


def place(state: CompileState) -> None:
    """The no-swap placement; under a training budget the swap stage replaces it."""
    from graphopt.passes.registry import get_planner
    from graphopt.train.swapping import MemoryPlan

    problem = state.extraction.problem
    placement = get_planner(state.options.planner).plan(problem, time_limit=state.options.time_limit)
    if not state.options.allow_huge_arena:
        _check_memory(state, placement.arena_bytes)
    state.memory = MemoryPlan(problem, placement)


def _check_memory(state: CompileState, arena: int) -> None:
    """An arena that cannot fit the memory that would run it is refused (graphopt.plan.memory_limit).
    Under a training --memory-budget the swap stage replaces this arena, so only the rest counts."""
    from graphopt.plan.memory_limit import check_plan

    if getattr(state.options, "memory_budget", None) is not None:
        arena = 0
    params = sum(p.nbytes for p in state.imported.params) + sum(s.nbytes for s in state.states)
    held = state.prepared.held  # a narrow input is staged widened (graphopt.frontend.narrow_types)
    inputs = sum(int(np.prod(shape)) * np.dtype(held.get(name, dtype)).itemsize
                 for name, shape, dtype in state.prepared.inputs)
    check_plan(state.options.target, arena=arena, params=params, inputs=inputs,
               outputs=state.extraction.output_bytes)


def profile(state: CompileState) -> None:
    """Builds the no-swap plan in a scratch directory and times each kernel there."""
    from graphopt.train.profile import profile_steps

    with tempfile.TemporaryDirectory(prefix="graphopt-profile-") as scratch:
        plain = replace(state, out_dir=Path(scratch) / "art", options=replace(state.options, memory_budget=None),
                        after_plan=None, records=dict(state.records), seconds={})
        verify(plain)
        build(plain)
        write(plain)
        state.measured = profile_steps(plain.out_dir)


def swap(state: CompileState) -> None:
    """Training: swaps and recomputes under the budget (or the no-swap prediction)."""
    from graphopt.train.swapping import plan_swaps

    state.memory = plan_swaps(state.lowered, state.extraction, state.memory.placement, state.options, state.measured)


def verify(state: CompileState) -> None:
    """The one validator judges the placement; then the caller's hook sees it."""
    from graphopt.plan.validator import validate

    memory = state.memory
    state.report = validate(memory.problem, memory.placement)
    if not state.report.valid:
        raise PlanError(f"planner {memory.placement.planner} produced an invalid plan: {state.report.errors[0]}")
    if state.prepared.symbols:  # proven for the whole range, checked at its corners and samples
        from graphopt.analysis.range_plan import range_record

        record = range_record(state.lowered["main"], state.extraction, memory.placement, state.prepared.symbols)
        state.records["shape_range"] = {**record, "kernels": state.records.pop("shape_range_kernels", {})}
    if state.after_plan is not None:
        state.after_plan(memory.placement)


def stock(state: CompileState) -> None:
    """The baseline is TVM as it comes: its own order, its own planner."""
    from graphopt.analysis.stock import stock_bytes

    state.stock_bytes = stock_bytes(state.stock_lowered, state.target)


def build(state: CompileState) -> None:
    """Swap calls into the program (if any), then the arena, finalize and codegen."""
    from graphopt.lowering.codegen import build_planned
    from graphopt.transforms.insert_swaps import insert_swaps

    memory, extraction = state.memory, state.extraction
    mod, buffer_vars = state.lowered, extraction.buffer_vars
    if memory.schedule is not None:
        segment_ids = {seg: bid for bid, seg in memory.origin.items()}
        producers = {b.id: (b.start, extraction.step_calls[b.start])
                     for b in extraction.problem.buffers if b.id in extraction.recompute_inputs}
        swapped = insert_swaps(mod, buffer_vars, list(memory.schedule.swaps), segment_ids,
                               list(memory.schedule.recomputes), producers)
        mod, buffer_vars = swapped.module, swapped.record["buffer_vars"]
    # fixed-shape inference takes its arena from the session (huge pages on the CPU); a training step and a
    # range artifact keep the program's own allocation (their callers pass inputs and state only)
    arena_argument = not state.options.training and not state.prepared.symbols
    state.executable, passed = build_planned(mod, buffer_vars, memory.placement, state.target, arena_argument)
    state.records["arena_is_argument"] = passed


def write(state: CompileState) -> None:
    """The artifact: plan.json (the one writer: graphopt.plan.record), manifest, payload."""
    from graphopt.artifact import write_artifact
    from graphopt.kernels.tuning.apply import applied_schedules
    from graphopt.plan.record import plan_record

    extraction, memory, imported = state.extraction, state.memory, state.imported
    plan = plan_record(memory.problem, memory.placement, state.report, output_bytes=extraction.output_bytes,
                       step_names=extraction.step_names, stock_bytes=state.stock_bytes,
                       params_bytes=sum(p.nbytes for p in imported.params), stage_seconds=state.seconds)
    plan.update(memory.record)
    plan.update(state.records)
    plan["schedules"] = applied_schedules(state.stock_lowered)
    if not state.options.training:
        plan["weights"] = _weights_record(state.imported_names, imported.param_names, state.imported_bytes,
                                          int(sum(p.nbytes for p in imported.params)))
    params = list(imported.params) + list(state.states)
    state.plan = plan
    state.manifest = write_artifact(state.out_dir, _manifest(state), plan,
                                    lambda tmp: _write_payload(tmp, state.executable, params, state.fallback))


def _weights_record(imported: list[str], stored: list[str], imported_bytes: int, stored_bytes: int) -> dict:
    """How many weights the artifact stores as computed at compile time (packed for
    the kernels, reshaped, transposed: graphopt.lowering.prepack) rather than as imported,
    and how many bytes that preparation added to the weights (negative: it saved some,
    e.g. a weight only used through a slice)."""
    original = set(imported)
    return {"imported": len(imported), "stored": len(stored),
            "prepared_at_compile": sum(name not in original for name in stored),
            "imported_bytes": imported_bytes, "stored_bytes": stored_bytes,
            "prepared_bytes_added": stored_bytes - imported_bytes}


def _entry(prepared, name: str, shape: tuple[int, ...], dtype: str) -> dict:
    """One input/output of the manifest; a narrow one (float8, int4...) says the dtype the arena
    holds it as (`held_as`), which the runtime converts to and from at the boundary, and an input
    ONNX requires to be zero says so (`must_be_zero`: the runtime checks it on every call)."""
    entry = {"name": name, "shape": list(shape), "dtype": dtype}
    if name in prepared.held:
        entry["held_as"] = prepared.held[name]
    if name in prepared.must_be_zero:  # a float8/float4 zero point fed at run time
        entry["must_be_zero"] = True
    return entry


def _manifest(state: CompileState) -> dict:
    from graphopt.identity import id_fields

    prepared, imported = state.prepared, state.imported
    signature = {
        "inputs": [_entry(prepared, n, s, d) for n, s, d in prepared.inputs],
        "outputs": [_entry(prepared, n, s, d) for n, s, d in prepared.outputs],
        "param_keys": [f"p{i:05d}" for i in range(len(imported.params) + len(state.states))],
        "param_names": list(imported.param_names),
    }
    if prepared.symbols:  # a range compile: shapes above are the maximum; dims and ranges say the rest
        for entry in signature["inputs"] + signature["outputs"]:
            entry["dims"] = list(prepared.dims[entry["name"]])
        signature["shape_symbols"] = {name: list(bounds) for name, bounds in sorted(prepared.symbols.items())}
    if prepared.pinned:  # --input-value: the runtime accepts these inputs only at these values
        signature["pinned_inputs"] = [dict(entry) for entry in prepared.pinned]
    if state.options.training:
        from graphopt.train.manifest import training_signature

        signature = training_signature(signature, state.step, imported, state.states, state.options)
    return {**id_fields(prepared.source_sha256, state.options, state.target), **signature}


def _write_payload(tmp: Path, executable, params: list[np.ndarray], fallback: tuple = ()) -> None:
    from graphopt.artifact import FALLBACK, LIBRARY, PARAMS

    executable.export_library(str(tmp / LIBRARY))
    np.savez(tmp / PARAMS, **{f"p{i:05d}": p for i, p in enumerate(params)})
    if fallback:  # each kernel's one-node ONNX model, by kernel name (graphopt.runtime.fallback)
        np.savez(tmp / FALLBACK, **{k.name: np.frombuffer(k.model_bytes, dtype=np.uint8) for k in fallback})
