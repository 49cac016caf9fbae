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

TARGETS = ("llvm", "cuda")
DEFAULT_CUDA_ARCH = "sm_90"


def host_cpu() -> str | None:
    """LLVM's name for this machine's CPU (e.g. znver3), or None when LLVM does not
    know it: with it, codegen uses the host's vector width (AVX2/AVX-512)."""
    from tvm.target import codegen

    cpu = codegen.llvm_get_system_cpu()
    try:
        return cpu if cpu and codegen.llvm_is_valid_cpu(cpu, codegen.llvm_get_system_triple()) else None
    except Exception:  # noqa: BLE001  (an LLVM without the host triple)
        return None


def make_target(kind: str, cuda_arch: str = DEFAULT_CUDA_ARCH) -> tvm.target.Target:
    """TVM 0.27 targets are dicts; CUDA needs an LLVM host for the VM's glue code.
    An llvm target is tuned to the host CPU (artifacts then need a similar CPU)."""
    if kind == "llvm":
        cpu = host_cpu()
        return tvm.target.Target({"kind": "llvm", "mcpu": cpu} if cpu else {"kind": "llvm"})
    if kind == "cuda":
        return tvm.target.Target({"kind": "cuda", "arch": cuda_arch}, host={"kind": "llvm"})
    raise ValueError(f"unknown target {kind!r}; choose one of {', '.join(TARGETS)}")


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
        from graphopt.build.gpu_rules import cuda_legalize_passes

        legalize_passes = cuda_legalize_passes(target)
    else:
        legalize_passes = backend.legalize_passes(target)
    return [relax.transform.DecomposeOpsForInference()] + backend.library_dispatch_passes(target) + legalize_passes


def legalize(mod: tvm.IRModule, target: tvm.target.Target) -> tvm.IRModule:
    """The module as the schedule pass receives it: kernels legalized and fused, unscheduled."""
    with target:
        return tvm.transform.Sequential(_pre_schedule_passes(target))(mod)


def lower_to_explicit_memory(mod: tvm.IRModule, target: tvm.target.Target,
                             schedules: bool = True, tuning_db=None) -> tvm.IRModule:
    """Legalize, fuse, schedule and rewrite call_tir until every intermediate is an
    explicit allocation; the result is what both graphopt and the stock planner see.

    `schedules` applies graphopt's default CPU schedules (graphopt.build.schedules)
    on llvm targets; they change only kernel bodies, never the Relax program, so
    the memory plan is the same either way. False gives TVM's stock kernels.
    `tuning_db` (a directory) applies the choices `graphopt tune-kernels` recorded."""
    passes = _through_schedules(target, schedules, tuning_db) + _backend(target).dataflow_lower_passes(target)
    with target:
        return tvm.transform.Sequential(passes)(mod)


def _through_schedules(target: tvm.target.Target, schedules: bool, tuning_db=None, prepack: bool = False) -> list:
    """Legalize, fuse and schedule; with `prepack`, weights marked before scheduling and
    their packing and weight-only work lifted out of `main` after (graphopt.build.prepack)."""
    from graphopt.build import prepack as weights

    marks, lifts = ([weights.mark_weights()], [weights.lift_weight_work()]) if prepack else ([], [])
    return _pre_schedule_passes(target) + marks + _cpu_schedule_passes(target, schedules, tuning_db) + lifts


def lower_with_prepared_weights(mod: tvm.IRModule, target: tvm.target.Target, params: list, names: list[str],
                                schedules: bool = True, tuning_db=None) -> tuple[tvm.IRModule, list, list[str]]:
    """As lower_to_explicit_memory, with the weights prepared once at compile time
    (graphopt.build.prepack): returns (lowered program, its weights, their names).

    On llvm only: the weight transform runs here, on the host CPU (a CUDA build
    would need the GPU at compile time; its weights stay as imported)."""
    from graphopt.build import prepack

    if target.kind.name != "llvm" or "num_input" not in (mod["main"].attrs or {}):
        return lower_to_explicit_memory(mod, target, schedules, tuning_db), params, names
    scheduled = _through_schedules(target, schedules, tuning_db, prepack=True)
    with target:
        program, transform = prepack.split_transform(tvm.transform.Sequential(scheduled)(mod))
        if transform is not None:
            params, names = prepack.prepare_weights(transform, params, target), prepack.weight_names(program)
        lowered = tvm.transform.Sequential(_backend(target).dataflow_lower_passes(target))(program)
    return lowered, params, names


def _cpu_schedule_passes(target: tvm.target.Target, schedules: bool, tuning_db=None) -> list:
    if tuning_db is not None and (not schedules or target.kind.name != "llvm"):
        from graphopt.errors import InputError

        raise InputError("a tuning db applies to the default CPU schedules: it needs --target llvm "
                         "without --no-schedules")
    if not schedules or target.kind.name != "llvm":
        return []
    from graphopt.build.tuning.apply import apply_schedules

    return [apply_schedules(tuning_db)]


def finalize_passes(target: tvm.target.Target, stock: bool) -> list:
    """The finalize stage; graphopt's variant drops StaticPlanBlockMemory because
    the arena plan has already replaced every intermediate allocation."""
    head = [relax.transform.StaticPlanBlockMemory()] if stock else []
    return head + [
        relax.transform.LowerAllocTensor(),
        relax.transform.KillAfterLastUse(),
        relax.transform.LowerRuntimeBuiltin(),
        relax.transform.ComputePrimValue(),
        relax.transform.VMShapeLower(),
        relax.transform.AttachGlobalSymbol(),
    ]


def finalize(mod: tvm.IRModule, target: tvm.target.Target, stock: bool) -> tvm.IRModule:
    with target:
        return tvm.transform.Sequential(finalize_passes(target, stock))(mod)


def build(mod: tvm.IRModule, target: tvm.target.Target):
    """Code generation of a finalized module into a VM executable."""
    return tvm.compile(mod, target=target, relax_pipeline=None)
