"""The serving controller: which variant serves a request, which requests run together, who is refused.

Pure logic, no HTTP and no clock of its own (every call takes `now`), so tests drive it
with a fake clock and synthetic service times.

Model of the server: ONE worker runs batches in FIFO order (on a CPU, two models running
at once only slow each other down). A batch holds requests of one variant, at most the
variant's capacity in rows. Two kinds of variant:

  * fixed batch: the artifact's batch dimension is fixed, so a batch costs the same however
    full it is (padding), and joining a waiting batch is free;
  * variable batch (a range artifact, batch axis LO..HI): a batch runs at the size actually
    queued (or the smallest configured bucket that holds it), so its cost grows with its
    rows: service(v, rows) comes from a per-size table (graphopt.serve.service_times).

The worker never waits on purpose: when it is free it takes the oldest batch as it is, so a
lone request at low load runs alone at once, and under load requests queue while a batch
runs and the next batch takes every row that queued meanwhile (up to the capacity).

Per request (`admit`), for every variant v the controller predicts the completion time:

    joining the first waiting batch B of v that has room (and whose growth harms no one):
        now + remaining(running) + service(batches ahead of B) + service(v, B.rows + rows)
    else a new batch at the tail:
        now + remaining(running) + service(all waiting batches) + service(v, rows)

and picks the highest-quality variant whose prediction is within the target of now (ties:
the earliest completion). The target is `headroom * slo`, lowered further by the 99th
percentile of recent prediction errors (actual - predicted latency of served requests):
on a noisy machine the controller keeps the slack the noise needs. If none is, the fastest variant is still taken when its
prediction meets the SLO itself; otherwise the request is refused (the HTTP layer answers
503): shedding load keeps the latency of admitted requests bounded instead of letting a
queue grow without end. Joining a variable batch makes it, and every batch behind it, end
later: a join is taken only when every request already in those batches is still predicted
within its SLO (else the request starts a new batch at the tail). So a later decision never
pushes an earlier request past its SLO.

Service times are learnt online: an EWMA of each variant's (each run size's) observed batch
time and of its absolute deviation (TCP's RTT estimator); the prediction is mean + `spread` *
deviation, seeded by the start-up measurement, and relaxing back to it while unobserved (see
ServiceEstimate). The machine may be shared, so the start-up figure alone would go stale.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from graphopt.serve.service_times import ServiceEstimate, ServiceTable


@dataclass
class VariantState:
    """A variant as the controller sees it. `table` is set for a variable-batch variant (a batch
    is priced by its size); `estimate` is then the table's largest size, the full batch."""

    name: str
    quality: float
    capacity: int  # rows one run can hold (the artifact's batch dimension, capped by --max-batch)
    estimate: ServiceEstimate
    table: ServiceTable | None = None

    def service_s(self, rows: int, now: float) -> float:
        """Predicted time of one batch of `rows` rows (a fixed batch: the same for any fill)."""
        return self.table.predicted(rows, now) if self.table else self.estimate.predicted(now)

    def observe(self, rows: int, seconds: float, now: float) -> None:
        if self.table:
            self.table.observe(rows, seconds, now)
        else:
            self.estimate.observe(seconds, now)


@dataclass(eq=False)
class Batch:
    variant: VariantState
    requests: list[Any] = field(default_factory=list)
    rows: int = 0
    deadline: float = float("inf")  # the earliest SLO deadline of its requests (absolute)


@dataclass(frozen=True)
class Decision:
    """Where a request went: `batch` is None when it was refused (`reason` says why)."""

    batch: Batch | None
    predicted_s: float  # predicted latency from now to completion
    reason: str = ""


@dataclass
class _Running:
    batch: Batch
    started: float
    predicted_s: float


class Controller:
    """Admission, variant choice and batching; see the module docstring."""

    def __init__(self, variants: list[VariantState], slo_s: float, headroom: float = 0.8,
                 max_waiting_rows: int = 4096, error_window: int = 256) -> None:
        if not variants:
            raise ValueError("a controller needs at least one variant")
        self.variants = {v.name: v for v in variants}
        self.slo_s = slo_s
        self.headroom = headroom
        self.max_waiting_rows = max_waiting_rows
        self.waiting: deque[Batch] = deque()
        self.running: _Running | None = None
        self.errors: deque[float] = deque(maxlen=error_window)  # actual - predicted latency, recent requests
        self._margin = 0.0

    # --- predictions -----------------------------------------------------------------
    def _remaining(self, now: float) -> float:
        """Time until the running batch ends; an overrunning batch is assumed a tenth from done."""
        if self.running is None:
            return 0.0
        left = self.running.started + self.running.predicted_s - now
        return max(left, 0.1 * self.running.predicted_s)

    def _option(self, variant: VariantState, rows: int, now: float) -> tuple[float, Batch | None]:
        """(predicted latency, the waiting batch to join or None for a new one)."""
        ends = self._ends(now)
        slack = self._slack_behind(ends, now)
        for k, batch in enumerate(self.waiting):
            if batch.variant is variant and batch.rows + rows <= variant.capacity:
                own = variant.service_s(batch.rows, now)
                grown = variant.service_s(batch.rows + rows, now)
                if grown - own <= max(slack[k], 0.0):  # the growth pushes no one past the SLO
                    return ends[k] - own + grown, batch
        tail = ends[-1] if ends else self._remaining(now)
        return tail + variant.service_s(rows, now), None

    def _ends(self, now: float) -> list[float]:
        """Predicted end of each waiting batch, in seconds from now."""
        ends, t = [], self._remaining(now)
        for batch in self.waiting:
            t += batch.variant.service_s(batch.rows, now)
            ends.append(t)
        return ends

    def _slack_behind(self, ends: list[float], now: float) -> list[float]:
        """slack[k]: how much later batch k and every batch behind it may end and still meet
        their requests' SLO deadlines (the least over them; may be negative)."""
        slack, least = [0.0] * len(ends), float("inf")
        for k in range(len(ends) - 1, -1, -1):
            least = min(least, self.waiting[k].deadline - now - ends[k])
            slack[k] = least
        return slack

    def record(self, predicted_s: float, actual_s: float) -> None:
        """A served request's predicted vs actual latency; keeps the 99th percentile of the errors."""
        self.errors.append(actual_s - predicted_s)
        if len(self.errors) >= 20:
            ranked = sorted(self.errors)
            self._margin = max(ranked[min(len(ranked) - 1, int(0.99 * len(ranked)))], 0.0)

    def target_s(self) -> float:
        """Latency a quality choice must fit in: `headroom` of the SLO, less the recent p99
        prediction error (noise the estimates miss), but never below a quarter of the SLO."""
        return max(min(self.headroom * self.slo_s, self.slo_s - self._margin), 0.25 * self.slo_s)

    def waiting_rows(self) -> int:
        return sum(b.rows for b in self.waiting)

    # --- decisions -------------------------------------------------------------------
    def admit(self, request: Any, rows: int, now: float, only: str | None = None, spent: float = 0.0) -> Decision:
        """Places `request` (`rows` rows) in a batch, or refuses it; `only` pins one variant.

        `spent`: seconds the request already spent in the server before admission (reading
        its body); predicted latencies include it.
        """
        if self.waiting_rows() + rows > self.max_waiting_rows:
            return Decision(None, float("inf"), f"queue full ({self.max_waiting_rows} rows waiting)")
        pool = [self.variants[only]] if only is not None else list(self.variants.values())
        options = [(v, spent + wait, join) for v in pool if rows <= v.capacity
                   for wait, join in [self._option(v, rows, now)]]
        if not options:
            return Decision(None, float("inf"), f"{rows} rows exceed every variant's batch capacity")
        target = self.target_s()
        meeting = [o for o in options if o[1] <= target]
        if meeting:
            variant, latency, join = max(meeting, key=lambda o: (o[0].quality, -o[1]))
        else:
            variant, latency, join = min(options, key=lambda o: o[1])
            if latency > self.slo_s:
                return Decision(None, latency, f"overloaded: predicted {latency * 1e3:.0f} ms > SLO "
                                               f"{self.slo_s * 1e3:.0f} ms for every variant")
        if join is None:
            join = Batch(variant)
            self.waiting.append(join)
        join.requests.append(request)
        join.rows += rows
        join.deadline = min(join.deadline, now - spent + self.slo_s)
        return Decision(join, latency)

    def withdraw(self, batch: Batch, request: Any, rows: int) -> None:
        """A request that gave up before its batch started leaves it (an empty batch is dropped).

        Matches by identity: requests are opaque to the controller (they may hold arrays,
        whose == is elementwise).
        """
        if not any(b is batch for b in self.waiting):
            return
        kept = [r for r in batch.requests if r is not request]
        if len(kept) == len(batch.requests):
            return
        batch.requests[:] = kept
        batch.rows -= rows
        if not kept:
            self.waiting = deque(b for b in self.waiting if b is not batch)

    def start_next(self, now: float) -> Batch | None:
        """The worker takes the oldest batch; None when nothing waits or one is still running."""
        if self.running is not None or not self.waiting:
            return None
        batch = self.waiting.popleft()
        self.running = _Running(batch, now, batch.variant.service_s(batch.rows, now))
        return batch

    def finish(self, batch: Batch, seconds: float, now: float) -> None:
        """The running batch ended after `seconds` of service: learn from it, free the worker."""
        if self.running is None or self.running.batch is not batch:
            raise ValueError("finish() for a batch that is not running")
        batch.variant.observe(batch.rows, seconds, now)
        self.running = None
