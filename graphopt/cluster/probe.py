"""Jobs that say where they ran: a quick check that a cluster runs graphopt's jobs, what the
fault tests kill, and what the node-lock tests time. Module-level functions, so every node
imports them by name."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path


def where(tag: object = None) -> dict:
    """Host, process id and CPU of the worker that ran this job."""
    from graphopt.cluster.node import node_cpu

    return {"tag": tag, "host": socket.gethostname(), "pid": os.getpid(), "cpu": node_cpu()}


def slow_square(n: int, seconds: float, started_dir: str) -> int:
    """n*n after `seconds`; first writes STARTED_DIR/<n>.<pid> so a test knows which worker holds it."""
    Path(started_dir, f"{n}.{os.getpid()}").touch()
    time.sleep(seconds)
    return n * n


def hold(kind: str, seconds: float, lock_file: str) -> dict:
    """Windows (start, end) spent in the node lock's sections, with the lock at `lock_file`: "timing"
    or "working" for `seconds`, or "job": working for `seconds`, then timing inside it (the lock
    converted) for `seconds`, as a tuning job does. What the node-lock tests compare across workers."""
    from graphopt.cluster import node_lock

    before = os.environ.get(node_lock.ENV)
    os.environ[node_lock.ENV] = lock_file  # for this job only: a reused worker's later jobs keep theirs
    try:
        if kind == "job":
            with node_lock.working():
                windows = {"working": _slept(seconds)}
                with node_lock.timing():
                    windows["timing"] = _slept(seconds)
        else:
            with (node_lock.timing if kind == "timing" else node_lock.working)():
                windows = {kind: _slept(seconds)}
        return {**windows, "pid": os.getpid()}
    finally:
        if before is None:
            del os.environ[node_lock.ENV]
        else:
            os.environ[node_lock.ENV] = before


def _slept(seconds: float) -> tuple[float, float]:
    start = time.time()
    time.sleep(seconds)
    return start, time.time()


def warm(seconds: float) -> int:
    """Imports the compiler (TVM: seconds of CPU in a fresh worker), then waits `seconds` so that jobs
    submitted together land on different workers: benchmarks warm every worker before they time."""
    import graphopt.compiler  # noqa: F401

    time.sleep(seconds)
    return os.getpid()
