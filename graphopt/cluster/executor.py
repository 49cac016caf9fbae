"""The executor seam: submit a job, wait for some to finish, take a result, cancel.

Why one interface: option tuning, kernel tuning and merge evaluation all have the
same shape (many independent compile/measure/evaluate jobs whose results are
stored as they finish), and each should run the same code in this process, in
local worker processes or on a Ray cluster. The callers never import Ray; only
`open_executor` knows the implementations, and it imports Ray only when asked.

    --cluster (absent)           LocalExecutor: in process (workers=0) or K local processes
    --cluster ray                a Ray cluster started here with K worker processes
    --cluster ray://HOST:PORT    a running Ray cluster (Ray client); K jobs in flight
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from graphopt.errors import GraphoptError

_ADDRESS = re.compile(r"^ray://(?P<host>[A-Za-z0-9.\-]+|\[[0-9A-Fa-f:]+\]):(?P<port>\d{1,5})$")


class ClusterError(GraphoptError):
    """A bad --cluster value, Ray missing or unreachable, or a job lost for good."""


@dataclass(frozen=True)
class Job:
    """A submitted job: a number (submission order), a name for messages, the implementation's handle."""

    number: int
    name: str
    handle: Any = field(compare=False, repr=False)


class Executor(ABC):
    """Runs jobs somewhere; `workers` is how many run at once (what callers keep in flight)."""

    workers: int = 1

    def __init__(self) -> None:
        self._submitted = 0

    def submit(self, fn: Callable[..., Any], *args: Any, name: str = "") -> Job:
        """Starts (or queues) `fn(*args)`; `fn` must be a module-level function."""
        self._submitted += 1
        return Job(self._submitted, name or fn.__name__, self._start(fn, args))

    @abstractmethod
    def _start(self, fn: Callable[..., Any], args: tuple) -> Any:
        """The implementation's handle of a started job."""

    @abstractmethod
    def wait(self, jobs: Iterable[Job], timeout: float | None = None) -> list[Job]:
        """The jobs among `jobs` that have finished (at least one unless `timeout` passed first)."""

    @abstractmethod
    def result(self, job: Job) -> Any:
        """The job's return value; its own exception re-raised (a GraphoptError stays one), or
        ClusterError when the job was lost (its worker died and no retry was left)."""

    @abstractmethod
    def cancel(self, job: Job) -> None:
        """Stops a job that has not finished (a queued one never starts)."""

    def close(self) -> None:
        """Releases the workers this executor started (never a cluster it only joined)."""

    def __enter__(self) -> Executor:
        return self

    def abort(self) -> None:
        """Stops every job at once (Ctrl-C, an error in the caller); by default the same as close."""
        self.close()

    def __exit__(self, exc_type: object, *_exc: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def in_flight(self, fn: Callable[..., Any], argument_lists: Iterable[tuple],
                  timeout: float | None = None) -> Iterator[tuple[int, Job | None]]:
        """Submits `fn(*args)` for each argument list, never more than `workers` at once; yields
        (index, finished job) as jobs finish, and (-1, None) after each `timeout` without one
        (a caller's chance to show progress). Ctrl-C or an error in the caller cancels the rest."""
        queue = list(enumerate(argument_lists))
        running: dict[Job, int] = {}
        try:
            while queue or running:
                while queue and len(running) < self.workers:
                    index, args = queue.pop(0)
                    running[self.submit(fn, *args)] = index
                done = self.wait(list(running), timeout=timeout)
                if not done:
                    yield -1, None
                for job in done:
                    yield running.pop(job), job
        finally:
            for job in running:
                self.cancel(job)

    def map(self, fn: Callable[..., Any], argument_lists: Iterable[tuple]) -> list[Any]:
        """Every job's result in submission order (the first failure is raised after all finish)."""
        jobs = [self.submit(fn, *args) for args in argument_lists]
        pending = list(jobs)
        while pending:
            done = self.wait(pending)
            pending = [j for j in pending if j not in done]
        return [self.result(j) for j in jobs]


def parse_cluster(value: str | None) -> str | None:
    """None (local), "ray" (start a local Ray cluster) or "ray://HOST:PORT"; ClusterError otherwise."""
    if value is None or value == "local":
        return None
    if value == "ray":
        return value
    match = _ADDRESS.match(value)
    if match is None or not 0 < int(match["port"]) < 65536:
        raise ClusterError(f"bad --cluster {value!r}: expected ray (a local Ray cluster) or ray://HOST:PORT")
    return value


def open_executor(cluster: str | None, workers: int) -> Executor:
    """The executor for a --cluster value: local (workers=0: in this process) or Ray."""
    kind = parse_cluster(cluster)
    if kind is None:
        from graphopt.cluster.local import LocalExecutor

        return LocalExecutor(workers)
    from graphopt.cluster.ray_executor import RayExecutor

    return RayExecutor(None if kind == "ray" else kind, max(workers, 1))
