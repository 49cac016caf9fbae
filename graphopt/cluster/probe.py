"""Jobs that say where they ran: a quick check that a cluster runs graphopt's jobs, and what
the fault tests kill. Module-level functions, so every node imports them by name."""

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
