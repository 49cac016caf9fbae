"""Swap and recompute planners on random training-like instances, judged by the one swap validator."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graphopt.analysis.cost import LinkModel
from graphopt.passes.recompute_greedy import RecomputeGreedy
from graphopt.passes.swap_capuchin import Capuchin
from graphopt.passes.swap_cpsat import SwapCpSat
from graphopt.passes.swap_singa import MODES, RANKINGS, InfeasibleBudget, Singa
from graphopt.plan.problem import Buffer, MemoryProblem
from graphopt.plan.swap import Recompute, Swap, SwapProblem, SwapSchedule, live_bytes, simulate, split_problem
from graphopt.plan.swap_validator import validate_swaps


def training_like(seed: int, layers: int = 6, fraction: float = 0.7, bandwidth: float = 50e9) -> SwapProblem:
    """Forward activations used again, mirrored, in the backward pass: the shape of a step."""
    rng = np.random.default_rng(seed)
    n = 2 * layers + 1
    buffers, uses = [], {}
    for k in range(layers):  # activation k: written at k, read at k+1 and at the mirror step
        size = int(rng.integers(1, 64)) * 1024 * 64
        back = n - 1 - k
        buffers.append(Buffer(k, k, back + 1, size))
        uses[k] = (k, k + 1, back)
    for j in range(layers):  # short-lived gradient temporaries in the backward pass
        bid = layers + j
        start = layers + j
        buffers.append(Buffer(bid, start, start + 2, int(rng.integers(1, 16)) * 1024 * 64))
        uses[bid] = (start, start + 1)
    problem = MemoryProblem(tuple(buffers), n)
    seconds = tuple(float(s) for s in rng.uniform(20e-6, 200e-6, size=n))
    peak = int(live_bytes(SwapProblem(problem, uses, seconds, 1 << 60), ()).max())
    # activation k is made from activation k - 1 (k = 0 from the weights only), which
    # is still live at k's mirror step: every activation can be recomputed there
    inputs = {k: ((k - 1,) if k else ()) for k in range(layers)}
    return SwapProblem(problem, uses, seconds, int(peak * fraction), LinkModel(bandwidth=bandwidth),
                       recompute_inputs=inputs)


PLANNERS = [Singa(r, m) for r in RANKINGS for m in MODES] + [Capuchin(), RecomputeGreedy(), SwapCpSat()]


def valid_reports(sp: SwapProblem, planners: list, time_limit: float):
    """(planner, validator report) for each planner that finds a schedule (the others
    say InfeasibleBudget); every report must be valid."""
    for planner in planners:
        try:
            schedule = planner.plan(sp, time_limit=time_limit)
        except InfeasibleBudget:
            continue
        report = validate_swaps(sp, schedule)
        assert report.valid, (planner.name, report.errors)
        yield planner, report


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), fraction=st.floats(0.5, 1.0))
def test_every_planner_is_valid_or_says_infeasible(seed: int, fraction: float) -> None:
    sp = training_like(seed, fraction=fraction)
    stalls = {}
    for planner, report in valid_reports(sp, PLANNERS, time_limit=1.0):
        assert report.peak_bytes <= sp.budget
        stalls[planner.name] = report.stall
    if "ours" in stalls:
        assert stalls["ours"] <= min(stalls.values()) + 1e-12


def test_split_lifetimes_free_the_gap() -> None:
    sp = training_like(0, fraction=1.0)
    swap = Swap(0, 1, 3, 8, sp.uses[0][-1])
    split, origin = split_problem(sp, [swap])
    segments = sorted((b.start, b.end) for b in split.buffers if origin[b.id][0] == 0)
    assert segments == [(0, 3), (8, sp.problem.buffers[0].end)]


def test_validator_catches_a_late_copy_and_a_use_inside_the_gap() -> None:
    sp = training_like(1, fraction=1.0, bandwidth=1e6)  # a copy takes far longer than any step
    slow = SwapSchedule((Swap(0, 1, 2, 3, sp.uses[0][-1]),), "test")
    report = validate_swaps(sp, slow)
    assert report.valid and report.stall > 0  # a stall is legal: the step waits
    inside = SwapSchedule((Swap(0, 0, 2, 3, sp.uses[0][-1]),), "test")  # step 1 uses buffer 0
    assert not validate_swaps(sp, inside).valid


def test_budget_below_what_any_swap_can_reach_is_infeasible() -> None:
    sp = training_like(2, fraction=0.05)
    with pytest.raises(InfeasibleBudget):
        SwapCpSat().plan(sp, time_limit=1.0)


def test_simulator_without_swaps_has_no_stall() -> None:
    sp = training_like(3)
    timeline = simulate(sp, ())
    assert timeline.stall == pytest.approx(0.0)
    assert timeline.total == pytest.approx(sum(sp.step_seconds))


def test_recompute_frees_its_gap_and_costs_its_producer() -> None:
    sp = training_like(4, fraction=1.0)
    back = sp.uses[2][-1]
    recompute = Recompute(2, 3, back)  # activation 2: used at 2, 3 and its mirror step
    report = validate_swaps(sp, SwapSchedule((), "test", recomputes=(recompute,)))
    assert report.valid, report.errors
    assert report.stall == pytest.approx(sp.step_seconds[2])  # its producer runs again
    assert live_bytes(sp, (), (recompute,))[back - 1] == live_bytes(sp, ())[back - 1] - sp.sizes()[2]
    split, origin = split_problem(sp, (), (recompute,))
    assert sorted((b.start, b.end) for b in split.buffers if origin[b.id][0] == 2) == [(2, 4), (back, back + 1)]


def test_validator_rejects_a_recompute_whose_input_is_away() -> None:
    sp = training_like(5, fraction=1.0)
    back2 = sp.uses[2][-1]
    recompute = Recompute(2, 3, back2)  # reads activation 1, which must be resident at back2
    away = Swap(1, 2, 3, back2, sp.uses[1][-1])  # activation 1 may still be coming back at back2
    report = validate_swaps(sp, SwapSchedule((away,), "test", recomputes=(recompute,)))
    assert not report.valid and any("input buffer 1 is away" in e for e in report.errors)
    gradient = len(sp.recompute_inputs)  # a gradient temporary: not recomputable
    bad = Recompute(gradient, sp.problem.buffers[gradient].start, sp.problem.buffers[gradient].start + 2)
    assert not validate_swaps(sp, SwapSchedule((), "test", recomputes=(bad,))).valid


def test_ours_uses_recomputation_when_copies_cannot_hide() -> None:
    """With a link far too slow for any copy to hide, recomputing is the cheap way down."""
    sp = training_like(6, fraction=0.85, bandwidth=1e6)
    schedule = SwapCpSat().plan(sp, time_limit=2.0)
    report = validate_swaps(sp, schedule)
    assert report.valid and schedule.recomputes
    assert report.stall <= validate_swaps(sp, RecomputeGreedy().plan(sp)).stall + 1e-12


def test_ours_finds_the_cheapest_recompute_set_where_greedy_does_not() -> None:
    """120 B budget, 100 B over it at steps 3-4. B (100 B, made at 0 in 2 ms), A (60 B, at 1 in
    1 ms), C (15 B, at 2 in 1.2 ms) can be rebuilt before their uses at 6, 5, 7. Greedy by bytes
    per second takes A, then B (3 ms); B alone (2 ms) is enough. Copies are hopeless (1 B/s)."""
    spans = {0: (1, 6, 60), 1: (0, 7, 100), 2: (2, 8, 15), 3: (3, 5, 45)}  # id: (start, end, bytes)
    buffers = tuple(Buffer(k, start, end, size) for k, (start, end, size) in spans.items())
    uses = {0: (1, 5), 1: (0, 6), 2: (2, 7), 3: (3, 4)}
    seconds = (2e-3, 1e-3, 1.2e-3, 1e-5, 1e-5, 1e-5, 1e-5, 1e-5)
    sp = SwapProblem(MemoryProblem(buffers, 8), uses, seconds, 120, LinkModel(bandwidth=1.0),
                     recompute_inputs={0: (), 1: (), 2: ()})
    greedy = validate_swaps(sp, RecomputeGreedy().plan(sp))
    ours_schedule = SwapCpSat().plan(sp, time_limit=2.0)
    ours = validate_swaps(sp, ours_schedule)
    assert greedy.valid and greedy.stall == pytest.approx(3e-3)
    assert ours.valid and ours.stall == pytest.approx(2e-3)
    assert [r.buffer for r in ours_schedule.recomputes] == [1] and not ours_schedule.swaps


def test_no_stall_free_swap_schedule_goes_below_the_hidden_swap_floor() -> None:
    """The floor is a necessary condition: swap-only schedules under it must stall."""
    from graphopt.plan.swap import hidden_swap_floor

    sp = training_like(7, fraction=1.0, bandwidth=2e9)
    floor = hidden_swap_floor(sp)
    peak = int(live_bytes(sp, ()).max())
    assert 0 < floor <= peak
    below = SwapProblem(sp.problem, sp.uses, sp.step_seconds, floor - 1, sp.link)  # no recomputation
    for planner in [Singa(r, m) for r in RANKINGS for m in MODES] + [SwapCpSat()]:
        try:
            report = validate_swaps(below, planner.plan(below, time_limit=1.0))
        except InfeasibleBudget:
            continue
        assert report.valid and report.stall > 0, planner.name
