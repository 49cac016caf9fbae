"""The recompute-first construction (passes/swap_rich_first.py): every schedule it returns is valid
under the rich model and within the budget, and where a recompute needs a dead input it is the
chain (rebuild or extend) the validator accepts."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graphopt.passes.swap_rich_first import recompute_first_schedules
from graphopt.passes.swap_rich_greedy import recompute_chains
from graphopt.plan.swap import Recompute
from graphopt.plan.swap_validator import validate_swaps
from tests.passes.test_swap import training_like
from tests.plan.test_swap_rich import chain


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), fraction=st.floats(0.3, 0.9), bandwidth=st.sampled_from([2e9, 50e9]))
def test_every_schedule_is_valid_and_fits(seed: int, fraction: float, bandwidth: float) -> None:
    sp = replace(training_like(seed, fraction=fraction, bandwidth=bandwidth), rich=True)
    for schedule in recompute_first_schedules(sp, time_limit=1.0):
        report = validate_swaps(sp, schedule)
        assert report.valid, (schedule.planner, report.errors)
        assert report.peak_bytes <= sp.budget


def test_a_dead_input_is_rebuilt_in_the_chain_and_the_schedule_is_valid() -> None:
    """chain(): b's producer reads a, dead at step 5; recomputing b there rebuilds a (1 ms + 2 ms)."""
    sp = replace(chain(), budget=300)
    (seconds, rebuilds, extends), = recompute_chains(sp, [Recompute(1, 2, 5)])
    assert rebuilds == {(0, 5)} and not extends
    assert seconds == sp.recompute_seconds(1) + sp.recompute_seconds(0)
    schedules = recompute_first_schedules(sp, time_limit=1.0)
    assert schedules
    for schedule in schedules:
        assert validate_swaps(sp, schedule).valid
