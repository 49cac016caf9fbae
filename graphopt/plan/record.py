"""plan.json: the one writer of the memory plan an artifact stores, and its reader.

`graphopt inspect` and the benchmarks read it back; `PlanJSON` names its keys.
`revalidate` rebuilds the problem and placement from the stored buffers and runs
the one validator on them: what is displayed is judged, not the stored `valid`.
Baselines are computed on the same MemoryProblem (same program, same order), so
every ratio compares planners, never programs. The compile driver adds sections
after these keys (reorder, concat_in_place, schedules, weights, and for training
the swap record): see graphopt.compile_stages.write.
"""

from __future__ import annotations

from typing import TypedDict

from graphopt.analysis.lower_bound import lower_bound
from graphopt.analysis.pool import caching_pool_peak, naive_bytes
from graphopt.plan.placement import Placement
from graphopt.plan.problem import Buffer, MemoryProblem
from graphopt.plan.validator import ValidationReport, validate


class BufferJSON(TypedDict):
    id: int
    name: str
    start: int
    end: int
    size: int
    alignment: int
    offset: int


class PlanJSON(TypedDict):
    planner: str
    optimal: bool
    planner_seconds: float
    arena_bytes: int
    lower_bound_bytes: int
    naive_bytes: int
    tvm_stock_bytes: int
    pool_bytes: int
    params_bytes: int
    output_bytes: int
    num_tensors: int
    num_steps: int
    valid: bool
    stage_seconds: dict[str, float]
    steps: list[str]
    buffers: list[BufferJSON]


def plan_record(problem: MemoryProblem, placement: Placement, report: ValidationReport, *, output_bytes: int,
                step_names: list[str], stock_bytes: int, params_bytes: int, stage_seconds: dict) -> PlanJSON:
    return {
        "planner": placement.planner,
        "optimal": placement.optimal,
        "planner_seconds": round(placement.seconds, 4),
        "arena_bytes": int(placement.arena_bytes),
        "lower_bound_bytes": int(lower_bound(problem)),
        "naive_bytes": int(naive_bytes(problem)),
        "tvm_stock_bytes": int(stock_bytes),
        "pool_bytes": int(caching_pool_peak(problem)),
        "params_bytes": int(params_bytes),
        "output_bytes": int(output_bytes),
        "num_tensors": len(problem.buffers),
        "num_steps": int(problem.num_steps),
        "valid": bool(report.valid),
        "stage_seconds": {k: round(v, 3) for k, v in stage_seconds.items()},
        "steps": list(step_names),
        "buffers": [
            {"id": b.id, "name": b.name, "start": b.start, "end": b.end, "size": b.size,
             "alignment": b.alignment, "offset": int(placement.offsets[b.id])}
            for b in problem.buffers
        ],
    }


def from_record(plan: dict) -> tuple[MemoryProblem, Placement]:
    """The problem and placement a plan.json holds; ValueError (one line) if it is malformed."""
    try:
        buffers = tuple(Buffer(int(b["id"]), int(b["start"]), int(b["end"]), int(b["size"]), int(b["alignment"]),
                               str(b.get("name", ""))) for b in plan["buffers"])
        problem = MemoryProblem(buffers=buffers, num_steps=int(plan["num_steps"]))
        offsets = {int(b["id"]): int(b["offset"]) for b in plan["buffers"]}
        placement = Placement(offsets, int(plan["arena_bytes"]), str(plan.get("planner", "?")))
    except KeyError as exc:
        raise ValueError(f"plan.json lacks {exc}") from None
    except (TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"plan.json is malformed ({exc})") from None
    return problem, placement


def revalidate(plan: dict) -> ValidationReport:
    """The validator's verdict on a stored plan, from plan.json alone; a malformed
    record is an invalid plan whose one error says why."""
    try:
        problem, placement = from_record(plan)
    except ValueError as exc:
        arena = plan.get("arena_bytes") if isinstance(plan, dict) else None
        return ValidationReport(valid=False, errors=(str(exc),),
                                arena_bytes=arena if isinstance(arena, int) else 0, lower_bound=0)
    return validate(problem, placement)
