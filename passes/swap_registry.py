"""Every swap planner by name: ours, the LP rounding alone (also one of ours' candidates at
compile time, graphopt.train.swapping.model_schedules), the six SINGA baselines, Capuchin's
hybrid and recomputation alone."""

from __future__ import annotations

from graphopt.errors import InputError
from graphopt.passes.recompute_greedy import RecomputeGreedy
from graphopt.passes.swap_capuchin import Capuchin
from graphopt.passes.swap_cpsat import SwapCpSat
from graphopt.passes.swap_lp_round import SwapLpRound
from graphopt.passes.swap_singa import MODES, RANKINGS, Singa

SINGA_NAMES = tuple(Singa(r, m).name for r in RANKINGS for m in MODES)
BASELINES = (*SINGA_NAMES, Capuchin.name, RecomputeGreedy.name)
LP_ROUND = SwapLpRound.name
SWAP_PLANNERS = ("ours", LP_ROUND, *BASELINES)


def get_swap_planner(name: str):
    """A fresh swap planner; unknown names list the known ones."""
    if name == "ours":
        return SwapCpSat()
    if name == SwapLpRound.name:
        return SwapLpRound()
    if name == Capuchin.name:
        return Capuchin()
    if name == RecomputeGreedy.name:
        return RecomputeGreedy()
    for r in RANKINGS:
        for m in MODES:
            if Singa(r, m).name == name:
                return Singa(r, m)
    raise InputError(f"unknown swap planner {name!r}; known: {', '.join(SWAP_PLANNERS)}")
