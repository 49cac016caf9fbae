"""Concatenation in place, only where it does not raise the memory peak.

Why: eliding a concatenation makes its inputs views of the output, so the output's
buffer is born with the first input and lives until the output's last use. Usually
that saves the copy and the bytes of input and output live at once; but when an
input is produced long before the others (the bundled demo: a branch computed
early, reordered for a lower peak), the whole concatenated buffer is live for that
stretch and the peak grows (demo: lower bound 0.344 MiB -> 0.375 MiB). A default
option must never raise a model's arena, so:

1. elide every eligible concatenation; if the program's lower bound (the peak the
   planner reaches: graphopt.analysis.lower_bound) does not grow, keep that;
2. else decide one concatenation at a time, in program order: elide it only if
   the lower bound with it elided (and the earlier choices) is not above the bound
   so far. The bound never exceeds the copies' one; the record counts the
   concatenations kept as copies for memory (`kept_for_memory`).

Each decision extracts the program once (milliseconds on the zoo's models), and
step 2 runs only when step 1 raised the bound.
"""

from __future__ import annotations

import tvm

from graphopt.transforms.concat_in_place import concat_in_place
from graphopt.transforms.result import RewriteResult


def _bound(mod: tvm.IRModule) -> int:
    from graphopt.analysis.extract import extract
    from graphopt.analysis.lower_bound import lower_bound

    return lower_bound(extract(mod["main"]).problem)


def concat_in_place_no_worse(mod: tvm.IRModule) -> RewriteResult[tvm.IRModule]:
    """concat_in_place on the concatenations that do not raise the lower bound."""
    every = concat_in_place(mod)
    if not every.modified:
        return _public(every)
    base = _bound(mod)
    if _bound(every.module) <= base:
        return _public(every)
    candidates = every.record["elided_at"]
    chosen: list[int] = []
    best, bound = RewriteResult(mod, False, {**every.record, "elided": 0, "elided_at": []}), base
    for index in candidates:
        trial = concat_in_place(mod, keep=frozenset(candidates) - {index, *chosen})
        trial_bound = _bound(trial.module)
        if trial.modified and trial_bound <= bound:
            chosen.append(index)
            best, bound = trial, trial_bound
    return _public(best, kept=len(candidates) - best.record["elided"])


def _public(result: RewriteResult, kept: int = 0) -> RewriteResult:
    """The record plan.json keeps: counts, and `kept_for_memory` when any concatenation was kept."""
    record = {"elided": result.record["elided"], "concatenations": result.record["concatenations"]}
    if kept:
        record["kept_for_memory"] = kept
    return RewriteResult(result.module, result.modified, record)
