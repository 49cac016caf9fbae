"""The LP lower bound on swap + recompute overhead: exact on hand-solved cases, never above a valid plan."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graphopt.analysis.cost import LinkModel
from graphopt.passes.recompute_greedy import RecomputeGreedy
from graphopt.passes.swap_capuchin import Capuchin
from graphopt.passes.swap_cpsat import SwapCpSat
from graphopt.passes.swap_singa import InfeasibleBudget, Singa
from graphopt.plan.problem import Buffer, MemoryProblem
from graphopt.plan.swap import Recompute, Swap, SwapProblem, SwapSchedule, compatible, live_bytes
from graphopt.plan.swap_bound import overhead_lower_bound
from graphopt.plan.swap_validator import validate_swaps
from tests.passes.test_swap import training_like, valid_reports

STEPS = (5e-3, 2e-3, 1e-3, 3e-3, 1e-3)  # d0 is the producer of buffer 0: its recompute cost


def one_buffer_must_go(copy_seconds: float, recomputable: bool = True, budget: int = 100) -> SwapProblem:
    """Buffer 0 (100 B) idle over steps 1..3; buffer 1 (100 B) lives at step 2 only: with a
    100 B budget all of buffer 0 is away at step 2, by swap (out after step 0, back by step 4)
    or by recompute (step 0's kernel again before step 4)."""
    problem = MemoryProblem((Buffer(0, 0, 5, 100), Buffer(1, 2, 3, 100)), 5)
    link = LinkModel(bandwidth=100 / copy_seconds, latency=0.0)
    inputs = {0: ()} if recomputable else {}
    return SwapProblem(problem, {0: (0, 4), 1: (2,)}, STEPS, budget, link, recompute_inputs=inputs)


def stall(sp: SwapProblem, swaps=(), recomputes=()) -> float:
    report = validate_swaps(sp, SwapSchedule(tuple(swaps), "hand", recomputes=tuple(recomputes)))
    assert report.valid, report.errors
    return report.stall


def test_slow_link_bound_is_the_recompute_kernel_less_the_sliver_that_hides() -> None:
    """Recompute costs d0. The LP may also swap the fraction d1 / c of the buffer (its copy-out
    hides behind step 1, its copy-in behind step 3 >= d1) for free: bound d0 (1 - d1 / c)."""
    c = 1.0
    sp = one_buffer_must_go(copy_seconds=c)
    bound = overhead_lower_bound(sp)
    assert bound.status == "optimal"
    assert bound.seconds == pytest.approx(STEPS[0] * (1 - STEPS[1] / c), rel=1e-6)
    assert bound.seconds <= stall(sp, recomputes=[Recompute(0, 0, 4)]) == pytest.approx(STEPS[0])


def test_swap_bound_is_both_copies_minus_the_steps_they_hide_behind() -> None:
    """Copy-out hides behind step 1 only, copy-in behind step 3 only: stall 2c - d1 - d3."""
    c = 3e-3
    for sp in (one_buffer_must_go(c, recomputable=False), one_buffer_must_go(c)):  # recompute (5 ms) loses
        expected = 2 * c - STEPS[1] - STEPS[3]
        assert overhead_lower_bound(sp).seconds == pytest.approx(expected, rel=1e-6)
        assert stall(sp, swaps=[Swap(0, 0, 2, 3, 4)]) == pytest.approx(expected, rel=1e-6)


def test_copies_that_hide_cost_nothing() -> None:
    assert overhead_lower_bound(one_buffer_must_go(copy_seconds=1e-4)).seconds == pytest.approx(0.0, abs=1e-12)


def test_half_the_excess_lets_the_lp_send_half_a_buffer() -> None:
    """A relaxation: with 50 B to free, half of buffer 0 away (the free sliver d1 / c included)
    costs half the recompute: d0 (1/2 - d1 / c), where any real plan pays d0."""
    c = 1.0
    bound = overhead_lower_bound(one_buffer_must_go(copy_seconds=c, budget=150))
    assert bound.seconds == pytest.approx(STEPS[0] * (0.5 - STEPS[1] / c), rel=1e-6)


def test_no_excess_and_no_plan() -> None:
    assert overhead_lower_bound(one_buffer_must_go(1.0, budget=200)).status == "no-excess"
    tight = one_buffer_must_go(1.0, budget=99)  # buffer 1 is in use at step 2: 101 B cannot leave
    assert overhead_lower_bound(tight).status == "infeasible"
    assert overhead_lower_bound(tight).seconds == float("inf")
    with pytest.raises(InfeasibleBudget):
        SwapCpSat().plan(tight, time_limit=1.0)


def random_valid_schedule(sp: SwapProblem, rng: np.random.Generator) -> SwapSchedule:
    """Random swaps and recomputes the validator accepts: random timings, random gaps."""
    swaps, recomputes = [], []
    for g in sp.gaps() + sp.recompute_gaps():
        if rng.random() < 0.5:
            continue
        if g.before - g.after >= 3 and rng.random() < 0.6 and (not sp.swappable or g.buffer in sp.swappable):
            free = int(rng.integers(g.after + 1, g.before - 1))
            event = Swap(g.buffer, g.after, free, int(rng.integers(free + 1, g.before)), g.before)
        elif g.buffer in sp.recompute_inputs and g in sp.recompute_gaps():
            event = Recompute(g.buffer, g.after, g.before)
        else:
            continue
        if compatible(sp, swaps, recomputes, event):
            (swaps if isinstance(event, Swap) else recomputes).append(event)
    return SwapSchedule(tuple(swaps), "random", recomputes=tuple(recomputes))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), layers=st.integers(2, 7), bandwidth=st.sampled_from([2e9, 20e9, 200e9]))
def test_bound_never_exceeds_a_random_valid_schedule_at_its_own_peak(seed: int, layers: int, bandwidth: float) -> None:
    """Any valid schedule fits the budget equal to its own peak, so the bound there is at most its stall."""
    sp = training_like(seed, layers=layers, bandwidth=bandwidth)
    schedule = random_valid_schedule(sp, np.random.default_rng(seed))
    sp = replace(sp, budget=int(live_bytes(sp, schedule.swaps, schedule.recomputes).max()))
    report = validate_swaps(sp, schedule)
    assert report.valid, report.errors
    bound = overhead_lower_bound(sp)
    assert bound.status in ("optimal", "no-excess")
    assert bound.seconds <= report.stall + 1e-12


PLANNERS = [Singa("doa", "no_overhead"), Singa("wdoa", "stick_to_limit"), Capuchin(), RecomputeGreedy(), SwapCpSat()]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), fraction=st.floats(0.3, 1.0), bandwidth=st.sampled_from([5e9, 50e9]))
def test_bound_never_exceeds_a_planner_and_is_inf_only_when_none_fits(seed: int, fraction: float,
                                                                      bandwidth: float) -> None:
    sp = training_like(seed, fraction=fraction, bandwidth=bandwidth)
    bound = overhead_lower_bound(sp)
    for planner, report in valid_reports(sp, PLANNERS, time_limit=0.5):
        assert bound.seconds <= report.stall + 1e-12, planner.name
