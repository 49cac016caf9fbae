"""The Ray executor: jobs as Ray tasks, on a local cluster or a running one.

    RayExecutor(None, K)                 starts a Ray cluster in this machine with K CPUs
                                         (K worker processes) and shuts it down on close
    RayExecutor("ray://HOST:PORT", K)    connects to a running cluster (Ray client) and
                                         keeps K jobs in flight; leaves the cluster running

Faults: each job is a task with `max_retries`: when its worker process or node
dies mid-job, Ray runs it again on another worker. A job's own exception is not
retried (it would fail again) and reaches the caller as itself. A job lost for
good (out of retries) is a ClusterError. Finished jobs are never rerun: their
results are already in the object store, and what they stored (trials, kernel
records, pipeline runs) is in the shared storage.

Every node needs the same graphopt installed (jobs are module-level functions,
pickled by name) and must reach the shared storage the job names; the driver of a
`ray://` connection needs Ray's client (`ray[client]`, in graphopt's `cluster` extra).

One process, one cluster: an executor joins the Ray this process is already connected
to only when that is the cluster asked for (a second `--cluster ray` joins the first's;
tests and benchmarks start one cluster and open executors on it); asking for another
address is a ClusterError, never a job sent to the wrong cluster. A local cluster is
always a new one (`address="local"`): a RAY_ADDRESS in the environment or a cluster
that `ray start` left on this machine is not joined by accident.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterable
from typing import Any

from graphopt.cluster.executor import ClusterError, Executor, Job
from graphopt.errors import first_line

RETRIES = 3
CONNECT_SECONDS = 5.0
CONNECT_ATTEMPTS = 3
_connected: list[str] = []  # the cluster this process's executors started or connected to ("local" or ray://...)


def import_ray():
    """The ray module, or one line saying how to install it (never a silent local fallback)."""
    try:
        import ray
    except ImportError:
        raise ClusterError("--cluster ray needs Ray, which is not installed: pip install 'graphopt[cluster]'") from None
    return ray


class RayExecutor(Executor):
    def __init__(self, address: str | None, workers: int, retries: int = RETRIES) -> None:
        super().__init__()
        ray = import_ray()
        self._ray, self.workers, self._retries = ray, workers, retries
        self._tasks: dict[Callable, Any] = {}
        if address is not None:
            _check_reachable(address)
        self._owned = not ray.is_initialized()
        wanted = address or "local"
        if self._owned:
            _init(ray, address, workers)
            _connected[:] = [wanted]
        elif _connected and _connected[0] != wanted:
            raise ClusterError(f"this process is already connected to {_connected[0]}: it cannot also use "
                               f"{'a local Ray cluster' if address is None else address}")

    def _start(self, fn: Callable[..., Any], args: tuple) -> Any:
        task = self._tasks.get(fn)
        if task is None:
            task = self._ray.remote(num_cpus=1, max_retries=self._retries, retry_exceptions=False)(fn)
            self._tasks[fn] = task
        return task.remote(*args)

    def wait(self, jobs: Iterable[Job], timeout: float | None = None) -> list[Job]:
        jobs = list(jobs)
        if not jobs:
            return []
        ready, _ = self._ray.wait([j.handle for j in jobs], num_returns=1, timeout=timeout)
        ready_ids = {r.hex() for r in ready}
        more, _ = self._ray.wait([j.handle for j in jobs], num_returns=len(jobs), timeout=0)
        ready_ids |= {r.hex() for r in more}
        return [j for j in jobs if j.handle.hex() in ready_ids]

    def result(self, job: Job) -> Any:
        exceptions = self._ray.exceptions
        try:
            return self._ray.get(job.handle)
        except exceptions.RayTaskError as exc:
            cause = exc.cause if getattr(exc, "cause", None) is not None else exc
            raise cause from None
        except exceptions.TaskCancelledError:
            raise ClusterError(f"job {job.name} #{job.number} was cancelled") from None
        except exceptions.RayError as exc:  # worker or node died and no retry was left
            raise ClusterError(f"job {job.name} #{job.number} was lost after {self._retries} retries: "
                               f"{first_line(exc)}") from None

    def cancel(self, job: Job) -> None:
        self._ray.cancel(job.handle, force=True)

    def close(self) -> None:
        if self._owned and self._ray.is_initialized():
            self._ray.shutdown()
            _connected.clear()
        self._owned = False


def _init(ray, address: str | None, workers: int) -> None:
    """Starts a local cluster, or connects to `address` (checked first that it answers at all: Ray's
    client otherwise retries for minutes before saying that nothing listens there)."""
    try:
        if address is None:
            ray.init(address="local", num_cpus=workers, include_dashboard=False, log_to_driver=False,
                     configure_logging=False)
        else:
            _connect(ray, address)
    except Exception as exc:  # noqa: BLE001  (Ray raises ConnectionError, RuntimeError, ...: all "cannot start")
        where = address or "a local Ray cluster"
        raise ClusterError(f"cannot start {where}: {first_line(exc)}{_hint(address, exc)}") from None


def _connect(ray, address: str) -> None:
    """ray.init through Ray's client, tried CONNECT_ATTEMPTS times when the head refuses the start.

    Why: the head's client server forks a server for each new client, and that fork dies at
    start now and then (a gRPC race in Ray 2.60, ray-project/ray#63202; 5 of 27 connections on this
    loaded 2-core VM): the client gets "Initialization failure from server" and has already
    disconnected itself; a new attempt gets a new server."""
    for attempt in range(1, CONNECT_ATTEMPTS + 1):
        try:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
            return
        except ConnectionAbortedError as exc:
            if attempt == CONNECT_ATTEMPTS or "Initialization failure from server" not in str(exc):
                raise


def _hint(address: str | None, exc: Exception) -> str:
    """What to check when a running cluster does not answer its client: Ray's message does not say."""
    if address is None:
        return ""
    if "requires pip package `ray[client]`" in str(exc):
        return " (pip install 'graphopt[cluster]' installs it)"
    if "timeout" in str(exc).lower() and os.environ.get("RAY_AUTH_MODE", "").lower() != "token":
        return (" (a cluster with token authentication, Ray's default when a token exists, needs "
                "RAY_AUTH_MODE=token and its token, RAY_AUTH_TOKEN or ~/.ray/auth_token, here too)")
    return ""


def _check_reachable(address: str) -> None:
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_SECONDS).close()
    except OSError as exc:
        raise ClusterError(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}") from None
