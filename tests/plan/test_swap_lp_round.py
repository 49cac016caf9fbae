"""LP rounding (passes/swap_lp_round.py): every schedule it returns is valid, fits, never beats the
LP bound, matches the exact optimum where the LP is tight, and is the same on a rerun."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graphopt.passes.swap_exact import solve_exact
from graphopt.passes.swap_lp_round import SwapLpRound, lp_round_schedules, rounded
from graphopt.passes.swap_singa import InfeasibleBudget
from graphopt.plan.swap import Recompute, Swap, SwapSchedule
from graphopt.plan.swap_bound import overhead_lower_bound
from graphopt.plan.swap_lp_assemble import assemble, fits, pruned
from graphopt.plan.swap_lp_solution import solve_relaxation
from graphopt.plan.swap_validator import validate_swaps
from tests.passes.test_swap import training_like
from tests.plan.test_swap_bound import one_buffer_must_go
from tests.plan.test_swap_exact import rounding

TOLERANCE = 1e-9  # seconds: the LP solver's tolerance on steps of tens of microseconds


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), layers=st.integers(3, 6), fraction=st.floats(0.4, 0.95),
       bandwidth=st.sampled_from([5e9, 50e9]), rich=st.booleans())
def test_every_schedule_is_valid_fits_and_is_never_below_the_bound(seed: int, layers: int, fraction: float,
                                                                   bandwidth: float, rich: bool) -> None:
    sp = replace(training_like(seed, layers=layers, fraction=fraction, bandwidth=bandwidth), rich=rich)
    bound = overhead_lower_bound(sp)
    for schedule, report in lp_round_schedules(sp, time_limit=2.0):
        again = validate_swaps(sp, schedule)
        assert again.valid, again.errors
        assert again.peak_bytes <= sp.budget
        assert again.stall == pytest.approx(report.stall)
        assert again.stall >= bound.seconds - TOLERANCE


@pytest.mark.parametrize("copy_seconds, recomputable", [(3e-3, False), (3e-3, True), (1e-4, True)])
def test_where_the_lp_is_tight_rounding_finds_the_exact_optimum(copy_seconds: float, recomputable: bool) -> None:
    """One buffer must go (tests/plan/test_swap_bound.py): the LP's optimum is a whole swap, or a
    copy that hides; the bound equals the exact model's optimum there, and so must the rounding."""
    sp = one_buffer_must_go(copy_seconds, recomputable)
    bound, exact = overhead_lower_bound(sp), solve_exact(sp, time_limit=5.0)
    assert exact.stall <= bound.seconds + rounding(sp)  # the case is tight: rounding has nothing to lose
    schedule = SwapLpRound().plan(sp, time_limit=2.0)
    report = validate_swaps(sp, schedule)
    assert report.valid, report.errors
    assert report.stall == pytest.approx(exact.stall, abs=rounding(sp))


def test_tight_random_steps_match_exact() -> None:
    """Small training-like steps where the LP bound meets the exact optimum: rounding meets it too."""
    checked = 0
    for seed, fraction in [(348, 0.92), (6736, 0.81), (690, 0.83), (3628, 0.9), (2731, 0.63), (4245, 0.83)]:
        sp = training_like(seed, layers=4, fraction=fraction, bandwidth=50e9)
        exact, bound = solve_exact(sp, time_limit=5.0), overhead_lower_bound(sp)
        if exact.schedule is None or exact.stall > bound.seconds + rounding(sp):
            continue
        checked += 1
        found = lp_round_schedules(sp, time_limit=2.0)
        assert found and found[0][1].stall <= exact.stall + rounding(sp)
    assert checked >= 2


def test_rerun_gives_the_same_schedules() -> None:
    sp = replace(training_like(11, layers=6, fraction=0.55), rich=True)
    first = [s for s, _ in lp_round_schedules(sp, time_limit=5.0)]
    second = [s for s, _ in lp_round_schedules(sp, time_limit=5.0)]
    assert first and first == second


def test_no_excess_gives_the_empty_schedule_and_no_fit_says_infeasible() -> None:
    roomy = training_like(5, fraction=1.0)
    assert SwapLpRound().plan(roomy, time_limit=1.0).swaps == ()
    with pytest.raises(InfeasibleBudget):
        SwapLpRound().plan(replace(roomy, budget=0), time_limit=1.0)


def test_rounding_reads_the_lp_and_keeps_its_whole_decisions() -> None:
    """Where the LP recomputes a buffer outright (y = 1), the rounded schedule recomputes it."""
    sp = one_buffer_must_go(copy_seconds=1.0)  # a slow link: recompute wins
    solution = solve_relaxation(sp, time_limit=2.0)
    assert solution is not None and max(solution.recompute.values()) > 0.5
    schedule = rounded(sp, solution, 0.5)
    assert schedule.recomputes == (Recompute(0, 0, 4),) and fits(sp, schedule)


def test_assemble_leaves_out_clashes_and_pruning_drops_what_frees_nothing() -> None:
    sp = training_like(2, layers=4, fraction=1.0)
    reader = Recompute(1, sp.uses[1][1], sp.uses[1][2])  # reads buffer 0 at buffer 1's mirror step
    away = Swap(0, 1, 2, sp.uses[0][-1] - 1, sp.uses[0][-1])  # buffer 0 away across that step
    schedule, dropped = assemble(sp, [reader], [away], lambda i, t: False, "hand")
    assert dropped == 1 and schedule.swaps == () and schedule.recomputes == (reader,)
    assert pruned(sp, schedule).recomputes == ()  # the budget is the peak: nothing needs to go
    assert validate_swaps(sp, schedule).valid and validate_swaps(sp, SwapSchedule((away,), "hand")).valid


class _Refuses:
    """A search that finds nothing (both of ours' searches, below their reach)."""

    def plan(self, sp, time_limit: float, starts=()):
        raise InfeasibleBudget("the search found nothing")


def test_compile_search_asks_the_rounding_only_where_both_searches_find_nothing(monkeypatch) -> None:
    """graphopt.train.swapping.model_schedules: the LP rounding is a candidate where the plain and
    rich searches both refuse (the case where it fits, at a floor), and is not run otherwise."""
    from graphopt.passes import swap_registry
    from graphopt.passes.swap_cpsat import SwapCpSat
    from graphopt.train.swapping import model_schedules

    sp = replace(training_like(7, layers=4, fraction=0.7, bandwidth=50e9), rich=True)
    (schedule,) = model_schedules(sp, _Refuses(), "ours", time_limit=2.0)
    assert validate_swaps(sp, schedule).valid
    calls = []
    real = swap_registry.get_swap_planner
    monkeypatch.setattr(swap_registry, "get_swap_planner", lambda name: calls.append(name) or real(name))
    found = model_schedules(sp, SwapCpSat(), "ours", time_limit=2.0)
    assert found and all(validate_swaps(sp, s).valid for s in found) and calls == []
    monkeypatch.setattr(swap_registry, "get_swap_planner", lambda name: _Refuses())
    with pytest.raises(InfeasibleBudget, match="the search found nothing"):
        model_schedules(sp, _Refuses(), "ours", time_limit=2.0)
