"""A range compile's bounds on the Relax program, and the report of its symbolic kernels.

Why the bounds go on `main` (`tir_var_upper_bound`): TVM's own passes read them (the stock
StaticPlanBlockMemory baseline sizes symbolic tensors at the bound) and graphopt's arena is
planned at the same maximum (graphopt.analysis.range_plan), so both planners see one problem.

Why a kernel report: graphopt's CPU schedule rules may decline a kernel with symbolic loops
(graphopt.kernels.schedules); such a kernel runs TVM's default unscheduled loops, which are
correct but slow. The compile says which kernels that happened to, by name, on stderr and in
plan.json (`shape_range.kernels`).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping

import tvm

from graphopt.kernels.schedules import has_symbolic_shape
from graphopt.kernels.tuning.apply import ATTR


def with_upper_bounds(mod: tvm.IRModule, symbols: Mapping[str, tuple[int, int]]) -> tvm.IRModule:
    """`mod` whose `main` carries every symbol's upper bound."""
    main = mod["main"].with_attr("tir_var_upper_bound", {name: int(hi) for name, (_lo, hi) in symbols.items()})
    out = tvm.IRModule(dict(mod.functions_items()), attrs=mod.attrs)
    out[out.get_global_var("main")] = main
    return out


def kernel_report(mod: tvm.IRModule) -> dict:
    """{"symbolic": n, "by_rule": {rule: n}, "tvm_default": [kernel names]} over symbolic PrimFuncs."""
    by_rule: dict[str, int] = {}
    default: list[str] = []
    for gvar, func in mod.functions_items():
        if not isinstance(func, tvm.tirx.PrimFunc) or not has_symbolic_shape(func):
            continue
        label = str(func.attrs[ATTR]) if func.attrs is not None and ATTR in func.attrs else "tvm default"
        by_rule[label] = by_rule.get(label, 0) + 1
        if label == "tvm default":
            default.append(gvar.name_hint)
    return {"symbolic": sum(by_rule.values()), "by_rule": dict(sorted(by_rule.items())),
            "tvm_default": sorted(default)}


def warn_default_kernels(report: dict, schedules: bool) -> None:
    """stderr lines when graphopt's rules raised on symbolic kernels or left them to TVM's default loops."""
    if not schedules:
        return
    weaker = sum(n for label, n in report["by_rule"].items() if "raised)" in label)
    if weaker:
        print(f"warning: {weaker} of {report['symbolic']} symbolic-shape kernels got a more generic schedule "
              f"because a rule raised on their symbolic extents: {_labels(report)}", file=sys.stderr)
    names = report["tvm_default"]
    if names:
        shown = ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
        print(f"warning: {len(names)} of {report['symbolic']} symbolic-shape kernels are left to TVM's default "
              f"(unscheduled, slow) loops: {shown}", file=sys.stderr)


def _labels(report: dict) -> str:
    return "; ".join(f"{n} x {label}" for label, n in report["by_rule"].items())


__all__ = ["kernel_report", "warn_default_kernels", "with_upper_bounds"]
