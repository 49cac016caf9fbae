"""The LP bound with recompute-chain rows (graphopt.plan.swap_bound_chain): exact on a hand-solved
chain, never below the base LP, never above the exact optimum (plain model) or a valid rich
schedule with chains (extends, rebuilds) at its own peak."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graphopt.analysis.cost import LinkModel
from graphopt.passes.swap_exact import solve_exact
from graphopt.passes.swap_rich import rich_recompute_events
from graphopt.passes.swap_rich_greedy import with_recomputes
from graphopt.plan.problem import Buffer, MemoryProblem
from graphopt.plan.swap import Rebuild, Recompute, Swap, SwapProblem, SwapSchedule, compatible, live_bytes
from graphopt.plan.swap_bound import overhead_lower_bound
from graphopt.plan.swap_validator import validate_swaps
from tests.passes.test_swap import training_like

TOLERANCE = 1e-9
STEPS = (5e-3, 2e-3, 1e-3, 3e-3, 1e-3)


def dead_input(recomputable_input: bool = True) -> SwapProblem:
    """A (0, 100 B) is read at step 1 to make B (1, 100 B), then dies; C (2, 200 B) fills steps 2-3,
    so with a 200 B budget B must be away there. The link is slow (1 s a copy): B is recomputed
    before step 4, and its producer reads A, dead there: extending A through step 4 breaks the
    budget at step 2, so A is rebuilt at step 4 (d0) as well: d1 + d0 = 7 ms, not d1 = 2 ms."""
    problem = MemoryProblem((Buffer(0, 0, 2, 100), Buffer(1, 1, 5, 100), Buffer(2, 2, 4, 200)), 5)
    inputs = {1: (0,), **({0: ()} if recomputable_input else {})}
    return SwapProblem(problem, {0: (0, 1), 1: (1, 4), 2: (2, 3)}, STEPS, 200, LinkModel(bandwidth=100.0, latency=0.0),
                       recompute_inputs=inputs, rich=True)


def test_a_dead_input_is_rebuilt_and_the_bound_pays_for_it() -> None:
    sp = dead_input()
    plan = SwapSchedule((), "hand", recomputes=(Recompute(1, 1, 4),), rebuilds=(Rebuild(0, 4),))
    report = validate_swaps(sp, plan)
    assert report.valid, report.errors
    assert abs(report.stall - 7e-3) < 1e-12
    assert abs(overhead_lower_bound(sp).seconds - 7e-3) < TOLERANCE
    assert abs(overhead_lower_bound(sp, chains=False).seconds - 2e-3) < TOLERANCE  # what the base LP said


def test_an_input_that_cannot_be_rebuilt_leaves_the_swap() -> None:
    sp = dead_input(recomputable_input=False)
    swap = SwapSchedule((Swap(1, 1, 2, 4, 4),), "hand")
    report = validate_swaps(sp, swap)
    assert report.valid, report.errors
    bound = overhead_lower_bound(sp).seconds
    assert bound > 7e-3  # no recompute fits: the copies (1 s each) dominate
    assert bound <= report.stall + TOLERANCE


def chained(seed: int, layers: int, bandwidth: float) -> SwapProblem:
    """training_like with every even activation dying right after its reader: recomputing the odd
    one after it at its mirror step needs it extended or rebuilt (a chain)."""
    sp = replace(training_like(seed, layers=layers, bandwidth=bandwidth), rich=True)
    buffers, uses = list(sp.problem.buffers), dict(sp.uses)
    for k in range(0, layers - 1, 2):
        b = buffers[k]
        buffers[k] = Buffer(b.id, b.start, b.start + 2, b.size, b.alignment, b.name)
        uses[k] = (k, k + 1)
    return replace(sp, problem=MemoryProblem(tuple(buffers), sp.problem.num_steps), uses=uses)


def random_chained_schedule(sp: SwapProblem, rng: np.random.Generator) -> SwapSchedule:
    """Random swaps, then random rich recomputes with their chains resolved (extends, rebuilds)."""
    swaps: list = []
    for g in [g for b in sp.problem.buffers for g in sp._idle(b, 2)]:
        if rng.random() < 0.3:
            free = int(rng.integers(g.after + 1, g.before))
            event = Swap(g.buffer, g.after, free, int(rng.integers(free + 1, g.before + 1)), g.before)
            if compatible(sp, swaps, [], event):
                swaps.append(event)
    events = [r for r, _ in rich_recompute_events(sp, list(range(sp.num_steps))) if rng.random() < 0.6]
    return with_recomputes(sp, SwapSchedule(tuple(swaps), "random"), events)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), layers=st.integers(2, 7), bandwidth=st.sampled_from([2e9, 20e9, 200e9]),
       stride=st.integers(1, 3))
def test_chain_bound_never_exceeds_a_random_chained_schedule_at_its_own_peak(seed: int, layers: int,
                                                                            bandwidth: float, stride: int) -> None:
    sp = chained(seed, layers, bandwidth)
    schedule = random_chained_schedule(sp, np.random.default_rng(seed))
    peak = live_bytes(sp, schedule.swaps, schedule.recomputes, schedule.rebuilds, schedule.extends).max()
    sp = replace(sp, budget=int(peak))
    report = validate_swaps(sp, schedule)
    assert report.valid, report.errors
    bound = overhead_lower_bound(sp, stride=stride)
    assert bound.status in ("optimal", "no-excess")
    assert bound.seconds <= report.stall + TOLERANCE
    assert bound.seconds >= overhead_lower_bound(sp, stride=stride, chains=False).seconds - TOLERANCE


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), fraction=st.floats(0.4, 0.9), bandwidth=st.sampled_from([5e9, 50e9]))
def test_chain_bound_is_below_the_exact_optimum_of_the_plain_model(seed: int, fraction: float,
                                                                  bandwidth: float) -> None:
    sp = training_like(seed, layers=4, fraction=fraction, bandwidth=bandwidth)
    exact = solve_exact(sp, time_limit=20.0)
    if exact.schedule is None:
        return
    assert exact.status == "optimal"
    assert validate_swaps(sp, exact.schedule).valid
    assert overhead_lower_bound(sp).seconds <= exact.stall + TOLERANCE
