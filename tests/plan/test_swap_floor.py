"""The feasibility floor of the swap model: where the overhead LP turns infeasible, never beaten
by a valid schedule, reached where the hand-solved case says, and explained at its binding step."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graphopt.plan.swap import Recompute, SwapSchedule, live_bytes
from graphopt.plan.swap_bound import overhead_lower_bound
from graphopt.plan.swap_floor import feasibility_floor, step_working_set
from graphopt.plan.swap_validator import validate_swaps
from tests.passes.test_swap import training_like
from tests.plan.test_swap_bound import one_buffer_must_go, random_valid_schedule


def test_hand_solved_floor_and_its_resident_tensors() -> None:
    """Buffer 0 can be away on steps 1..3 (swap 1..2, recompute 1..3): every step then holds
    100 B at most, and step 0, where buffer 0 is written, is the first to bind."""
    floor = feasibility_floor(one_buffer_must_go(1e-3))
    assert (floor.bytes, floor.step, floor.live_bytes) == (100, 0, 100)
    assert [(r.buffer, r.reason) for r in floor.resident] == [(0, "used at this step")]


def test_resident_reasons_name_the_use() -> None:
    sp = one_buffer_must_go(1e-3, recomputable=False)
    sp = replace(sp, uses={0: (0, 3), 1: (2,)})  # buffer 0 used at step 3: step 2 is the one before its use
    floor = feasibility_floor(sp)
    assert floor.bytes == 200 and floor.step == 2
    reasons = {r.buffer: r.reason for r in floor.resident}
    assert reasons[1] == "used at this step"
    assert reasons[0].startswith("used at the next step")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), layers=st.integers(2, 6))
def test_floor_is_where_the_lp_turns_infeasible_and_no_schedule_beats_it(seed: int, layers: int) -> None:
    sp = training_like(seed, layers=layers)
    floor = feasibility_floor(sp)
    peak = int(live_bytes(sp, ()).max())
    if floor.bytes < peak:  # the LP without chain rows asks for the floor's bytes and no more
        assert overhead_lower_bound(replace(sp, budget=floor.bytes), chains=False).status != "infeasible"
    below = floor.bytes - max(1024, floor.bytes // 1000)  # the LP counts MiB: a byte is inside its tolerance
    if below > 0:
        assert overhead_lower_bound(replace(sp, budget=below), chains=False).status == "infeasible"
        assert overhead_lower_bound(replace(sp, budget=below)).status == "infeasible"  # chain rows only add
    schedule = random_valid_schedule(sp, np.random.default_rng(seed))
    assert live_bytes(sp, schedule.swaps, schedule.recomputes).max() >= floor.bytes


def test_the_chain_lp_is_infeasible_at_a_floor_no_schedule_reaches() -> None:
    """training_like(696, 3): at the floor buffer 1 must be recomputed before step 5 with its input,
    buffer 0, partly away there; the LP without chain rows accepts that fraction, the chain rows
    do not, and brute force agrees that no schedule fits."""
    from tests.plan.test_swap_exact import brute_force

    sp = training_like(696, layers=3)
    at_floor = replace(sp, budget=feasibility_floor(sp).bytes)
    assert overhead_lower_bound(at_floor, chains=False).status == "optimal"
    assert overhead_lower_bound(at_floor).status == "infeasible"
    assert brute_force(at_floor) == float("inf")


def test_a_valid_schedule_reaches_the_hand_solved_floor() -> None:
    sp = one_buffer_must_go(1e-3)
    floor = feasibility_floor(sp)
    schedule = SwapSchedule((), "recompute", recomputes=(Recompute(0, 0, 4),))
    assert int(live_bytes(sp, (), schedule.recomputes).max()) == floor.bytes
    assert validate_swaps(replace(sp, budget=floor.bytes), schedule).valid


def test_working_set_counts_each_step_s_operands_and_never_exceeds_the_floor() -> None:
    """Buffer 0 is used at steps 0 and 4, buffer 1 at step 2: those steps touch 100 B, the others none.
    No gap covers a use, so the floor is at least every step's working set."""
    sp = one_buffer_must_go(1e-3)
    assert step_working_set(sp).tolist() == [100, 0, 100, 0, 100]
    for seed in range(20):
        sp = training_like(seed, layers=5)
        assert feasibility_floor(sp).bytes >= int(step_working_set(sp).max())
