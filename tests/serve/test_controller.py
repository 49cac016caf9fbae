"""Controller decisions with a fake clock: quality when idle, cheaper variants and batching
under load, refusal (503) past capacity, learning service times online."""

from __future__ import annotations

import math

import numpy as np
import pytest

from graphopt.serve.controller import Controller, ServiceEstimate, VariantState
from tests.serve.sim import simulate, swinging_arrivals

SLO = 0.150
VARIANTS = {"small": (0.90, 8, 0), "mid": (0.95, 8, 0), "big": (0.98, 8, 0)}
SERVICE = {"small": 0.002, "mid": 0.010, "big": 0.040}


def _controller(service=SERVICE, slo=SLO, capacity=8, **kw) -> Controller:
    states = [VariantState(n, q, capacity, ServiceEstimate(service[n], 0.0)) for n, (q, _, _) in VARIANTS.items()]
    return Controller(states, slo, **kw)


def test_idle_server_serves_the_best_variant() -> None:
    ctl = _controller()
    decision = ctl.admit("r0", 1, now=0.0)
    assert decision.batch.variant.name == "big"
    assert decision.predicted_s == pytest.approx(0.040)


def test_backlog_moves_requests_to_cheaper_variants_then_refuses() -> None:
    """Requests that cannot join a batch queue behind it; as the predicted wait grows the
    controller steps down in quality, and refuses once even the cheapest would miss the SLO."""
    ctl = _controller(capacity=1, headroom=0.9)  # no batching: every request is its own batch
    chosen = []
    for k in range(40):
        decision = ctl.admit(f"r{k}", 1, now=0.0)
        chosen.append(decision.batch.variant.name if decision.batch else None)
        if decision.batch is not None:
            assert decision.predicted_s <= SLO
    # 3 x 40 ms fit in 0.9 x 150 ms, then one 10 ms mid, then 2 ms smalls up to the SLO itself
    assert chosen[:4] == ["big", "big", "big", "mid"] and chosen[4:12] == ["small"] * 8
    names = [c for c in chosen if c is not None]
    quality = [VARIANTS[n][0] for n in names]
    assert quality == sorted(quality, reverse=True)  # quality only steps down as the backlog grows
    assert chosen[-1] is None
    refusal = ctl.admit("late", 1, now=0.0)
    assert refusal.batch is None and "overloaded" in refusal.reason


def test_requests_join_a_waiting_batch_until_it_is_full() -> None:
    ctl = _controller(capacity=4)
    ctl.admit("a", 1, now=0.0)
    running = ctl.start_next(now=0.0)
    assert running.variant.name == "big" and running.requests == ["a"]
    batches = {id(ctl.admit(f"r{k}", 1, now=0.001).batch) for k in range(4)}
    assert len(batches) == 1 and ctl.waiting[0].rows == 4  # four rows share one padded run
    fifth = ctl.admit("r4", 1, now=0.001)
    assert fifth.batch is not ctl.waiting[0]
    assert ctl.admit("big", 5, now=0.001).batch is None  # more rows than any capacity


def test_pinned_variant_is_used_or_refused() -> None:
    ctl = _controller(capacity=1)
    assert ctl.admit("a", 1, now=0.0, only="small").batch.variant.name == "small"
    for k in range(3):
        assert ctl.admit(f"b{k}", 1, now=0.0, only="big").batch is not None
    assert ctl.admit("c", 1, now=0.0, only="big").batch is None  # 4 x 40 ms + 2 ms > 150 ms


def test_withdraw_and_queue_limit() -> None:
    ctl = _controller(capacity=8, max_waiting_rows=3)
    first = ctl.admit("a", 2, now=0.0)
    assert ctl.admit("b", 2, now=0.0).reason.startswith("queue full")
    ctl.withdraw(first.batch, "a", 2)
    assert not ctl.waiting and ctl.waiting_rows() == 0


def test_withdraw_matches_requests_by_identity() -> None:
    """Requests holding arrays (elementwise ==) leave their batch without a comparison error."""
    ctl = _controller(capacity=8)
    first, second = np.zeros((2, 3)), np.zeros((2, 3))
    batch = ctl.admit(first, 2, now=0.0).batch
    assert ctl.admit(second, 2, now=0.0).batch is batch
    ctl.withdraw(batch, second, 2)
    assert batch.requests == [first] and batch.rows == 2
    ctl.withdraw(batch, second, 2)  # twice: no effect
    ctl.withdraw(batch, first, 2)
    assert not ctl.waiting


def test_finish_learns_slower_service_times_and_forgets_stale_spikes() -> None:
    """Start-up said 10 ms; the machine got busier and batches take 30 ms: predictions follow.
    A variant left unobserved drifts back to its start-up figure (so a spike cannot price it out for good)."""
    ctl = _controller(service={"small": 0.002, "mid": 0.010, "big": 0.010})
    now = 0.0
    for _ in range(30):
        ctl.admit(now, 1, now=now)
        batch = ctl.start_next(now=now)
        now += 0.030
        ctl.finish(batch, 0.030, now)
    big = ctl.variants["big"].estimate
    assert big.predicted(now) == pytest.approx(0.030, rel=0.05)
    assert big.predicted(now + 2.0) == pytest.approx(0.010 + 0.020 * math.exp(-2.0 / big.forget_s), rel=0.05)
    assert big.predicted(now + 60.0) == pytest.approx(0.010, rel=0.01)
    with pytest.raises(ValueError):
        ctl.finish(batch, 0.030, now)


def test_swinging_load_keeps_the_slo_with_more_quality_than_any_fixed_variant() -> None:
    """5x swing in offered load: the fixed best variant sheds load at the peak, the fixed
    cheaper ones keep the SLO at lower quality; the controller keeps it at higher quality,
    even when the start-up measurement was 4x too optimistic."""
    arrivals = swinging_arrivals(low=60, high=300, period=10, duration=20)
    adaptive = simulate(VARIANTS, SERVICE, arrivals, SLO)
    misled = simulate(VARIANTS, SERVICE, arrivals, SLO, start_estimate={n: s / 4 for n, s in SERVICE.items()})
    fixed = {n: simulate(VARIANTS, SERVICE, arrivals, SLO, only=n) for n in VARIANTS}
    assert fixed["big"].attainment(SLO) < 0.95 and fixed["big"].refused > 0
    meeting = [o.mean_quality() for o in fixed.values() if o.attainment(SLO) >= 0.99]
    for run in (adaptive, misled):
        assert run.attainment(SLO) >= 0.99
        assert run.mean_quality() > max(meeting)
    assert all(lat <= SLO for lat in adaptive.latencies)


def test_prediction_errors_and_time_already_spent_shrink_the_target() -> None:
    """Served requests that ran 60 ms over their prediction (noise the estimates miss) make the
    controller keep 60 ms more slack; so does time a request already spent reading its body."""
    ctl = _controller(capacity=1)
    assert ctl.target_s() == pytest.approx(0.8 * SLO)
    for _ in range(50):
        ctl.record(predicted_s=0.040, actual_s=0.100)
    assert ctl.target_s() == pytest.approx(SLO - 0.060)
    assert ctl.admit("a", 1, now=0.0).batch.variant.name == "big"  # 40 ms <= 90 ms
    assert ctl.admit("b", 1, now=0.0).batch.variant.name == "big"  # 80 ms <= 90 ms
    assert ctl.admit("c", 1, now=0.0).batch.variant.name == "mid"  # 120 ms would not fit
    late = ctl.admit("d", 1, now=0.0, spent=0.2)
    assert late.batch is None and late.predicted_s > SLO  # 200 ms spent + queue: refused
