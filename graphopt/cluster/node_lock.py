"""One timing at a time per node, and never beside other work: the lock that keeps measurements comparable.

    with working():   shared: a whole tuning job (load the study, compile, build kernels,
                      check outputs): any number of jobs at once
    with timing():    exclusive: a latency or kernel measurement, alone on the node; inside
                      a working section the job trades its shared lock for it and back
    with waiting():   inside a working section, lets go of the shared lock while the job
                      blocks on something else (another job's per-artifact lock)

Why: two measurements that share a node's cores are not comparable with one taken
alone, and neither is one taken while anything else of ours runs beside it: graphopt's
runtime and kernel timings use every core of the node (graphopt.threads), so a compile
or merely the next trial's set-up (loading the study, drawing a configuration: half a
second of CPU) on one core stretches every parallel loop. Measured on the 2-core VM
with 2 Ray workers and only the compiles locked: a scheduled artifact timed at 14-16 ms
instead of 1.0-1.7 ms while the other worker set up its next trial. So a job holds the
shared lock from start to end, and a timing waits until every other job on the node is
timing or done; builds still run K at once (timings are short next to compiles).

Why a file lock (flock) rather than something keyed by Ray's node id: the node that
matters is the machine whose cores are shared, and every process on it, whichever
executor started it (local pool, Ray worker, `--join` worker, another user's tuner),
sees the same file in the machine's temporary directory; Ray nodes started twice on
one machine share it too, as they share its cores. The OS drops the lock of a process
that dies, so a killed worker never leaves the node locked. GRAPHOPT_NODE_LOCK names
another file (a machine whose /tmp is private per container while the cores are not).
What runs outside any job (the driver's polling, a fresh Ray worker importing TVM) is
not covered: it is light, or happens once per worker.

Deadlock-free: a process holding the lock never waits for anything but the lock itself.
A timing inside a working section converts the lock (flock releases the shared lock
before it waits for the exclusive one, so two jobs converting at once do not wait for
each other), and every other wait inside a job is wrapped in `waiting()`.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ENV = "GRAPHOPT_NODE_LOCK"
FILE = "graphopt-node.lock"

_state = threading.local()


def lock_path() -> Path:
    """GRAPHOPT_NODE_LOCK, else graphopt-node.lock in this machine's temporary directory."""
    return Path(os.environ.get(ENV) or Path(tempfile.gettempdir()) / FILE)


@contextmanager
def working() -> Iterator[None]:
    """A job, or any heavy work: runs beside other work, never beside a timing (nested: no-op)."""
    if getattr(_state, "mode", None) is not None:
        yield
        return
    with _held(fcntl.LOCK_SH):
        yield


@contextmanager
def timing() -> Iterator[None]:
    """A measurement: runs alone on the node. Inside working(): the shared lock is traded for the
    exclusive one, and back after."""
    mode = getattr(_state, "mode", None)
    if mode == fcntl.LOCK_EX:
        yield
    elif mode == fcntl.LOCK_SH:
        with _converted(fcntl.LOCK_EX):
            yield
    else:
        with _held(fcntl.LOCK_EX):
            yield


@contextmanager
def waiting() -> Iterator[None]:
    """Around a wait for something else (another lock) inside working(): holds nothing meanwhile."""
    mode = getattr(_state, "mode", None)
    if mode == fcntl.LOCK_EX:
        raise RuntimeError("a timing must not wait for anything: it holds the whole node")
    if mode is None:
        yield
        return
    with _converted(fcntl.LOCK_UN):
        yield


@contextmanager
def _held(mode: int) -> Iterator[None]:
    """The lock taken in `mode` on a descriptor of its own; the state before is restored after (a
    section opened inside waiting() leaves the job's own descriptor to it)."""
    before = getattr(_state, "mode", None), getattr(_state, "fd", None)
    fd = _open(lock_path())
    try:
        fcntl.flock(fd, mode)
        _state.mode, _state.fd = mode, fd
        try:
            yield
        finally:
            _state.mode, _state.fd = before
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextmanager
def _converted(mode: int) -> Iterator[None]:
    """The held shared lock changed to `mode` (LOCK_EX or LOCK_UN) for the block, shared again after."""
    fcntl.flock(_state.fd, mode)
    _state.mode = None if mode == fcntl.LOCK_UN else mode
    try:
        yield
    finally:
        fcntl.flock(_state.fd, fcntl.LOCK_SH)
        _state.mode = fcntl.LOCK_SH


def _open(path: Path) -> int:
    """A read-only descriptor (flock needs no write access): opened without O_CREAT first, since
    Linux refuses O_CREAT on another user's file in a sticky /tmp (fs.protected_regular)."""
    try:
        return os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return os.open(path, os.O_RDONLY | os.O_CREAT, 0o644)
