"""The rich swap model (boundary copy-ins, extends, chained rebuilds): hand-solved timings, the
validator's new rules, the lowering the program runs, the floor, and the LP bound kept certified."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graphopt.analysis.cost import LinkModel
from graphopt.passes.swap_cpsat import SwapCpSat
from graphopt.passes.swap_singa import InfeasibleBudget
from graphopt.plan.problem import Buffer, MemoryProblem
from graphopt.plan.swap import Extend, Rebuild, Recompute, Swap, SwapProblem, SwapSchedule, compatible, live_bytes
from graphopt.plan.swap_bound import overhead_lower_bound
from graphopt.plan.swap_floor import feasibility_floor
from graphopt.plan.swap_rich import executable, rich_split_problem
from graphopt.plan.swap_validator import validate_swaps
from tests.passes.test_swap import training_like
from tests.plan.test_swap_bound import one_buffer_must_go


def _report(sp: SwapProblem, swaps=(), recomputes=(), rebuilds=(), extends=()):
    return validate_swaps(sp, SwapSchedule(tuple(swaps), "hand", recomputes=tuple(recomputes),
                                           rebuilds=tuple(rebuilds), extends=tuple(extends)))


def test_boundary_copy_in_is_rich_only_and_its_wait_is_the_stall() -> None:
    """Out after step 0 (step 1 waits c for it), in when step 3 ends (step 4 waits c): stall 2c."""
    c = 1e-4
    sp = one_buffer_must_go(c)
    swap = Swap(0, 0, 1, 4, 4)
    assert not _report(sp, [swap]).valid
    report = _report(replace(sp, rich=True), [swap])
    assert report.valid, report.errors
    assert report.stall == pytest.approx(2 * c, rel=1e-9)
    assert live_bytes(sp, [swap]).tolist() == [100, 0, 100, 0, 100]


def test_floor_drops_to_the_working_set_when_a_copy_in_may_end_at_the_boundary() -> None:
    sp = replace(one_buffer_must_go(1e-3, recomputable=False), uses={0: (0, 3), 1: (2,)})
    assert feasibility_floor(sp).bytes == 200  # plain: buffer 0 is needed at step 3, so back during step 2
    rich = feasibility_floor(replace(sp, rich=True))
    assert rich.bytes == 100 and [r.buffer for r in rich.resident] == [0]


def chain() -> SwapProblem:
    """a (0) is read only by b's producer at step 1 and dies; b (1) is used at 1, 2 and 5; c (2),
    300 B, lives at steps 3..4. Rebuilding b at 5 needs a: extended through 5, or rebuilt there."""
    problem = MemoryProblem((Buffer(0, 0, 2, 100), Buffer(1, 1, 6, 100), Buffer(2, 3, 5, 300)), 6)
    uses = {0: (0, 1), 1: (1, 2, 5), 2: (3, 4)}
    seconds = (1e-3, 2e-3, 1e-3, 1e-3, 1e-3, 1e-3)
    return SwapProblem(problem, uses, seconds, 400, LinkModel(bandwidth=1e3, latency=0.0),
                       recompute_inputs={0: (), 1: (0,)}, rich=True)


def test_recompute_reading_a_dead_input_needs_it_extended_or_rebuilt() -> None:
    sp, drop_b = chain(), Recompute(1, 2, 5)
    assert not _report(sp, recomputes=[drop_b]).valid
    extended = _report(sp, recomputes=[drop_b], extends=[Extend(0, 5)])
    assert extended.valid and extended.peak_bytes == 400  # a kept through 3..4 with c: at the budget
    assert not _report(replace(sp, budget=399), recomputes=[drop_b], extends=[Extend(0, 5)]).valid
    rebuilt = _report(sp, recomputes=[drop_b], rebuilds=[Rebuild(0, 5)])
    assert rebuilt.valid and rebuilt.peak_bytes == 300
    assert rebuilt.stall == pytest.approx(2e-3 + 1e-3)  # b's producer (step 1) and a's (step 0) run again
    assert not _report(replace(sp, rich=False), recomputes=[drop_b], rebuilds=[Rebuild(0, 5)]).valid


def test_rebuilds_need_a_dead_buffer_and_resident_inputs() -> None:
    sp = chain()
    assert not _report(sp, rebuilds=[Rebuild(1, 4)]).valid  # b is live at 4
    assert not _report(sp, rebuilds=[Rebuild(0, 5)], extends=[Extend(0, 5)]).valid  # already resident
    assert not _report(sp, extends=[Extend(0, 1)]).valid  # not past its last use
    sp = replace(sp, recompute_inputs={0: (2,), 1: (0,)})  # now a's producer reads c, dead at 5
    assert not _report(sp, recomputes=[Recompute(1, 2, 5)], rebuilds=[Rebuild(0, 5)]).valid


def test_lowering_runs_rebuilds_as_recomputes_on_one_step_segments() -> None:
    sp = chain()
    schedule = SwapSchedule((), "hand", recomputes=(Recompute(1, 2, 5),), rebuilds=(Rebuild(0, 5),))
    assert executable(sp, schedule).recomputes == (Recompute(1, 2, 5), Recompute(0, 1, 5))
    split, origin = rich_split_problem(sp, schedule)
    segments = {origin[b.id]: (b.start, b.end) for b in split.buffers}
    assert segments == {(0, 0): (0, 2), (0, 1): (5, 6), (1, 0): (1, 3), (1, 1): (5, 6), (2, 0): (3, 5)}
    extended = SwapSchedule((), "hand", recomputes=(Recompute(1, 2, 5),), extends=(Extend(0, 5),))
    split, origin = rich_split_problem(sp, extended)
    assert {origin[b.id]: (b.start, b.end) for b in split.buffers}[(0, 0)] == (0, 6)


def test_planner_finds_the_chain_where_the_plain_model_has_no_plan() -> None:
    """Budget 300: c alone at steps 3..4, so b must go (no swap: link too slow to matter, but
    allowed) and a cannot stay; the plain model has no recompute of b (a is dead at 5)."""
    sp = replace(chain(), budget=300, swappable=frozenset({2}))
    schedule = SwapCpSat().plan(sp, time_limit=2.0)
    report = validate_swaps(sp, schedule)
    assert report.valid and schedule.rebuilds == (Rebuild(0, 5),)
    assert overhead_lower_bound(sp).seconds <= report.stall + 1e-12
    assert overhead_lower_bound(replace(sp, rich=False)).status == "infeasible"


def random_rich_schedule(sp: SwapProblem, rng: np.random.Generator) -> SwapSchedule:
    """Random boundary and inner swaps, recomputes, extends and rebuilds the validator accepts."""
    swaps, recomputes = [], []
    for g in [g for b in sp.problem.buffers for g in sp._idle(b, 2)]:
        roll = rng.random()
        if roll < 0.4:
            free = int(rng.integers(g.after + 1, g.before))
            event = Swap(g.buffer, g.after, free, int(rng.integers(free + 1, g.before + 1)), g.before)
        elif roll < 0.7 and g in sp.recompute_gaps():
            event = Recompute(g.buffer, g.after, g.before)
        else:
            continue
        if compatible(sp, swaps, recomputes, event):
            (swaps if isinstance(event, Swap) else recomputes).append(event)
    ends = {b.id: b.end for b in sp.problem.buffers}
    extends = tuple(Extend(b, min(sp.num_steps - 1, ends[b] + int(rng.integers(0, 3))))
                    for b in ends if ends[b] < sp.num_steps and rng.random() < 0.3)
    kept = {e.buffer for e in extends}
    rebuilds = tuple(Rebuild(b, ends[b]) for b in sp.recompute_inputs
                     if b not in kept and ends[b] < sp.num_steps and rng.random() < 0.3)
    schedule = SwapSchedule(tuple(swaps), "random", recomputes=tuple(recomputes), rebuilds=rebuilds, extends=extends)
    return schedule if validate_swaps(replace(sp, budget=1 << 60), schedule).valid else \
        SwapSchedule(tuple(swaps), "random", recomputes=tuple(recomputes), extends=extends)


def random_rich_at_its_peak(seed: int, layers: int, bandwidth: float):
    """(problem budgeted at the schedule's own peak, the validator's report) for a random valid rich schedule:
    any lower bound on that problem must be at most the report's stall."""
    sp = replace(training_like(seed, layers=layers, bandwidth=bandwidth), rich=True)
    schedule = random_rich_schedule(sp, np.random.default_rng(seed))
    peak = live_bytes(sp, schedule.swaps, schedule.recomputes, schedule.rebuilds, schedule.extends).max()
    sp = replace(sp, budget=int(peak))
    report = validate_swaps(sp, schedule)
    assert report.valid, report.errors
    return sp, report


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), layers=st.integers(2, 7), bandwidth=st.sampled_from([2e9, 20e9, 200e9]))
def test_rich_bound_never_exceeds_a_random_rich_schedule_at_its_own_peak(seed: int, layers: int,
                                                                         bandwidth: float) -> None:
    sp, report = random_rich_at_its_peak(seed, layers, bandwidth)
    assert report.peak_bytes >= feasibility_floor(sp).bytes
    bound = overhead_lower_bound(sp)
    assert bound.status in ("optimal", "no-excess")
    assert bound.seconds <= report.stall + 1e-12


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), fraction=st.floats(0.3, 0.9))
def test_rich_planner_is_valid_and_above_the_rich_bound(seed: int, fraction: float) -> None:
    sp = replace(training_like(seed, fraction=fraction), rich=True)
    bound = overhead_lower_bound(sp)
    try:
        schedule = SwapCpSat().plan(sp, time_limit=0.5)
    except InfeasibleBudget:
        return
    report = validate_swaps(sp, schedule)
    assert report.valid, report.errors
    assert bound.seconds <= report.stall + 1e-12


def test_exact_model_solves_the_rich_model_to_a_chained_rebuild() -> None:
    """At 300 B, b must go over steps 3..4: a swap takes 0.2 s on this link, extending a breaks the
    budget at step 3, so the optimum rebuilds a at 5 and recomputes b from it (both producers: 3 ms).
    The plain model cannot: its swap is back by step 4 (a copy-in ends before the step that uses it)."""
    from graphopt.passes.swap_exact import solve_exact

    sp = replace(chain(), budget=300)
    rich = solve_exact(sp, time_limit=10.0)
    assert rich.status == "optimal"
    assert rich.schedule.recomputes == (Recompute(1, 2, 5),) and rich.schedule.rebuilds == (Rebuild(0, 5),)
    assert validate_swaps(sp, rich.schedule).valid
    assert rich.stall == pytest.approx(3e-3) and rich.bound == pytest.approx(3e-3, rel=1e-4)
    plain = solve_exact(replace(sp, rich=False), time_limit=10.0)
    assert plain.status == "infeasible"