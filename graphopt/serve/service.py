"""The running service: variants + controller + one worker, on an asyncio loop.

Requests wait on futures; the worker task takes the controller's next batch (the requests
queued for one variant, up to its capacity in rows: a variable-batch variant runs at that size),
stacks their rows along the batch axis, runs it on one executor thread (TVM releases the GIL,
so the loop keeps accepting requests while a batch runs), feeds the measured time back to the
controller, splits the outputs back per request and resolves the futures.
Every wait is bounded (`timeout_s`): a request never hangs, it gets a result or a 503.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from graphopt.serve.controller import Batch, Controller, VariantState
from graphopt.serve.metrics import Metrics
from graphopt.serve.service_times import ServiceEstimate, ServiceTable
from graphopt.serve.variants import Variant, sample_shape_of


class Refused(Exception):
    """The controller refused the request, or its wait ran out: the HTTP layer answers 503."""


@dataclass(eq=False)
class Pending:
    rows: np.ndarray
    future: asyncio.Future
    admitted: float = field(default_factory=time.perf_counter)  # when the request was received
    predicted_s: float = 0.0


@dataclass(frozen=True)
class Served:
    variant: str
    quality: float
    outputs: dict[str, np.ndarray]
    latency_s: float


class Service:
    def __init__(self, variants: list[Variant], slo_s: float, headroom: float = 0.8,
                 timeout_s: float | None = None) -> None:
        self.variants = {v.name: v for v in variants}
        self.sample_shape = sample_shape_of(variants)
        self.dtype = variants[0].dtype
        self.max_rows = max(v.capacity for v in variants)
        self.slo_s = slo_s
        self.timeout_s = timeout_s if timeout_s is not None else max(4 * slo_s, 2.0)
        # start-up (median, deviation) per run size probed; `startup`: the full batch's, as before
        self.probes: dict[str, dict[int, tuple[float, float]]] = {v.name: v.measure_sizes() for v in variants}
        self.startup = {v.name: self.probes[v.name][max(self.probes[v.name])] for v in variants}
        states = [self._state(v) for v in variants]
        self.controller = Controller(states, slo_s, headroom, max_waiting_rows=64 * self.max_rows)
        self.metrics = Metrics(slo_s)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="graphopt-serve")
        self._wake: asyncio.Event | None = None
        self._worker: asyncio.Task | None = None

    def _state(self, v: Variant) -> VariantState:
        """The controller's view of `v`: one estimate (fixed batch) or a table per run size."""
        if not v.variable:
            return VariantState(v.name, v.quality, v.capacity, ServiceEstimate(*self.startup[v.name]))
        table = ServiceTable(v.run_sizes, self.probes[v.name])
        return VariantState(v.name, v.quality, v.capacity, table.largest, table)

    # --- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        self._wake = asyncio.Event()
        self._worker = asyncio.create_task(self._work())

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        self._executor.shutdown(wait=True)

    # --- requests --------------------------------------------------------------------
    async def infer(self, rows: np.ndarray, only: str | None = None, received: float | None = None) -> Served:
        """Serves `rows` [N, *sample_shape]; raises Refused on overload or timeout.

        `received` (perf_counter) is when the request reached the server: time spent reading
        and parsing the body counts against the SLO too.
        """
        if self._wake is None:
            raise RuntimeError("Service.start() was not awaited")
        now = time.perf_counter()
        received = now if received is None else received
        pending = Pending(rows, asyncio.get_running_loop().create_future(), received)
        decision = self.controller.admit(pending, len(rows), now, only, spent=now - received)
        if decision.batch is None:
            raise Refused(decision.reason)
        pending.predicted_s = decision.predicted_s
        self._wake.set()
        try:
            return await asyncio.wait_for(asyncio.shield(pending.future), self.timeout_s)
        except TimeoutError:
            self.controller.withdraw(decision.batch, pending, len(rows))
            raise Refused(f"timed out after {self.timeout_s:g} s") from None

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = self.controller.start_next(time.perf_counter())
            if batch is None:
                self._wake.clear()
                await self._wake.wait()
                continue
            began = time.perf_counter()
            try:
                outputs, _ = await loop.run_in_executor(self._executor, self._run, batch)
            except Exception as exc:  # noqa: BLE001  (a failing batch fails its requests, never the worker)
                ended = time.perf_counter()
                self.controller.finish(batch, ended - began, ended)
                for p in batch.requests:
                    if not p.future.done():
                        p.future.set_exception(exc)
                continue
            ended = time.perf_counter()
            self.controller.finish(batch, ended - began, ended)
            self._deliver(batch, outputs, ended)

    def _run(self, batch: Batch):
        rows = np.concatenate([p.rows for p in batch.requests])
        return self.variants[batch.variant.name].run(rows)

    def _deliver(self, batch: Batch, outputs: dict[str, np.ndarray], now: float) -> None:
        variant = batch.variant
        self.metrics.batch(variant.name, batch.rows, self.variants[variant.name].run_size(batch.rows))
        start = 0
        for p in batch.requests:
            end = start + len(p.rows)
            self.controller.record(p.predicted_s, now - p.admitted)
            if not p.future.done():
                p.future.set_result(Served(variant.name, variant.quality,
                                           {k: v[start:end] for k, v in outputs.items()}, now - p.admitted))
            start = end

    def service_estimates(self) -> dict[str, float]:
        """Predicted time of a full batch per variant."""
        now = time.perf_counter()
        return {name: v.estimate.predicted(now) for name, v in self.controller.variants.items()}

    def size_estimates(self) -> dict[tuple[str, int], float]:
        """Predicted batch time per (variable variant, run size that has run): the learnt table."""
        now = time.perf_counter()
        return {(name, size): v.table.entries[size].predicted(now) for name, v in self.controller.variants.items()
                if v.table for size in v.table.observed()}
