"""What a node's timings are comparable with: its CPU model name and vector width.

Why: a kernel's time measured on one CPU model says nothing about another (clock,
caches, SIMD width), and LLVM's `mcpu` alone does not tell models apart (every
Zen 3 is `znver3`). Every kernel measurement is recorded with `node_cpu()` of the
machine that took it, and a choice is only made among measurements of one CPU.
Read from /proc/cpuinfo (no TVM, no Ray): what `lscpu` calls "Model name", and
the widest vector extension the kernel enabled (graphopt.runtime.cpu_features).
"""

from __future__ import annotations

import platform
from functools import cache
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")


@cache
def node_cpu() -> str:
    """e.g. `AMD EPYC 7763 64-Core Processor/256`: model name / vector bits."""
    return f"{cpu_model()}/{vector_bits()}"


def cpu_model() -> str:
    try:
        for line in CPUINFO.read_text().splitlines():
            if line.startswith(("model name", "Model name")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine() or "unknown"


def vector_bits() -> int:
    """512 with AVX-512F, 256 with AVX, else 128 (SSE, NEON): as the schedules count registers."""
    from graphopt.runtime.cpu_features import host_features

    flags, _why = host_features()
    flags = flags or frozenset()
    if "avx512f" in flags:
        return 512
    return 256 if "avx" in flags else 128
