"""A discrete-event simulation of one serving worker driven by the controller (fake clock).

Why: the controller's claims (SLO kept, quality traded only when load needs it, load shed
rather than queued forever) are about behaviour over time; simulating arrivals and true
service times checks them in milliseconds, without HTTP or a model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from graphopt.serve.controller import Controller, ServiceEstimate, VariantState
from graphopt.serve.service_times import ServiceTable

Service = float | Callable[[int], float]  # seconds per batch: any fill (fixed batch), or by its rows (variable)


@dataclass
class Outcome:
    latencies: list[float]  # per admitted request
    qualities: list[float]
    refused: int
    arrivals: int
    batch_rows: list[int] = field(default_factory=list)  # rows of every batch run, in order

    def attainment(self, slo: float) -> float:
        met = sum(lat <= slo for lat in self.latencies)
        return met / self.arrivals

    def mean_quality(self) -> float:
        return float(np.mean(self.qualities)) if self.qualities else 0.0


def swinging_arrivals(low: float, high: float, period: float, duration: float, seed: int = 0) -> list[float]:
    """Poisson arrivals whose rate goes low -> high -> low (a raised cosine), by thinning."""
    rng = np.random.default_rng(seed)
    times, t = [], 0.0
    while True:
        t += rng.exponential(1.0 / high)
        if t >= duration:
            return times
        rate = low + (high - low) * 0.5 * (1 - np.cos(2 * np.pi * t / period))
        if rng.random() < rate / high:
            times.append(t)


def _state(name: str, quality: float, capacity: int, estimate: Service) -> VariantState:
    """A fixed variant for a float estimate; a variable one (a table over 1..capacity, probed
    at 1 and capacity only, like a cold start) for a function of the rows."""
    if not callable(estimate):
        return VariantState(name, quality, capacity, ServiceEstimate(estimate, 0.0))
    table = ServiceTable(list(range(1, capacity + 1)), {n: (estimate(n), 0.0) for n in (1, capacity)})
    return VariantState(name, quality, capacity, table.largest, table)


def _seconds(service: Service, rows: int) -> float:
    return service(rows) if callable(service) else service


def simulate(variants: dict[str, tuple[float, float, int]], true_service: dict[str, Service], arrivals: list[float],
             slo: float, only: str | None = None, noise: float = 0.05, seed: int = 1,
             start_estimate: dict[str, Service] | None = None) -> Outcome:
    """variants: name -> (quality, capacity, unused); true_service: name -> seconds per batch (a float:
    any fill, a fixed-batch variant; a function of the batch's rows: a variable-batch variant)."""
    rng = np.random.default_rng(seed)
    start_estimate = start_estimate or true_service
    states = [_state(n, q, cap, start_estimate[n]) for n, (q, cap, _) in variants.items()]
    ctl = Controller(states, slo)
    latencies, qualities, refused, predicted, batch_rows = [], [], 0, {}, []
    done_at, running, service = float("inf"), None, 0.0
    i = 0
    while i < len(arrivals) or running is not None or ctl.waiting:
        if running is not None and (i >= len(arrivals) or done_at <= arrivals[i]):
            now = done_at
            ctl.finish(running, service, now)
            batch_rows.append(running.rows)
            for arrived in running.requests:
                ctl.record(predicted[arrived], now - arrived)
                latencies.append(now - arrived)
                qualities.append(running.variant.quality)
            running = None
        else:
            now = arrivals[i]
            decision = ctl.admit(now, 1, now, only)
            if decision.batch is None:
                refused += 1
            predicted[now] = decision.predicted_s
            i += 1
        if running is None:
            running = ctl.start_next(now)
            if running is not None:
                seconds = _seconds(true_service[running.variant.name], running.rows)
                service = seconds * float(np.exp(rng.normal(0, noise)))
                done_at = now + service
    return Outcome(latencies, qualities, refused, len(arrivals), batch_rows)
