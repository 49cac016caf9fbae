"""Variable-batch variants in the controller (fake clock): a batch is priced by its size, the
per-size table learns from the sizes that run, a join never pushes earlier requests past the
SLO, and under a swinging load lone requests run alone while bursts share a batch."""

from __future__ import annotations

import numpy as np
import pytest

from graphopt.serve.controller import Controller, ServiceEstimate, VariantState
from graphopt.serve.service_times import ServiceTable, interpolate
from graphopt.serve.variants import probe_sizes, run_sizes
from tests.serve.sim import simulate, swinging_arrivals


def per_rows(rows: int) -> float:
    """A CPU batch: 1 ms of overhead + 0.5 ms per row (a full batch of 32: 17 ms)."""
    return 0.001 + 0.0005 * rows


def _variable(capacity: int = 32, probes: tuple[int, ...] = (1, 32)) -> VariantState:
    table = ServiceTable(list(range(1, capacity + 1)), {n: (per_rows(n), 0.0) for n in probes})
    return VariantState("var", 1.0, capacity, table.largest, table)


def test_interpolation_between_probes_and_run_sizes() -> None:
    seeded = interpolate([1, 2, 3, 4, 8], {2: (0.002, 0.0), 4: (0.004, 0.0)})
    assert seeded[1] == (0.002, 0.0) and seeded[3] == pytest.approx((0.003, 0.0)) and seeded[8] == (0.004, 0.0)
    assert run_sizes((1, 32), 32, None) == list(range(1, 33))
    assert run_sizes((1, 32), 12, (1, 4, 16, 32)) == [1, 4, 12]  # buckets past the cap give way to the cap
    assert run_sizes((4, 32), 2, None) == [4]  # below the range's minimum: padded to it
    assert probe_sizes(list(range(1, 33))) == [1, 2, 4, 8, 16, 32]
    assert probe_sizes([1, 4, 12]) == [1, 4, 12]
    table = ServiceTable([1, 4, 12], {1: (0.001, 0.0), 12: (0.012, 0.0)})
    assert [table.run_size(r) for r in (1, 2, 4, 5, 12)] == [1, 4, 4, 12, 12]
    with pytest.raises(ValueError):
        table.run_size(13)


def test_a_lone_request_is_priced_at_its_own_size_not_the_full_batch() -> None:
    ctl = Controller([_variable()], slo_s=0.050)
    lone = ctl.admit("a", 1, now=0.0)
    assert lone.predicted_s == pytest.approx(per_rows(1))
    joined = ctl.admit("b", 3, now=0.0)  # joins the waiting batch: it grows to 4 rows
    assert joined.batch is lone.batch and joined.predicted_s == pytest.approx(per_rows(4))


def test_the_table_fills_with_the_sizes_that_run_and_learns_each_apart() -> None:
    """Start-up probed 1 and 32 only; batches of 1, 3 and 8 rows that take twice the prediction
    teach those sizes (and no others)."""
    var = _variable()
    ctl = Controller([var], slo_s=1.0)
    now = 0.0
    for rows in [1, 3, 8] * 40:
        ctl.admit(now, rows, now=now)
        batch = ctl.start_next(now)
        now += 2 * per_rows(rows)
        ctl.finish(batch, 2 * per_rows(rows), now)
    assert var.table.observed() == {1: 40, 3: 40, 8: 40}
    for rows in (1, 3, 8):
        assert var.table.entries[rows].predicted(now) == pytest.approx(2 * per_rows(rows), rel=0.05)
    assert var.table.entries[16].predicted(now) == pytest.approx(per_rows(16))  # interpolated, unobserved


def test_a_join_that_would_push_earlier_requests_past_the_slo_starts_a_new_batch() -> None:
    """A batch whose requests have 0.5 ms of slack left does not grow by 5 ms for a newcomer."""
    ctl = Controller([_variable()], slo_s=0.010)
    first = ctl.admit("old", 8, now=0.0, spent=0.0045)  # 4.5 ms spent + 5 ms of service: 0.5 ms left
    assert first.batch is not None and first.predicted_s == pytest.approx(0.0045 + per_rows(8))
    newcomer = ctl.admit("new", 10, now=0.0)
    assert newcomer.batch is not first.batch and first.batch.rows == 8
    assert newcomer.predicted_s == pytest.approx(per_rows(8) + per_rows(10))


def test_fixed_batches_still_join_for_free() -> None:
    fixed = VariantState("b32", 1.0, 32, ServiceEstimate(per_rows(32), 0.0))
    ctl = Controller([fixed], slo_s=0.050)
    first = ctl.admit("a", 1, now=0.0)
    second = ctl.admit("b", 5, now=0.0)
    assert second.batch is first.batch and second.predicted_s == pytest.approx(per_rows(32))


def test_swinging_load_lone_requests_run_alone_and_bursts_share_batches() -> None:
    """The same arrivals served by a variable batch 1..32 and a fixed batch of 32: both keep the
    SLO; the variable one answers a request at low load in its own (cheap) batch, and batches
    grow with the load; its table learns the sizes that ran even from a 3x optimistic start."""
    slo = 0.050
    arrivals = swinging_arrivals(low=20, high=1500, period=10, duration=20)
    variants = {"var": (1.0, 32, 0)}
    variable = simulate(variants, {"var": per_rows}, arrivals, slo)
    misled = simulate(variants, {"var": per_rows}, arrivals, slo, start_estimate={"var": lambda n: per_rows(n) / 3})
    fixed = simulate(variants, {"var": per_rows(32)}, arrivals, slo)
    for run in (variable, misled, fixed):
        assert run.attainment(slo) >= 0.99
    early = [lat for lat, at in zip(variable.latencies, sorted(arrivals)) if at < 0.5]
    assert np.median(early) < 2 * per_rows(1) < per_rows(32) / 5
    assert variable.batch_rows[0] == 1 and max(variable.batch_rows) > 4
