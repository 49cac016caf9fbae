"""The compile-time schedule pass: the default rules, or a tuning db's choices.

For every unscheduled PrimFunc the pass looks up (workload, target) in the
database; a record's rule is asked first with the recorded knobs, otherwise
the default rules run in order (graphopt.kernels.schedules). Each scheduled
kernel gets the attribute `graphopt.schedule` ("gemm", "gemm tuned", ...): the
record of what was applied, which `applied_schedules` summarizes for the
artifact's plan record. A recorded choice that its rule now refuses is not
dropped silently: the kernel gets the default schedule and a warning says so.

Before any rule, the kernel library is asked (graphopt.kernels.onednn.choose): a
kernel the database (or `kernel_library="onednn"`) gives to oneDNN becomes one extern
call with the same parameters, labelled `onednn <op> ...`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import tvm
from tvm.target import Target

from graphopt.kernels.tuning.db import TuningDB
from graphopt.kernels.tuning.workload import target_key, workload_key

ATTR = "graphopt.schedule"


def apply_schedules(tuning_db: str | Path | None = None, kernel_library: str = "auto") -> tvm.transform.Pass:
    """A module pass scheduling every unscheduled PrimFunc (needs `with target:`); `kernel_library`:
    "auto" (the database's per-kernel choice), "tvm" or "onednn" (graphopt.kernels.onednn.choose)."""
    from graphopt.kernels.onednn.choose import check_choice

    db = TuningDB.open(tuning_db) if tuning_db is not None else None
    check_choice(kernel_library, db)

    @tvm.transform.module_pass(opt_level=0, name="GraphoptSchedules")
    def schedule_all(mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        updates = {}
        for gvar, func in mod.functions_items():
            if isinstance(func, tvm.tirx.PrimFunc) and not _is_scheduled(func):
                scheduled = schedule_one(func, _target_of(func), db, gvar.name_hint, kernel_library)
                if scheduled is not None:
                    updates[gvar] = scheduled
        for gvar, func in updates.items():
            mod[gvar] = func
        return mod

    return schedule_all


def schedule_one(func: tvm.tirx.PrimFunc, target: Target, db: TuningDB | None, name: str = "",
                 kernel_library: str = "auto"):
    """The scheduled PrimFunc (marked and labelled), or None when no rule applies."""
    from graphopt.kernels.onednn.choose import library_kernel
    from graphopt.kernels.schedules import schedule_kernel

    record = db.get(workload_key(func), target_key(target)) if db is not None else None
    external = library_kernel(func, record, kernel_library, name)
    if external is not None:
        return external
    rule, knobs = (record.rule, record.knobs) if record is not None and record.knobs else (None, None)
    sch, taken = schedule_kernel(func, target, rule, knobs)
    label = taken + (" tuned" if rule is not None and taken == rule else "")
    if rule is not None and taken != rule:
        print(f"warning: tuned schedule for {name} ({rule} {knobs}) was refused; using the default {taken}",
              file=sys.stderr)
    if sch is None:
        return None
    return sch.mod["main"].with_attr("tirx.is_scheduled", True).with_attr(ATTR, label)


def applied_schedules(mod: tvm.IRModule) -> dict:
    """{"kernels": n, "tuned": k, "by_rule": {label: count}} over the module's PrimFuncs."""
    by_rule: dict[str, int] = {}
    for _, func in mod.functions_items():
        if isinstance(func, tvm.tirx.PrimFunc):
            label = str(func.attrs[ATTR]) if func.attrs is not None and ATTR in func.attrs else (
                "scheduled elsewhere" if _is_scheduled(func) else "unscheduled")
            by_rule[label] = by_rule.get(label, 0) + 1
    tuned = sum(n for label, n in by_rule.items() if label.endswith(" tuned"))
    return {"kernels": sum(by_rule.values()), "tuned": tuned, "by_rule": dict(sorted(by_rule.items()))}


def _is_scheduled(func: tvm.tirx.PrimFunc) -> bool:
    return func.attrs is not None and bool(func.attrs.get("tirx.is_scheduled", False))


def _target_of(func: tvm.tirx.PrimFunc) -> Target:
    found = func.attrs.get("target") if func.attrs is not None else None
    return found if found is not None else Target.current(allow_none=False)
