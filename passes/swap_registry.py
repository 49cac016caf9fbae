"""Every swap planner by name: ours and the six SINGA baselines."""

from __future__ import annotations

from graphopt.passes.swap_cpsat import SwapCpSat
from graphopt.passes.swap_singa import MODES, RANKINGS, Singa

from graphopt.errors import InputError

SINGA_NAMES = tuple(Singa(r, m).name for r in RANKINGS for m in MODES)
SWAP_PLANNERS = ("ours", *SINGA_NAMES)


def get_swap_planner(name: str):
    """A fresh swap planner; unknown names list the known ones."""
    if name == "ours":
        return SwapCpSat()
    for r in RANKINGS:
        for m in MODES:
            if Singa(r, m).name == name:
                return Singa(r, m)
    raise InputError(f"unknown swap planner {name!r}; known: {', '.join(SWAP_PLANNERS)}")
