"""benchmarks.serve --range's figures from synthetic requests: lone p50, SLO attainment, batch sizes."""

from __future__ import annotations

import pytest

from benchmarks.serve_load import Sent
from benchmarks.serve_report import range_summary


def _sent(latency: float, status: int = 200, server: float = 0.001) -> Sent:
    return Sent(0.0, latency, status, "var", 1.0, 1 if status == 200 else 0, 1, server)


def test_range_summary_pools_rounds_and_counts_batch_sizes() -> None:
    runs = {"var": [[_sent(0.010), _sent(0.500)], [_sent(0.020), _sent(0.030, 503)]]}
    lones = {"var": [[_sent(0.003), _sent(0.005)], [_sent(0.004)]]}
    out = range_summary(runs, lones, {"var": {1: 3, 4: 1}}, slo=0.3, duration=10.0)["var"]
    assert out["slo_attainment"] == pytest.approx(2 / 4)  # the late answer and the 503 both miss
    assert out["lone_p50_ms"] == pytest.approx(4.0) and out["lone_ok"] == 3
    assert out["batch_sizes"] == {1: 3, 4: 1} and out["mean_batch_size"] == pytest.approx(7 / 4)
    assert out["lone_agreement"] == 1.0
