"""The TVM target of a compile, and the part of it an artifact records.

TVM 0.27 targets are dicts. An llvm target is tuned to the host CPU (`mcpu`), so
an artifact's code may use this machine's vector extensions: the manifest records
the CPU and the instruction-set features its code may use (`cpu_features`, in
/proc/cpuinfo spelling, checked by the runtime before it loads the library), and
the artifact id covers both.
"""

from __future__ import annotations

import tvm

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


def target_record(target: tvm.target.Target) -> dict:
    """The part of a target the runtime and the artifact id care about."""
    record = {"kind": target.kind.name}
    if target.kind.name == "cuda":
        record["arch"] = str(target.attrs.get("arch", ""))
    else:
        if target.attrs.get("mcpu"):
            record["mcpu"] = str(target.attrs["mcpu"])  # code may use this CPU's vector extensions
        record["cpu_features"] = cpu_features(target)
    return record


def cpu_features(target: tvm.target.Target) -> list[str]:
    """The instruction-set extensions an llvm target's code may use, as /proc/cpuinfo
    names them: the runtime refuses a host that lacks one (graphopt.runtime.cpu_features)."""
    from tvm.target import codegen

    from graphopt.runtime.cpu_features import cpuinfo_features

    return cpuinfo_features(codegen.llvm_get_cpu_features(target))
