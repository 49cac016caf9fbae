"""`--memory-budget min` and the explanation of a budget no schedule can meet.

Why: a user who asks for a budget below what the swap model can reach used to get
"no schedule brings the peak under N bytes", with no word of why or of what would work.
The floor (graphopt.plan.swap_floor) says both: the least budget, the step that sets it,
and the tensors that must stay resident there. `min` plans at the floor; when placement
or the planner cannot meet it exactly, it bisects upward to the no-swap arena (a budget
every step already meets) and keeps the least budget whose arena fits.
"""

from __future__ import annotations

from collections.abc import Callable

from graphopt.errors import PlanError
from graphopt.plan.swap_floor import Floor

MIN_BUDGET = "min"
BISECTION_PROBES = 4


def is_min(text: str | None) -> bool:
    return text is not None and text.strip().lower() == MIN_BUDGET


def _kib(n: int) -> str:
    return f"{n / 1024:,.0f} KiB"


def below_floor_message(budget: int, floor: Floor, noswap: int, step_name: str,
                        buffer_name: Callable[[int], str]) -> str:
    """One line: the budget asked, the least that works, where it binds and what stays resident."""
    shown = ", ".join(f"{buffer_name(r.buffer)} {_kib(r.size)} ({r.reason})" for r in floor.resident[:3])
    more = f" and {len(floor.resident) - 3} more" if len(floor.resident) > 3 else ""
    return (f"memory budget {budget:,} bytes is below the least any swap/recompute schedule reaches: "
            f"{floor.bytes:,} bytes ({floor.bytes / noswap:.3f}x of the no-swap arena), set at step {floor.step} "
            f"({step_name}) where {len(floor.resident)} tensor(s) must stay resident: {shown}{more}; "
            f"use --memory-budget {floor.bytes} or more, or --memory-budget min")


def least_fitting(fit: Callable[[int], object], arena_of: Callable[[object], int], floor: int,
                  noswap: int) -> tuple[object, list[dict]]:
    """The plan for the least budget in [floor, noswap] whose arena fits it, by bisection.

    `fit(budget)` plans (raising PlanError when its planner finds nothing); returns the plan
    and every probe (budget, arena or None, fits) for plan.json."""
    probes: list[dict] = []

    def attempt(budget: int):
        try:
            plan = fit(budget)
        except PlanError:
            probes.append({"budget_bytes": budget, "arena_bytes": None, "fits": False})
            return None
        fits = arena_of(plan) <= budget
        probes.append({"budget_bytes": budget, "arena_bytes": arena_of(plan), "fits": fits})
        return plan if fits else None

    best = attempt(floor)
    if best is not None:
        return best, probes
    low, high, best = floor, noswap, None
    for _ in range(BISECTION_PROBES):
        middle = (low + high) // 2
        plan = attempt(middle)
        if plan is None:
            low = middle
        else:
            high, best = middle, plan
    if best is None:
        best = attempt(noswap) or fit(noswap)
    return best, probes
