"""The sampled LP bound (graphopt.plan.swap_bound, `stride` > 1): a relaxation of the full LP, so
never above it, never above the exact optimum (plain model), never above a valid rich schedule at
its own peak, and infeasible only where no plan fits; `sampled_lower_bound` keeps the largest."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graphopt.errors import PlanError
from graphopt.passes.swap_exact import solve_exact
from graphopt.plan.swap import base_live_bytes
from graphopt.plan.swap_bound import overhead_lower_bound, sampled_lower_bound, sampled_steps
from graphopt.plan.swap_validator import validate_swaps
from tests.passes.test_swap import training_like
from tests.plan.test_swap_bound import one_buffer_must_go
from tests.plan.test_swap_rich import random_rich_at_its_peak

TOLERANCE = 1e-12


def test_sampled_steps_keep_the_largest_excess_and_refuse_a_zero_stride() -> None:
    over = [3, 4, 5, 6, 7, 8, 9]
    live = np.zeros(10, dtype=np.int64)
    live[over] = [5, 6, 7, 9, 7, 6, 5]
    assert sampled_steps(over, live, 3) == [3, 6, 9]
    assert sampled_steps(over, live, 4) == [3, 6, 7]  # 6 is where the excess is largest
    assert sampled_steps(over, live, 1) == over
    with pytest.raises(ValueError):
        sampled_steps(over, live, 0)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), fraction=st.floats(0.4, 0.9), stride=st.integers(2, 4))
def test_sampled_bound_is_below_the_full_bound_and_the_exact_optimum(seed: int, fraction: float,
                                                                    stride: int) -> None:
    sp = training_like(seed, layers=5, fraction=fraction, bandwidth=20e9)
    full, sampled = overhead_lower_bound(sp), overhead_lower_bound(sp, stride=stride)
    assert sampled.stride == stride
    assert sampled.seconds <= full.seconds + TOLERANCE
    exact = solve_exact(sp, time_limit=20.0)
    if exact.schedule is None:
        return
    assert exact.status == "optimal"
    assert validate_swaps(sp, exact.schedule).valid
    assert sampled.seconds <= exact.stall + TOLERANCE


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), layers=st.integers(2, 7), stride=st.integers(2, 5),
       bandwidth=st.sampled_from([2e9, 20e9, 200e9]))
def test_sampled_rich_bound_never_exceeds_a_random_rich_schedule_at_its_own_peak(seed: int, layers: int, stride: int,
                                                                                bandwidth: float) -> None:
    sp, report = random_rich_at_its_peak(seed, layers, bandwidth)
    bound = sampled_lower_bound(sp, time_limit=30.0, strides=(stride, 1))
    assert bound.status in ("optimal", "no-excess")
    assert bound.seconds <= report.stall + TOLERANCE
    assert bound.seconds >= overhead_lower_bound(sp, stride=stride).seconds - TOLERANCE  # the largest is kept


def test_sampled_bound_proves_infeasible_budgets_and_needs_time() -> None:
    tight = one_buffer_must_go(1.0, budget=99)  # buffer 1 is in use at step 2: 101 B cannot leave
    assert sampled_lower_bound(tight, time_limit=10.0).status == "infeasible"
    sp = training_like(1, layers=6, fraction=0.5)
    assert base_live_bytes(sp.problem, sp.num_steps).max() > sp.budget
    with pytest.raises(PlanError, match="no bound certified"):
        sampled_lower_bound(sp, time_limit=0.1)
