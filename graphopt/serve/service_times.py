"""Online service-time estimates: one per fixed-batch variant, a table per run size for a variable one.

A fixed-batch artifact costs the same however full its batch is (padding), so one estimate
per variant is the whole truth. A range artifact (`--input-shape x=1..32x...`) runs a batch of
the size actually queued, and its time grows with that size, so the controller needs one
estimate per size a batch may run at (`ServiceTable`): a lone request must not be priced
like a full batch, or the controller would refuse or down-grade it for no reason.

Both learn the same way (ServiceEstimate): an EWMA of the observed times and of their absolute
deviation (TCP's RTT estimator), prediction = mean + spread * deviation, relaxing back to the
start-up measurement while unobserved (the machine may be shared: a slow spike must not price
a size out for good, since a size never chosen is never observed again).
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field


@dataclass
class ServiceEstimate:
    """Online batch-time estimate of one variant, or of one run size of a variable one (seconds).

    EWMA of the observed times and of their absolute deviation; the prediction is
    mean + spread * deviation. Evidence goes stale: between observations both relax
    back toward the start-up measurement with time constant `forget_s`. Without that, one
    slow spike (another job on the machine) would price a variant out for good, since a
    variant that is never chosen is never observed again.
    """

    mean: float
    deviation: float
    alpha: float = 0.2
    spread: float = 2.0
    forget_s: float = 5.0
    observations: int = 0
    last_seen: float | None = None
    prior: tuple[float, float] = field(init=False)

    def __post_init__(self) -> None:
        self.prior = (self.mean, self.deviation)

    def observe(self, seconds: float, now: float) -> None:
        self.mean, self.deviation = self._current(now)
        error = seconds - self.mean
        self.mean += self.alpha * error
        self.deviation += self.alpha * (abs(error) - self.deviation)
        self.observations += 1
        self.last_seen = now

    def _current(self, now: float) -> tuple[float, float]:
        if self.last_seen is None:
            return self.mean, self.deviation
        keep = math.exp(-max(now - self.last_seen, 0.0) / self.forget_s)
        (m0, d0) = self.prior
        return m0 + (self.mean - m0) * keep, d0 + (self.deviation - d0) * keep

    def predicted(self, now: float) -> float:
        mean, deviation = self._current(now)
        return mean + self.spread * deviation


def interpolate(sizes: list[int], measured: dict[int, tuple[float, float]]) -> dict[int, tuple[float, float]]:
    """(median, deviation) at every size, linear between the measured (probe) sizes.

    Why linear: past a fixed per-call overhead a CPU batch costs about its rows times a
    per-row cost; the probes (smallest, largest, powers of two between) bound the error,
    and the online estimates correct it for the sizes that actually run.
    """
    known = sorted(measured)
    if not known:
        raise ValueError("interpolate needs at least one measured size")
    out = {}
    for size in sizes:
        k = bisect.bisect_left(known, size)
        if k < len(known) and known[k] == size:
            out[size] = measured[size]
        elif k == 0 or k == len(known):  # outside the probes: the nearest one
            out[size] = measured[known[min(k, len(known) - 1)]]
        else:
            lo, hi = known[k - 1], known[k]
            w = (size - lo) / (hi - lo)
            (m0, d0), (m1, d1) = measured[lo], measured[hi]
            out[size] = (m0 + w * (m1 - m0), d0 + w * (d1 - d0))
    return out


class ServiceTable:
    """Per-run-size estimates of a variable-batch variant: a batch of `rows` rows runs at
    `run_size(rows)` (the rows themselves, or the smallest configured bucket that holds them)
    and is priced by that size's own estimate."""

    def __init__(self, sizes: list[int], measured: dict[int, tuple[float, float]], **estimate_kw) -> None:
        if not sizes or sorted(set(sizes)) != list(sizes):
            raise ValueError(f"run sizes must be distinct and ascending, got {sizes}")
        self.sizes = list(sizes)
        seeds = interpolate(self.sizes, measured)
        self.entries = {s: ServiceEstimate(*seeds[s], **estimate_kw) for s in self.sizes}

    def run_size(self, rows: int) -> int:
        """The size a batch of `rows` rows runs at; ValueError past the largest."""
        k = bisect.bisect_left(self.sizes, rows)
        if k == len(self.sizes):
            raise ValueError(f"{rows} rows exceed the largest run size {self.sizes[-1]}")
        return self.sizes[k]

    @property
    def largest(self) -> ServiceEstimate:
        """The full batch's estimate (what a fixed artifact would always pay)."""
        return self.entries[self.sizes[-1]]

    def predicted(self, rows: int, now: float) -> float:
        return self.entries[self.run_size(rows)].predicted(now)

    def observe(self, rows: int, seconds: float, now: float) -> None:
        self.entries[self.run_size(rows)].observe(seconds, now)

    def observed(self) -> dict[int, int]:
        """Run size -> batches observed at it (the sizes that have run so far)."""
        return {s: e.observations for s, e in self.entries.items() if e.observations}
