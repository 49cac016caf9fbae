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


def make_target(kind: str, cuda_arch: str = DEFAULT_CUDA_ARCH) -> tvm.target.Target:
    """TVM 0.27 targets are dicts; CUDA needs an LLVM host for the VM's glue code."""
    if kind == "llvm":
        return tvm.target.Target({"kind": "llvm"})
    if kind == "cuda":
        return tvm.target.Target({"kind": "cuda", "arch": cuda_arch}, host={"kind": "llvm"})
    raise ValueError(f"unknown target {kind!r}; choose one of {', '.join(TARGETS)}")


def _backend(target: tvm.target.Target):
    if target.kind.name == "cuda":
        import tvm.relax.backend.cuda.pipeline as backend
    else:
        import tvm.relax.backend.cpu_generic.pipeline as backend
    return backend


def lower_to_explicit_memory(mod: tvm.IRModule, target: tvm.target.Target) -> tvm.IRModule:
    """Legalize, fuse, schedule and rewrite call_tir until every intermediate is an
    explicit allocation; the result is what both graphopt and the stock planner see."""
    backend = _backend(target)
    passes = (
        [relax.transform.DecomposeOpsForInference()]
        + backend.library_dispatch_passes(target)
        + backend.legalize_passes(target)
        + backend.dataflow_lower_passes(target)
    )
    with target:
        return tvm.transform.Sequential(passes)(mod)


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
