"""Does this CPU have the instructions an artifact's code uses? Refuse before loading it.

An llvm artifact is compiled for the build machine's CPU (`mcpu`, e.g. znver4):
its kernels may use AVX-512 or other extensions. Loading it on a CPU without them
does not fail cleanly: the first such instruction kills the process with SIGILL,
in `graphopt run`, in a service at start-up, in whatever embeds the runtime. So
the runtime compares, before `model.so` is loaded, what the artifact needs with
what the host offers, and refuses in one line naming the missing features.

What the artifact needs. At compile time, graphopt.lowering.target asks LLVM for
the features its target implies (mcpu and any mattr) and records in the manifest's
`target` the instruction-set extensions among them as `cpu_features`, already
spelled as Linux's /proc/cpuinfo spells them (`LLVM_TO_CPUINFO` below: LLVM's
`sse4.2` is cpuinfo's `sse4_2`, `sse3` is `pni`, `lzcnt` is `abm`, `avx512vnni` is
`avx512_vnni`, ...). Tuning flags (`fast-gather`, `prefer-256-bit`) are not
recorded (they change no instruction), nor extensions compiled tensor code does not
execute (crypto, AMX: see the table). The list is part of the target, so the
artifact id covers it.

What the host offers. Linux: the `flags` (x86) or `Features` (Arm) lines of
/proc/cpuinfo, which list what the kernel found and enabled (a feature the kernel
disabled, e.g. AVX-512 without its XSAVE state, is absent there and would fault
too). Elsewhere (macOS, Windows) or when /proc/cpuinfo cannot be read, the host's
features are unknown: the check is skipped, the artifact loads as before this
check existed, and `Session.cpu_check` says "not checked: <why>". The runtime
cannot ask LLVM instead: a runtime-only TVM (a bundle) has no LLVM.

Artifacts from before this check have an `mcpu` and no `cpu_features`. Without
LLVM the runtime cannot expand an arbitrary CPU name into features, so it uses
only what is certain: `LEGACY_MCPU_FEATURES` lists CPU names whose every model
has AVX-512F / AVX2+FMA / AVX (a documented fact of each family, so a refusal is
never wrong); a host lacking those is refused. Any other name (an unknown or
generic CPU) loads as before, unchecked beyond that (`Session.cpu_check` says so);
recompiling records the full list.
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path

from graphopt.errors import ArtifactError

CPUINFO = Path("/proc/cpuinfo")

# LLVM target feature -> /proc/cpuinfo flag. Only instruction-set extensions that
# compiled tensor code may execute; crypto (aes, pclmul, sha, vaes, vpclmulqdq),
# AMX and MMX are left out: LLVM emits them only for explicit intrinsics, which
# graphopt's kernels do not use, and hypervisors often hide them from guests.
LLVM_TO_CPUINFO = {
    # x86
    "sse": "sse", "sse2": "sse2", "sse3": "pni", "ssse3": "ssse3", "sse4.1": "sse4_1", "sse4.2": "sse4_2",
    "sse4a": "sse4a", "avx": "avx", "avx2": "avx2", "fma": "fma", "fma4": "fma4", "xop": "xop", "f16c": "f16c",
    "bmi": "bmi1", "bmi2": "bmi2", "lzcnt": "abm", "popcnt": "popcnt", "movbe": "movbe", "adx": "adx",
    "cx16": "cx16", "cmov": "cmov", "gfni": "gfni", "avxvnni": "avx_vnni",
    "avx512f": "avx512f", "avx512cd": "avx512cd", "avx512bw": "avx512bw", "avx512dq": "avx512dq",
    "avx512vl": "avx512vl", "avx512ifma": "avx512ifma", "avx512vbmi": "avx512vbmi",
    "avx512vbmi2": "avx512_vbmi2", "avx512vnni": "avx512_vnni", "avx512bitalg": "avx512_bitalg",
    "avx512vpopcntdq": "avx512_vpopcntdq", "avx512bf16": "avx512_bf16", "avx512fp16": "avx512_fp16",
    "avx512vp2intersect": "avx512_vp2intersect", "avx512er": "avx512er", "avx512pf": "avx512pf",
    # AArch64 (cpuinfo `Features`)
    "neon": "asimd", "fullfp16": "asimdhp", "dotprod": "asimddp", "fp16fml": "asimdfhm", "rdm": "asimdrdm",
    "i8mm": "i8mm", "bf16": "bf16", "sve": "sve", "sve2": "sve2", "lse": "atomics",
}

_AVX512 = ("avx", "avx2", "fma", "avx512f")
_AVX2 = ("avx", "avx2", "fma")
_AVX = ("avx",)
# CPU names of artifacts from before `cpu_features`: what every CPU of that name has.
LEGACY_MCPU_FEATURES = {
    **dict.fromkeys(("knl", "knm", "skylake-avx512", "skx", "cascadelake", "cooperlake", "cannonlake",
                     "icelake-client", "icelake-server", "tigerlake", "rocketlake", "sapphirerapids",
                     "emeraldrapids", "graniterapids", "graniterapids-d", "diamondrapids", "znver4", "znver5",
                     "x86-64-v4"), _AVX512),
    **dict.fromkeys(("haswell", "broadwell", "skylake", "alderlake", "raptorlake", "meteorlake", "arrowlake",
                     "arrowlake-s", "lunarlake", "pantherlake", "gracemont", "sierraforest", "grandridge",
                     "clearwaterforest", "znver1", "znver2", "znver3", "bdver4", "x86-64-v3"), _AVX2),
    **dict.fromkeys(("sandybridge", "ivybridge", "corei7-avx", "core-avx-i", "btver2", "bdver1", "bdver2",
                     "bdver3"), _AVX),
}


def cpuinfo_features(llvm_features) -> list[str]:
    """The recordable subset of LLVM feature names, as sorted cpuinfo flags."""
    return sorted({LLVM_TO_CPUINFO[f] for f in llvm_features if f in LLVM_TO_CPUINFO})


def parse_cpuinfo(text: str) -> frozenset[str]:
    """Flags of the first processor in /proc/cpuinfo text (`flags` on x86, `Features` on Arm)."""
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def host_features() -> tuple[frozenset[str] | None, str]:
    """(flags, "") on Linux; (None, why) where they cannot be known."""
    if not sys.platform.startswith("linux"):
        return None, f"host CPU features are not read on {platform.system() or sys.platform}"
    try:
        flags = parse_cpuinfo(CPUINFO.read_text(errors="replace"))
    except OSError as exc:
        return None, f"cannot read {CPUINFO} ({exc.strerror or exc})"
    if not flags:
        return None, f"{CPUINFO} lists no CPU flags"
    return flags, ""


def required_features(target: dict) -> tuple[list[str], str]:
    """(features the artifact needs, "") or ([], why they are unknown)."""
    if target.get("kind") != "llvm":
        return [], ""  # CUDA artifacts: the host side is generic llvm code
    recorded = target.get("cpu_features")
    if recorded is not None:
        if not isinstance(recorded, list) or not all(isinstance(f, str) for f in recorded):
            raise ArtifactError("manifest target cpu_features is not a list of names")
        return list(recorded), ""
    mcpu = target.get("mcpu")
    if not mcpu:
        return [], ""  # generic llvm: the baseline of the architecture
    if mcpu in LEGACY_MCPU_FEATURES:
        return list(LEGACY_MCPU_FEATURES[mcpu]), ""
    return [], f"artifact for CPU {mcpu} records no cpu_features (built before the check); recompile to check it"


def missing_features(required, host) -> list[str]:
    """What `required` lists and `host` lacks, sorted."""
    return sorted(set(required) - set(host))


def check_host_cpu(target: dict, where: Path | str) -> str:
    """Raises ArtifactError (one line) if the host lacks a feature the artifact needs;
    returns "ok" or "not checked: <why>"."""
    required, unknown = required_features(target)
    if not required:
        return f"not checked: {unknown}" if unknown else "ok"
    host, why = host_features()
    if host is None:
        return f"not checked: {why}"
    missing = missing_features(required, host)
    if missing:
        cpu = f"CPU {target['mcpu']}" if target.get("mcpu") else "another CPU"
        raise ArtifactError(f"{where}: built for {cpu}; this host lacks the CPU features {', '.join(missing)} "
                            "its code uses (it would crash with SIGILL); recompile on this machine")
    return "ok"
