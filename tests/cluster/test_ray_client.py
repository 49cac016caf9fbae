"""`--cluster ray://HOST:PORT` against a cluster that is already running: `ray start --head` (with its
client server) in a subprocess, `graphopt tune` in another process connecting to it, the trials run
by the cluster's own worker processes, the cluster stopped at the end. Bounded: START_S to come up,
RUN_S for the job, STOP_S to go down (then its process group is killed).

The cluster runs with token authentication (a token of its own, given to the client through the
environment, as a real cluster's driver gets it) and no drain on SIGTERM (RAY_GRACEFUL_SHUTDOWN_
DRAIN_TIMEOUT_S=0: a test cluster has nothing to drain). It is stopped through its own process
group, never with `ray stop`, which would stop every Ray cluster of this user on the machine."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import onnx
import pytest
from optuna.trial import TrialState

from graphopt.examples.models import EXAMPLES
from tests.tune.conftest import SMALL_SPACE, load

START_S, RUN_S, STOP_S = 90, 240, 30


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


@dataclass(frozen=True)
class Head:
    address: str  # ray://127.0.0.1:PORT
    env: dict  # what a client of it needs (its token)
    temp: Path  # its --temp-dir: sessions, logs (one per worker process, named with its pid)


@pytest.fixture
def running_cluster():
    """A head node started with `ray start --head --block`, stopped after the test."""
    pytest.importorskip("ray", reason="ray is not installed (pip install 'graphopt[cluster]'): Ray tests skipped")
    pytest.importorskip("grpc", reason="Ray's client (ray[client]: grpcio) is not installed, so neither `ray start "
                                       "--ray-client-server-port` nor a ray:// connection can work here: "
                                       "pip install 'graphopt[cluster]'")
    temp = Path(tempfile.mkdtemp(prefix="graphopt-ray-"))  # short: Ray's unix sockets live under it
    client = _free_port()
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16),
           "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0"}
    # every port Ray would otherwise take at a fixed default is a free one: another cluster (this suite's
    # local one, another user's) may hold the defaults
    ports = {"port": _free_port(), "ray-client-server-port": client, "dashboard-port": _free_port(),
             "dashboard-agent-listen-port": _free_port()}
    command = [sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block", "--num-cpus=2",
               *[f"--{name}={port}" for name, port in ports.items()], "--include-dashboard=false",
               f"--object-store-memory={200 << 20}", f"--temp-dir={temp}", "--disable-usage-stats"]
    with open(temp / "head.log", "w") as log:
        head = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        _wait_started(head, temp / "head.log", client)
        yield Head(f"ray://127.0.0.1:{client}", env, temp)
    finally:
        _stop(head)
        shutil.rmtree(temp, ignore_errors=True)


def _wait_started(head: subprocess.Popen, log: Path, client_port: int) -> None:
    """Until the head says it started and its client port answers (the port opens before the node is
    ready to serve a client); pytest.fail with the log's end after START_S or if it exits."""
    began = time.monotonic()
    while not ("Ray runtime started" in log.read_text() and _listening(client_port)):
        if head.poll() is not None or time.monotonic() - began > START_S:
            pytest.fail(f"ray start --head did not come up in {START_S} s (exit {head.poll()}): "
                        f"{log.read_text()[-1500:]}")
        time.sleep(0.5)


def _stop(head: subprocess.Popen) -> None:
    """SIGTERM to the head's process group (ray start --block then stops what it started), SIGKILL after STOP_S."""
    try:
        os.killpg(head.pid, signal.SIGTERM)
        head.wait(STOP_S)
    except subprocess.TimeoutExpired:
        os.killpg(head.pid, signal.SIGKILL)
        head.wait(STOP_S)
    except ProcessLookupError:
        pass


def _client_server_log(head: Head) -> str:
    """The end of the head's Ray client server logs (why a connection was refused)."""
    logs = sorted(head.temp.glob("session_*/logs/ray_client_server*"))
    return "".join(f"\n--- {log.name}: {log.read_text(errors='replace')[-1500:]}" for log in logs)


def _worker_of(head: Head, pid: int) -> bool:
    """Was `pid` one of the head's worker processes? (Ray logs each in its temp dir, named with the pid.)"""
    return any(head.temp.glob(f"session_*/logs/python-core-worker-*_{pid}.log"))


def test_tune_on_a_running_cluster_through_ray_client(running_cluster: Head, tmp_path: Path) -> None:
    model, space, study_dir = tmp_path / "mlp.onnx", tmp_path / "space.yaml", tmp_path / "study"
    onnx.save(EXAMPLES["mlp"](), model)
    space.write_text(SMALL_SPACE)
    argv = [sys.executable, "-m", "graphopt.cli", "tune", str(model), "--space", str(space), "--dir", str(study_dir),
            "--trials", "2", "--sampler", "random", "--quiet", "--repeat", "3", "--workers", "2",
            "--cluster", running_cluster.address]
    run = subprocess.run(argv, capture_output=True, text=True, env=running_cluster.env, timeout=RUN_S, check=False)
    assert run.returncode == 0, run.stderr[-1000:] + _client_server_log(running_cluster)
    assert f"on {running_cluster.address}" in run.stdout
    trials = load(study_dir).get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    pids = {int(t.user_attrs["worker"].rpartition(":")[2]) for t in trials}
    assert all(_worker_of(running_cluster, pid) for pid in pids), pids  # run by the running cluster's workers
