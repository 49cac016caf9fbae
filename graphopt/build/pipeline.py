"""The TVM side of a compile, as a few calls the driver sequences.

Everything here imports TVM; the planners and the plan data model never do.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import tvm

from graphopt.build.concat_in_place import concat_in_place  # noqa: F401
from graphopt.build.extract import Extraction, extract
from graphopt.build.lower import build, finalize, lower_to_explicit_memory, make_target  # noqa: F401
from graphopt.build.rewrite import apply_placement
from graphopt.build.stock import stock_plan, storage_bytes
from graphopt.plan.placement import Placement


@dataclass(frozen=True)
class Imported:
    mod: tvm.IRModule
    params: list[np.ndarray]
    input_names: list[str]
    param_names: list[str]


def import_model(model) -> Imported:
    from graphopt.frontend.importer import to_relax

    mod, params, input_names, param_names = to_relax(model)
    return Imported(mod, params, input_names, param_names)


def lower_imported(imported: Imported, target: tvm.target.Target, schedules: bool = True,
                   tuning_db=None) -> tuple[tvm.IRModule, Imported]:
    """The lowered program and the imported model with its weights as that program
    takes them (prepared once at compile time on llvm: see graphopt.build.prepack)."""
    from graphopt.build.lower import lower_with_prepared_weights

    lowered, params, names = lower_with_prepared_weights(imported.mod, target, imported.params,
                                                         imported.param_names, schedules, tuning_db)
    return lowered, replace(imported, params=params, param_names=names)


def target_record(target: tvm.target.Target) -> dict:
    """The part of a target the runtime and the artifact id care about."""
    record = {"kind": target.kind.name}
    if target.kind.name == "cuda":
        record["arch"] = str(target.attrs.get("arch", ""))
    elif target.attrs.get("mcpu"):
        record["mcpu"] = str(target.attrs["mcpu"])  # code may use this CPU's vector extensions
    return record


def stock_bytes(lowered: tvm.IRModule, target: tvm.target.Target) -> int:
    """Total storage TVM's StaticPlanBlockMemory allocates for this program."""
    return storage_bytes(stock_plan(lowered, target)["main"])


def build_planned(lowered: tvm.IRModule, extraction: Extraction, placement: Placement, target):
    """Rewrites the program onto one arena, finalizes it and generates code."""
    planned = apply_placement(lowered, extraction.buffer_vars, placement)
    return build(finalize(planned, target, stock=False), target)


def build_stock(lowered: tvm.IRModule, target):
    """The same program planned the stock way: the baseline with identical kernels."""
    return build(finalize(lowered, target, stock=True), target)


def reorder_program(lowered: tvm.IRModule) -> tuple[tvm.IRModule, dict]:
    """A lower-peak kernel order when one exists; the record says what happened.

    The new order is kept only if the lower bound that extraction computes for it
    is strictly lower than the original's: the scheduler's model and extraction
    share their alias rules, and this check makes that agreement a guarantee.
    """
    from graphopt.analysis.lower_bound import lower_bound
    from graphopt.build.reorder import read_dag, write_order
    from graphopt.passes.reorder import reorder

    before = lower_bound(extract(lowered["main"]).problem)
    record = {"method": "skipped", "lower_bound_before": before, "lower_bound_after": before}
    dag = read_dag(lowered["main"])
    if dag is None or dag.problem.num_nodes < 2:
        return lowered, record
    result = reorder(dag.problem)
    record.update(method=result.method, seconds=round(result.seconds, 4))
    if result.method == "original":
        return lowered, record
    candidate = lowered.clone()
    candidate.update_func(candidate.get_global_var("main"), write_order(lowered["main"], dag, result.order))
    after = lower_bound(extract(candidate["main"]).problem)
    if after >= before:
        record["method"] = f"{result.method} (not kept: extraction lower bound {after} >= {before})"
        return lowered, record
    record["lower_bound_after"] = after
    return candidate, record
