"""Default CPU schedules: dlight-style rules that match a kernel's structure.

TVM's stock CPU pipeline builds every kernel as naive single-threaded loops; these
rules give each kernel parallel loops, vectors of the host's width and register
tiles, with no tuning. They run after legalize and fusion, before call_tir becomes
explicit allocations, and change only the inside of kernels: the Relax program,
and so the memory plan, is the same with or without them.

Order matters: the first rule that matches a kernel schedules it.
"""

from __future__ import annotations

from graphopt.kernels.schedules.depthwise import Depthwise
from graphopt.kernels.schedules.fallback import Fallback
from graphopt.kernels.schedules.gemm import GEMM
from graphopt.kernels.schedules.grouped import GroupedConv


def cpu_rules() -> list:
    """The CPU rule list, most specific first."""
    # dlight.cpu.Reduction is left out: it ran a 1x1000 softmax 1000x slower here
    return [GEMM(), GroupedConv(), Depthwise(), Fallback()]


def schedule_kernel(func, target, rule: str | None = None, knobs: dict | None = None):
    """(schedule or None, name of the rule that took the kernel or "none").

    With `rule` and `knobs` (a tuned choice), that rule is asked first with those
    knobs; when it declines, the caller learns it from the returned name (it is
    then the default rule's) and must say so: a tuned choice is never dropped silently."""
    if rule is not None:
        sch = schedule_with(func, target, rule, knobs or {})
        if sch is not None:
            return sch, rule
    for r in cpu_rules():
        sch = r.schedule(func, target, {})
        if sch is not None:
            return sch, r.name
    return None, "none"


def schedule_with(func, target, rule: str, knobs: dict):
    """The schedule `rule` makes with `knobs`, or None when it declines (no fallback:
    a tuner skips a setting the rule refuses without spending a trial on it)."""
    for r in cpu_rules():
        if r.name == rule:
            return r.schedule(func, target, dict(knobs))
    return None


__all__ = ["GEMM", "Depthwise", "Fallback", "GroupedConv", "cpu_rules", "schedule_kernel", "schedule_with"]
