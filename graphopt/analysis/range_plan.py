"""A memory plan for a range of shapes: planned at the maximum, proven for the whole range.

Design (the why is in graphopt.analysis.symbolic_size): the planner places the tensors sized at
the range's maximum; offsets are constants in the program. This module then
  1. proves every planned tensor's size monotone non-decreasing in every symbol (each dim is,
     and is non-negative at the lower corner, so their product is), which makes the max plan
     valid at every point: a tensor fills a prefix of its max-size slot and lifetimes do not
     change with shapes. A dim outside the proof's grammar refuses the compile (PlanError);
  2. re-extracts the problem at every corner of the range and at sampled interior points and
     judges the same offsets with the one validator (graphopt.plan.validator). This is a check
     of the proof and of the extraction, not a replacement for the proof;
  3. reports the arena the plan uses and the lower bound at the maximum and at the minimum.
The arena allocated is always the maximum's: the runtime allocates it once per session.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping

from tvm import relax

from graphopt.analysis.bindings import is_alloc
from graphopt.analysis.extract import Extraction, extract
from graphopt.analysis.lower_bound import lower_bound
from graphopt.analysis.symbolic_size import Point, free_symbols, is_monotone
from graphopt.errors import PlanError
from graphopt.plan.placement import Placement
from graphopt.plan.problem import MemoryProblem
from graphopt.plan.validator import validate

INTERIOR_SAMPLES = 6
MAX_CORNERS = 64  # 2**6 symbols; more symbols than that check a seeded sample of corners


def corner(symbols: Mapping[str, tuple[int, int]], which: int) -> dict[str, int]:
    """The lower (which=0) or upper (which=1) corner of the range."""
    return {name: bounds[which] for name, bounds in symbols.items()}


def range_points(symbols: Mapping[str, tuple[int, int]], samples: int = INTERIOR_SAMPLES,
                 seed: int = 0) -> list[dict[str, int]]:
    """The corners of the range (all of them up to MAX_CORNERS), then seeded interior points."""
    names = sorted(symbols)
    rng = random.Random(seed)
    corners = [dict(zip(names, combo)) for combo in itertools.product(*(symbols[n] for n in names))]
    if len(corners) > MAX_CORNERS:
        corners = [corner(symbols, 0), corner(symbols, 1)] + rng.sample(corners, MAX_CORNERS - 2)
    interior = [{n: rng.randint(*symbols[n]) for n in names} for _ in range(samples)]
    return corners + interior


def prove_monotone(func: relax.Function, extraction: Extraction, symbols: Mapping[str, tuple[int, int]]) -> int:
    """Step 1: PlanError unless every planned tensor's dims are proven monotone and non-negative;
    returns how many tensors had a symbolic size."""
    planned = set(extraction.buffer_vars.values())
    lower = corner(symbols, 0)
    symbolic = 0
    for block in func.body.blocks:
        for binding in block.bindings:
            if binding.var not in planned or not is_alloc(binding.value):
                continue
            dims = list(binding.value.args[0].values)
            if any(free_symbols(d) for d in dims):
                symbolic += 1
            for d in dims:
                if free_symbols(d) - set(symbols):
                    raise PlanError(f"tensor {binding.var.name} has a size ({d}) that depends on more than "
                                    "the range's symbols; graphopt cannot plan it for a range")
                if not is_monotone(d, lower):
                    raise PlanError(f"tensor {binding.var.name} has a size ({d}) not proven to grow with the "
                                    "range's symbols; compile that model for fixed shapes")
    return symbolic


def check_points(func: relax.Function, extraction: Extraction, placement: Placement,
                 points: list[Point]) -> None:
    """Step 2: the one validator on the max plan's offsets, at every point (PlanError on the first failure)."""
    planned = extraction.problem.buffers
    for point in points:
        problem = extract(func, at=point).problem
        if [(b.id, b.start, b.end) for b in problem.buffers] != [(b.id, b.start, b.end) for b in planned]:
            raise PlanError(f"the program's tensors differ at {_fmt(point)}; a range plan needs one program")
        # the same offsets, judged at this point's sizes; the arena they reach must fit the one allocated
        at_point = Placement.from_offsets(problem, placement.offsets, placement.planner)
        report = validate(problem, at_point)
        if not report.valid:
            raise PlanError(f"the range plan is invalid at {_fmt(point)}: {report.errors[0]}")
        if at_point.arena_bytes > placement.arena_bytes:
            raise PlanError(f"the range plan needs {at_point.arena_bytes} B at {_fmt(point)}, more than the "
                            f"{placement.arena_bytes} B arena planned at the maximum")


def used_arena(problem: MemoryProblem, placement: Placement) -> int:
    """The bytes of the arena the plan's tensors reach at the problem's sizes."""
    return max((placement.offsets[b.id] + b.size for b in problem.buffers), default=0)


def range_record(func: relax.Function, extraction: Extraction, placement: Placement,
                 symbols: Mapping[str, tuple[int, int]]) -> dict:
    """Steps 1-3: prove, check, and the plan.json section `shape_range` (PlanError if unproven)."""
    symbolic = prove_monotone(func, extraction, symbols)
    points = range_points(symbols)
    check_points(func, extraction, placement, points)
    at_min = extract(func, at=corner(symbols, 0)).problem
    at_max = extraction.problem
    return {
        "symbols": {name: list(bounds) for name, bounds in sorted(symbols.items())},
        "symbolic_tensors": symbolic,
        "points_checked": len(points),
        "proof": "monotone sizes",
        "at_max": {"point": corner(symbols, 1), "arena_bytes": used_arena(at_max, placement),
                   "lower_bound_bytes": int(lower_bound(at_max))},
        "at_min": {"point": corner(symbols, 0), "arena_bytes": used_arena(at_min, placement),
                   "lower_bound_bytes": int(lower_bound(at_min))},
    }


def _fmt(point: Point) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(point.items()))


__all__ = ["check_points", "corner", "prove_monotone", "range_points", "range_record", "used_arena"]
