"""The refit loop of graphopt.train.swapping._fit: when placement fragments the arena over the
budget, the swaps are planned again for a lower target, never below the model's feasibility
floor; the least arena is kept, the first plan that fits wins, and no fit is a one-line error."""

from __future__ import annotations

from dataclasses import replace

import pytest

from graphopt.analysis.cost import StepCosts
from graphopt.errors import PlanError
from graphopt.options import TrainOptions
from graphopt.passes import registry, swap_registry
from graphopt.passes.swap_cpsat import SwapCpSat
from graphopt.plan.placement import Placement
from graphopt.plan.swap import SwapProblem, live_bytes
from graphopt.plan.swap_floor import feasibility_floor
from graphopt.train import swapping
from tests.passes.test_swap import training_like


class _Recorder:
    """"ours", recording the target budget of every swap plan it makes."""

    name = "ours"

    def __init__(self) -> None:
        self.targets: list[tuple[int, bool]] = []

    def plan(self, sp: SwapProblem, time_limit: float = 10.0, starts: tuple = ()):
        self.targets.append((sp.budget, sp.rich))
        return SwapCpSat().plan(sp, time_limit=time_limit, starts=starts)


class _Fragmenting:
    """A placement planner whose arena is the peak of live bytes plus `waste` (fragmentation)
    for the first `bad` plans, then the peak alone."""

    def __init__(self, waste: int, bad: int) -> None:
        self.waste, self.bad, self.calls = waste, bad, 0

    def plan(self, problem, time_limit: float = 10.0) -> Placement:
        self.calls += 1
        peak = int(live_bytes(SwapProblem(problem, {}, (0.0,) * problem.num_steps, 1 << 60), ()).max())
        offsets = {b.id: 0 for b in problem.buffers}  # offsets are not judged here, only the height
        return Placement(offsets, peak + (self.waste if self.calls <= self.bad else 0), "fragmenting")


def _setup(monkeypatch, waste: int, bad: int) -> tuple[SwapProblem, _Recorder, _Fragmenting]:
    sp = replace(training_like(3, layers=6, fraction=0.6), rich=True)
    recorder, placer = _Recorder(), _Fragmenting(waste, bad)
    monkeypatch.setattr(swap_registry, "get_swap_planner", lambda name: recorder)
    monkeypatch.setattr(registry, "get_planner", lambda name: placer)
    return sp, recorder, placer


def _fit(sp: SwapProblem):
    base = Placement({}, int(live_bytes(sp, ()).max()), "base")
    costs = StepCosts(tuple(sp.step_seconds), "analytic")
    return swapping._fit(sp, costs, base, TrainOptions(time_limit=0.5))


def test_refit_never_plans_below_the_floor_and_fails_in_one_line(monkeypatch) -> None:
    """Fragmentation larger than the room above the floor: every target stays at or above it."""
    sp, recorder, _placer = _setup(monkeypatch, waste=10 * sp_peak(), bad=1 << 30)
    floor = feasibility_floor(sp).bytes
    with pytest.raises(PlanError) as err:
        _fit(sp)
    assert recorder.targets and all(target >= floor for target, _rich in recorder.targets)
    assert any(target == floor for target, _rich in recorder.targets)  # it went as low as allowed
    assert len({t for t, _ in recorder.targets}) <= swapping.REFIT_ROUNDS
    assert "\n" not in str(err.value) and f"the model's floor {floor:,}" in str(err.value)


def test_refit_keeps_the_plan_that_fits(monkeypatch) -> None:
    """Every placement wastes 5% of the budget: the first round's plans do not fit, a later round
    plans for a target lowered by the excess, and its plan fits and is kept."""
    sp, recorder, placer = _setup(monkeypatch, waste=0, bad=1 << 30)
    placer.waste = sp.budget // 20
    plan = _fit(sp)
    assert plan.placement.arena_bytes <= sp.budget
    assert min(t for t, _ in recorder.targets) < sp.budget  # a second round, at a lower target
    assert plan.record["swap_model"] == "rich"


def sp_peak() -> int:
    sp = training_like(3, layers=6, fraction=0.6)
    return int(live_bytes(sp, ()).max())
