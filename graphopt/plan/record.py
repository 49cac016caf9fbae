"""The plan as stored in plan.json and printed by `graphopt inspect`.

Baselines are computed on the same MemoryProblem (same program, same order) so
every ratio compares planners, never programs.
"""

from __future__ import annotations

import numpy as np

from graphopt.analysis.lower_bound import lower_bound
from graphopt.analysis.pool import caching_pool_peak, naive_bytes


def plan_record(extraction, placement, report, stock_bytes: int, params: list[np.ndarray], stages: dict) -> dict:
    problem = extraction.problem
    return {
        "planner": placement.planner,
        "optimal": placement.optimal,
        "planner_seconds": round(placement.seconds, 4),
        "arena_bytes": int(placement.arena_bytes),
        "lower_bound_bytes": int(lower_bound(problem)),
        "naive_bytes": int(naive_bytes(problem)),
        "tvm_stock_bytes": int(stock_bytes),
        "pool_bytes": int(caching_pool_peak(problem)),
        "params_bytes": int(sum(p.nbytes for p in params)),
        "output_bytes": int(extraction.output_bytes),
        "num_tensors": len(problem.buffers),
        "num_steps": int(problem.num_steps),
        "valid": bool(report.valid),
        "stage_seconds": {k: round(v, 3) for k, v in stages.items()},
        "steps": list(extraction.step_names),
        "buffers": [
            {"id": b.id, "name": b.name, "start": b.start, "end": b.end, "size": b.size,
             "alignment": b.alignment, "offset": int(placement.offsets[b.id])}
            for b in problem.buffers
        ],
    }
