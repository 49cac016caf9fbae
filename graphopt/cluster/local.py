"""The local executor: jobs in this process (workers=0) or in K local worker processes.

Worker processes are started with `spawn` (a fresh interpreter, never a fork of a
process that has TVM, LLVM or SQLite connections open) and reused across jobs:
a compile holds the GIL in TVM for seconds, so threads would not run two at once.
A worker that dies (killed, crashed) breaks the pool: its job and every queued
one end with one ClusterError; what finished jobs stored stays stored, and the
caller's command resumes from it. Retrying elsewhere is the Ray executor's job.
This module never imports Ray.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable
from concurrent import futures
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from graphopt.cluster.executor import ClusterError, Executor, Job


class LocalExecutor(Executor):
    """`workers` = 0: each job runs when submitted, in this process; K >= 1: a pool of K processes."""

    def __init__(self, workers: int = 0) -> None:
        super().__init__()
        self.workers = max(workers, 1)
        self._pool = None
        if workers > 0:
            context = multiprocessing.get_context("spawn")
            self._pool = futures.ProcessPoolExecutor(max_workers=workers, mp_context=context)

    def _start(self, fn: Callable[..., Any], args: tuple) -> futures.Future:
        if self._pool is not None:
            try:
                return self._pool.submit(fn, *args)
            except BrokenProcessPool:
                raise ClusterError("a local worker process died (finished results are stored; "
                                   "run the command again to resume)") from None
        done: futures.Future = futures.Future()
        try:
            done.set_result(fn(*args))
        except Exception as exc:  # noqa: BLE001  (handed to result(), as a pool would)
            done.set_exception(exc)
        return done

    def wait(self, jobs: Iterable[Job], timeout: float | None = None) -> list[Job]:
        jobs = list(jobs)
        by_future = {j.handle: j for j in jobs}
        finished, _ = futures.wait(by_future, timeout=timeout, return_when=futures.FIRST_COMPLETED)
        return [j for j in jobs if j.handle in finished]

    def result(self, job: Job) -> Any:
        try:
            return job.handle.result()
        except BrokenProcessPool:
            raise ClusterError(f"job {job.name} #{job.number}: a local worker process died "
                               "(finished results are stored; run the command again to resume)") from None
        except futures.CancelledError:
            raise ClusterError(f"job {job.name} #{job.number} was cancelled") from None

    def cancel(self, job: Job) -> None:
        job.handle.cancel()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def abort(self) -> None:
        """Terminates the worker processes (their finished jobs' results are already stored)."""
        if self._pool is not None:
            for process in list((self._pool._processes or {}).values()):
                process.terminate()
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def pids(self) -> list[int]:
        """The worker processes' ids (tests kill one)."""
        return [p.pid for p in (self._pool._processes or {}).values()] if self._pool else []
