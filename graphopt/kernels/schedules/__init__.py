"""Default CPU schedules: dlight-style rules that match a kernel's structure.

TVM's stock CPU pipeline builds every kernel as naive single-threaded loops; these
rules give each kernel parallel loops, vectors of the host's width and register
tiles, with no tuning. They run after legalize and fusion, before call_tir becomes
explicit allocations, and change only the inside of kernels: the Relax program,
and so the memory plan, is the same with or without them.

Order matters: the first rule that matches a kernel schedules it.

Symbolic extents (a range compile, graphopt.frontend.ranges): the GEMM, grouped, depthwise, rows and
fallback rules take them (a symbol enters a kernel only as a factor of an extent; how the rules
read such an extent is graphopt.kernels.schedules.symbolic), and every such kernel is checked
against ONNX Runtime at odd sizes (tests/kernels/test_symbolic.py, tests/compiler/test_shape_range.py).
A rule that still raises on a symbolic kernel is treated as declining, so the next rule (or, when
none takes it, TVM's default unscheduled loops) gets the kernel; a fixed-shape kernel still lets a
rule's error through.
The compile report names every symbolic kernel left to TVM's default
(graphopt.lowering.shape_bounds.kernel_report): never a silent fallback.
"""

from __future__ import annotations

from graphopt.kernels.schedules.depthwise import Depthwise
from graphopt.kernels.schedules.fallback import Fallback
from graphopt.kernels.schedules.gemm import GEMM
from graphopt.kernels.schedules.grouped import GroupedConv
from graphopt.kernels.schedules.pool import Pool
from graphopt.kernels.schedules.rows import Rows


def cpu_rules() -> list:
    """The CPU rule list, most specific first."""
    # dlight.cpu.Reduction is left out: it ran a 1x1000 softmax 1000x slower here
    # Rows before Fallback: a softmax or LayerNorm is also a reduction Fallback would take (rows.py says why not)
    return [GEMM(), GroupedConv(), Depthwise(), Pool(), Rows(), Fallback()]


def schedule_kernel(func, target, rule: str | None = None, knobs: dict | None = None):
    """(schedule or None, name of the rule that took the kernel or "none").

    With `rule` and `knobs` (a tuned choice), that rule is asked first with those
    knobs; when it declines, the caller learns it from the returned name (it is
    then the default rule's) and must say so: a tuned choice is never dropped silently."""
    if rule is not None:
        sch = schedule_with(func, target, rule, knobs or {})
        if sch is not None:
            return sch, rule
    if has_symbolic_shape(func):
        return _schedule_symbolic(func, target)
    for r in cpu_rules():
        sch = r.schedule(func, target, {})
        if sch is not None:
            return sch, r.name
    return None, "none"


def _schedule_symbolic(func, target):
    """schedule_kernel for a kernel with symbolic extents; the name says which rules raised on it
    (e.g. "fallback (symbolic: gemm raised)"), so the compile report shows what was lost."""
    raised = []
    for r in cpu_rules():
        try:
            sch = r.schedule(func, target, {})
        except Exception:  # noqa: BLE001  (a rule written for static extents: see the module docstring)
            raised.append(r.name)
            continue
        if sch is not None:
            return sch, r.name + (f" (symbolic: {', '.join(raised)} raised)" if raised else "")
    return None, "none"


def has_symbolic_shape(func) -> bool:
    """A PrimFunc with a buffer dim that is not a number (a range compile's kernel)."""
    from tvm import tirx

    return any(not isinstance(d, tirx.IntImm) for param in func.params for d in (param_shape(param) or ()))


def param_shape(param):
    """A buffer parameter's shape; None for a scalar parameter."""
    try:
        return param.shape
    except Exception:  # noqa: BLE001  (a scalar var has no buffer shape)
        return None


def _guarded(rule, func, target, knobs: dict):
    """The rule's schedule of a symbolic kernel, or None where it raises (read as declining)."""
    try:
        return rule.schedule(func, target, dict(knobs))
    except Exception:  # noqa: BLE001  (a rule written for static extents: see the module docstring)
        return None


def schedule_with(func, target, rule: str, knobs: dict):
    """The schedule `rule` makes with `knobs`, or None when it declines (no fallback:
    a tuner skips a setting the rule refuses without spending a trial on it)."""
    for r in cpu_rules():
        if r.name == rule:
            if has_symbolic_shape(func):
                return _guarded(r, func, target, knobs)
            return r.schedule(func, target, dict(knobs))
    return None


__all__ = ["GEMM", "Depthwise", "Fallback", "GroupedConv", "Pool", "Rows", "cpu_rules", "has_symbolic_shape",
           "schedule_kernel", "schedule_with"]
