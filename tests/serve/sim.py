"""A discrete-event simulation of one serving worker driven by the controller (fake clock).

Why: the controller's claims (SLO kept, quality traded only when load needs it, load shed
rather than queued forever) are about behaviour over time; simulating arrivals and true
service times checks them in milliseconds, without HTTP or a model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from graphopt.serve.controller import Controller, ServiceEstimate, VariantState


@dataclass
class Outcome:
    latencies: list[float]  # per admitted request
    qualities: list[float]
    refused: int
    arrivals: int

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


def simulate(variants: dict[str, tuple[float, float, int]], true_service: dict[str, float], arrivals: list[float],
             slo: float, only: str | None = None, noise: float = 0.05, seed: int = 1,
             start_estimate: dict[str, float] | None = None) -> Outcome:
    """variants: name -> (quality, capacity, unused); true_service: name -> seconds per batch (any fill)."""
    rng = np.random.default_rng(seed)
    start_estimate = start_estimate or true_service
    states = [VariantState(n, q, cap, ServiceEstimate(start_estimate[n], 0.0)) for n, (q, cap, _) in variants.items()]
    ctl = Controller(states, slo)
    latencies, qualities, refused, predicted = [], [], 0, {}
    done_at, running, service = float("inf"), None, 0.0
    i = 0
    while i < len(arrivals) or running is not None or ctl.waiting:
        if running is not None and (i >= len(arrivals) or done_at <= arrivals[i]):
            now = done_at
            ctl.finish(running, service, now)
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
                service = true_service[running.variant.name] * float(np.exp(rng.normal(0, noise)))
                done_at = now + service
    return Outcome(latencies, qualities, refused, len(arrivals))
