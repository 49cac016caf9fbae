"""The integer version of the swap bound: whole events where the LP sends halves, never above a valid plan."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graphopt.passes.swap_exact import solve_exact
from graphopt.plan.swap_bound import overhead_lower_bound
from graphopt.plan.swap_bound_integer import certified_lower_bound, integer_lower_bound
from graphopt.plan.swap_validator import validate_swaps
from tests.passes.test_swap import training_like
from tests.plan.test_swap_bound import STEPS, one_buffer_must_go

TOLERANCE = 1e-9


def test_half_the_excess_costs_a_whole_event() -> None:
    """50 B to free of a 100 B buffer: the LP sends half of it away for half the recompute
    (less the sliver that hides), any plan and the integer program pay the whole recompute."""
    sp = one_buffer_must_go(copy_seconds=1.0, budget=150)
    lp, integer = overhead_lower_bound(sp), overhead_lower_bound(sp, integer=True)
    assert lp.seconds == pytest.approx(STEPS[0] * (0.5 - STEPS[1] / 1.0), rel=1e-6)
    assert (integer.status, integer.integer) == ("optimal", True)
    assert integer.seconds == pytest.approx(STEPS[0], rel=1e-6)
    assert certified_lower_bound(sp, time_limit=10.0).seconds == pytest.approx(STEPS[0], rel=1e-6)
    assert integer.seconds <= solve_exact(sp, time_limit=5.0).stall + TOLERANCE


def test_no_plan_and_no_excess_as_the_lp_says() -> None:
    tight = one_buffer_must_go(1.0, budget=99)
    assert overhead_lower_bound(tight, integer=True).status == "infeasible"
    assert integer_lower_bound(tight, time_limit=10.0).status == "infeasible"
    assert certified_lower_bound(tight, time_limit=10.0).status == "infeasible"
    assert certified_lower_bound(one_buffer_must_go(1.0, budget=200), time_limit=10.0).status == "no-excess"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), fraction=st.floats(0.4, 0.9), rich=st.booleans())
def test_integer_bound_is_between_the_lp_and_the_optimum(seed: int, fraction: float, rich: bool) -> None:
    """Every valid plan maps to an integer point, so the bound is at most the exact model's
    stall (the optimum where proven); the LP relaxes the integer program, so it is at most it."""
    sp = replace(training_like(seed, layers=5, fraction=fraction, bandwidth=20e9), rich=rich)
    lp, integer = overhead_lower_bound(sp), overhead_lower_bound(sp, integer=True)
    if lp.status != "optimal":
        assert integer.status == lp.status
        return
    exact = solve_exact(sp, time_limit=10.0)
    if integer.status == "infeasible":  # no integer point, where the LP has fractional ones: no plan either
        assert exact.status == "infeasible"
        return
    assert integer.seconds >= lp.seconds - TOLERANCE * sum(sp.step_seconds)
    if exact.schedule is None:  # the exact model may have no plan where the relaxations have points
        assert exact.status == "infeasible"
        return
    report = validate_swaps(sp, exact.schedule)
    assert report.valid, report.errors
    assert integer.seconds <= report.stall + TOLERANCE * sum(sp.step_seconds)
