"""TVM's own passes, split where graphopt plans memory.

TVM's default Relax pipeline runs: library dispatch -> legalize (+ dlight default
schedules on GPU) -> dataflow lowering (CallTIRRewrite makes every intermediate an
explicit `R.builtin.alloc_tensor`) -> finalize (StaticPlanBlockMemory, then lowering
to VM builtins). graphopt runs the same passes, but stops before
StaticPlanBlockMemory: that is where the arena plan is extracted and written back.
The stock program (with StaticPlanBlockMemory) is built from the same lowered
module, so the two differ only in memory planning.
"""

from __future__ import annotations

import tvm
from tvm import relax

from graphopt.frontend.importer import ImportedModule
from graphopt.lowering.nan_semantics import with_nan_semantics


def _backend(target: tvm.target.Target):
    if target.kind.name == "cuda":
        import tvm.relax.backend.cuda.pipeline as backend
    else:
        import tvm.relax.backend.cpu_generic.pipeline as backend
    return backend


def _pre_schedule_passes(target: tvm.target.Target) -> list:
    """Everything before kernel scheduling: what the schedule rules (and the tuner) see."""
    backend = _backend(target)
    if target.kind.name == "cuda":
        from graphopt.lowering.gpu_rules import cuda_legalize_passes

        legalize_passes = cuda_legalize_passes(target)
    else:
        legalize_passes = _with_symbolic_copies(backend.legalize_passes(target))
    legalize_passes = with_nan_semantics(legalize_passes, target)  # NaN/Inf as ONNX Runtime (nan_semantics.py)
    return [relax.transform.DecomposeOpsForInference()] + backend.library_dispatch_passes(target) + legalize_passes


def _with_symbolic_copies(passes: list) -> list:
    """The passes with graphopt.lowering.shape_bounds.injective_symbolic_copies right after TVM's pattern
    annotation (it touches only symbolic-shape kernels: a fixed-shape compile is unchanged)."""
    from graphopt.lowering.shape_bounds import injective_symbolic_copies

    names = [p.info.name for p in passes]
    if "AnnotateTIROpPattern" not in names:
        return passes
    at = names.index("AnnotateTIROpPattern") + 1
    return passes[:at] + [injective_symbolic_copies()] + passes[at:]


def legalize(mod: tvm.IRModule, target: tvm.target.Target) -> tvm.IRModule:
    """The module as the schedule pass receives it: kernels legalized and fused, unscheduled."""
    with target:
        return tvm.transform.Sequential(_pre_schedule_passes(target))(mod)


def lower_to_explicit_memory(mod: tvm.IRModule, target: tvm.target.Target,
                             schedules: bool = True, tuning_db=None, kernel_library: str = "auto") -> tvm.IRModule:
    """Legalize, fuse, schedule and rewrite call_tir until every intermediate is an
    explicit allocation; the result is what both graphopt and the stock planner see.

    `schedules` applies graphopt's default CPU schedules (graphopt.kernels.schedules)
    on llvm targets; they change only kernel bodies, never the Relax program, so
    the memory plan is the same either way. False gives TVM's stock kernels.
    `tuning_db` (a directory) applies the choices `graphopt tune-kernels` recorded;
    `kernel_library` picks TVM or oneDNN per kernel (graphopt.kernels.onednn.choose)."""
    passes = _through_schedules(target, schedules, tuning_db, kernel_library=kernel_library) \
        + _backend(target).dataflow_lower_passes(target)
    with target:
        return tvm.transform.Sequential(passes)(mod)


def _through_schedules(target: tvm.target.Target, schedules: bool, tuning_db=None, prepack: bool = False,
                       kernel_library: str = "auto") -> list:
    """Legalize, fuse and schedule; with `prepack`, weights marked before scheduling and
    their packing and weight-only work lifted out of `main` after (graphopt.lowering.prepack)."""
    from graphopt.lowering import prepack as weights

    marks, lifts = ([weights.mark_weights()], [weights.lift_weight_work()]) if prepack else ([], [])
    return _pre_schedule_passes(target) + marks + _cpu_schedule_passes(target, schedules, tuning_db, kernel_library) \
        + lifts


def lower_with_prepared_weights(mod: tvm.IRModule, target: tvm.target.Target, params: list, names: list[str],
                                schedules: bool = True, tuning_db=None,
                                kernel_library: str = "auto") -> tuple[tvm.IRModule, list, list[str]]:
    """As lower_to_explicit_memory, with the weights prepared once at compile time
    (graphopt.lowering.prepack): returns (lowered program, its weights, their names).

    On llvm only: the weight transform runs here, on the host CPU (a CUDA build
    would need the GPU at compile time; its weights stay as imported)."""
    from graphopt.lowering import prepack

    if target.kind.name != "llvm" or "num_input" not in (mod["main"].attrs or {}):
        return lower_to_explicit_memory(mod, target, schedules, tuning_db, kernel_library), params, names
    scheduled = _through_schedules(target, schedules, tuning_db, prepack=True, kernel_library=kernel_library)
    with target:
        program, transform = prepack.split_transform(tvm.transform.Sequential(scheduled)(mod))
        if transform is not None:
            program, transform, _ = prepack.merge_duplicates(program, transform)
            params, names = prepack.prepare_weights(transform, params, target), prepack.weight_names(program)
        lowered = tvm.transform.Sequential(_backend(target).dataflow_lower_passes(target))(program)
    return lowered, params, names


def _cpu_schedule_passes(target: tvm.target.Target, schedules: bool, tuning_db=None,
                         kernel_library: str = "auto") -> list:
    from graphopt.options import check_kernel_options

    check_kernel_options(target.kind.name, schedules, tuning_db)
    if not schedules or target.kind.name != "llvm":
        return []
    from graphopt.kernels.tuning.apply import apply_schedules

    return [apply_schedules(tuning_db, kernel_library)]


def lower_imported(imported: ImportedModule, target: tvm.target.Target, schedules: bool = True,
                   tuning_db=None, kernel_library: str = "auto") -> tuple[tvm.IRModule, ImportedModule]:
    """The lowered program and the imported model with its weights as that program
    takes them (prepared once at compile time on llvm: see graphopt.lowering.prepack)."""
    from graphopt.lowering.static_check import lowering_lost_a_shape, require_static_shapes

    try:
        lowered, params, names = lower_with_prepared_weights(imported.mod, target, imported.params,
                                                             imported.param_names, schedules, tuning_db,
                                                             kernel_library)
    except AssertionError as exc:
        if lowering_lost_a_shape(exc):
            require_static_shapes(imported.mod)  # raises ShapeError naming the culprit
        raise
    return lowered, imported._replace(params=params, param_names=names)
