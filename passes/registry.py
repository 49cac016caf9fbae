"""Every placement planner by name: the one place where they are listed."""

from __future__ import annotations

from collections.abc import Callable

from graphopt.errors import InputError
from graphopt.passes.auto import Auto
from graphopt.passes.base import Planner
from graphopt.passes.bnb import BranchAndBound
from graphopt.passes.cpsat import CpSat
from graphopt.passes.greedy_by_size import GreedyBySize
from graphopt.passes.smartpool import BestOfOrderings, SmartPool

PLANNERS: dict[str, Callable[[], Planner]] = {
    "greedy_by_size": GreedyBySize,
    "smartpool": SmartPool,
    "best_of_orderings": BestOfOrderings,
    "cpsat": CpSat,
    "auto": Auto,
    "bnb": BranchAndBound,
}


def get_planner(name: str) -> Planner:
    """A fresh planner; unknown names list the known ones."""
    try:
        return PLANNERS[name]()
    except KeyError:
        raise InputError(f"unknown planner {name!r}; known: {', '.join(PLANNERS)}") from None
