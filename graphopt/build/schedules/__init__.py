"""Default CPU schedules: dlight-style rules that match a kernel's structure.

TVM's stock CPU pipeline builds every kernel as naive single-threaded loops; these
rules give each kernel parallel loops, vectors of the host's width and register
tiles, with no tuning. They run after legalize and fusion, before call_tir becomes
explicit allocations, and change only the inside of kernels: the Relax program,
and so the memory plan, is the same with or without them.

Order matters: the first rule that matches a kernel schedules it.
"""

from __future__ import annotations

import tvm
from tvm.s_tir import dlight

from graphopt.build.schedules.depthwise import Depthwise
from graphopt.build.schedules.fallback import Fallback
from graphopt.build.schedules.gemm import GEMM
from graphopt.build.schedules.grouped import GroupedConv


def cpu_rules() -> list:
    """The CPU rule list, most specific first."""
    # dlight.cpu.Reduction is left out: it ran a 1x1000 softmax 1000x slower here
    return [GEMM(), GroupedConv(), Depthwise(), Fallback()]


def apply_cpu_schedules() -> tvm.transform.Pass:
    """A module pass scheduling every unscheduled PrimFunc (needs `with target:`)."""
    return dlight.ApplyDefaultSchedule(*cpu_rules())


__all__ = ["GEMM", "Depthwise", "Fallback", "GroupedConv", "apply_cpu_schedules", "cpu_rules"]
