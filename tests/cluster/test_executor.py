"""The executor seam: bad --cluster values, the local executor, and the Ray executor's faults
(a worker killed mid-job: its job runs again elsewhere and no finished result is lost)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from graphopt.cluster import ClusterError, open_executor
from graphopt.cluster.executor import parse_cluster
from graphopt.cluster.local import LocalExecutor
from graphopt.cluster.probe import slow_square, where
from graphopt.errors import InputError

DEADLINE_S = 30


@pytest.mark.parametrize("value", ["ray:/host:1", "ray://host", "ray://host:0", "ray://host:99999", "dask", ""])
def test_bad_cluster_values_are_one_line_errors(value: str) -> None:
    with pytest.raises(ClusterError, match=r"^bad --cluster .*expected ray .*ray://HOST:PORT$"):
        parse_cluster(value)


def test_unreachable_cluster_is_a_clear_error() -> None:
    pytest.importorskip("ray", reason="ray is not installed: the Ray executor is not tested")
    with pytest.raises(ClusterError, match=r"^cannot reach the Ray cluster at ray://127.0.0.1:9: "):
        open_executor("ray://127.0.0.1:9", 2)


def test_ray_asked_for_but_missing_is_one_line_not_a_local_run(monkeypatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` meets where it is not installed
    with pytest.raises(ClusterError, match=r"^--cluster ray needs Ray, which is not installed: pip install"):
        open_executor("ray", 2)


def test_local_executor_never_imports_ray() -> None:
    import subprocess
    import sys

    code = ("import sys; from graphopt.cluster import open_executor; from graphopt.cluster.probe import where; "
            "e = open_executor(None, 0); e.map(where, [(1,)]); print('ray' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"


def _raises_input_error() -> None:
    raise InputError("bad input")


def test_local_executor_in_process_and_in_processes() -> None:
    inline = open_executor(None, 0)
    assert [r["pid"] for r in inline.map(where, [(1,), (2,)])] == [os.getpid()] * 2
    with pytest.raises(InputError, match="bad input"):  # the job's own error, unchanged
        inline.result(inline.submit(_raises_input_error))
    with LocalExecutor(2) as pool:
        results = pool.map(where, [(i,) for i in range(4)])
        assert [r["tag"] for r in results] == [0, 1, 2, 3] and os.getpid() not in {r["pid"] for r in results}
        with pytest.raises(InputError, match="bad input"):
            pool.result(pool.submit(_raises_input_error))


def test_ray_executor_runs_jobs_in_its_workers(ray_cluster) -> None:
    results = ray_cluster.map(where, [(i,) for i in range(4)])
    assert [r["tag"] for r in results] == [0, 1, 2, 3]
    assert os.getpid() not in {r["pid"] for r in results} and len({r["cpu"] for r in results}) == 1
    with pytest.raises(InputError, match="bad input"):  # not retried, not wrapped
        ray_cluster.result(ray_cluster.submit(_raises_input_error))


def _a_running_job(started: Path, finished: set[int]) -> tuple[int, int]:
    """(job n, worker pid) of a job that has started and not finished."""
    began = time.monotonic()
    while time.monotonic() - began < DEADLINE_S:
        for mark in started.iterdir():
            n, pid = (int(x) for x in mark.name.split("."))
            if n not in finished:
                return n, pid
        time.sleep(0.05)
    raise AssertionError("no job started")


def test_ray_worker_killed_mid_job_loses_no_finished_result(ray_cluster, tmp_path: Path) -> None:
    # staggered lengths: when the first job ends, every job still running has >= 0.5 s left, so the
    # kill lands mid-job (equal lengths let the job picked finish in the milliseconds before the kill)
    jobs = [ray_cluster.submit(slow_square, n, 1.0 + 0.5 * n, str(tmp_path)) for n in range(6)]
    first = ray_cluster.wait(jobs, timeout=DEADLINE_S)  # at least one finished before the kill
    finished = {ray_cluster.result(j) for j in first}
    assert finished
    n, pid = _a_running_job(tmp_path, {int(v ** 0.5) for v in finished})
    os.kill(pid, signal.SIGKILL)
    results = [ray_cluster.result(j) for j in jobs]
    lost = sum(r != k * k for k, r in enumerate(results))
    print(f"killed worker {pid} running job {n}; finished before the kill {len(finished)}; lost {lost}")
    assert lost == 0 and finished <= set(results)
    reruns = [m.name for m in tmp_path.iterdir() if m.name.startswith(f"{n}.")]
    assert len(reruns) >= 2 and f"{n}.{pid}" in reruns  # the killed job ran again, in another process


def test_a_process_on_one_cluster_refuses_another_address(ray_cluster) -> None:
    """Connected to the local cluster, an executor for a running one is refused, not quietly run on the
    local one (a listening socket stands in for the other cluster's client port)."""
    import socket

    from graphopt.cluster.ray_executor import RayExecutor

    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        address = f"ray://127.0.0.1:{other.getsockname()[1]}"
        with pytest.raises(ClusterError, match=rf"^this process is already connected to local: it cannot also use "
                                               rf"{address}$"):
            RayExecutor(address, 1)
    assert RayExecutor(None, 1).map(where, [(0,)])[0]["tag"] == 0  # asking for a local cluster joins the one running


class _FlakyRay:
    """Stands in for the ray module: init fails `failures` times as Ray's client does when the head's
    per-client server dies at start (ray-project/ray#63202), then succeeds."""

    def __init__(self, failures: int, message: str = "Initialization failure from server:\n") -> None:
        self.failures, self.message, self.calls = failures, message, 0

    def init(self, **_kwargs) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionAbortedError(self.message)


def test_a_refused_client_start_is_tried_again_and_other_errors_are_not() -> None:
    from graphopt.cluster.ray_executor import CONNECT_ATTEMPTS, _connect

    flaky = _FlakyRay(CONNECT_ATTEMPTS - 1)
    _connect(flaky, "ray://head:10001")
    assert flaky.calls == CONNECT_ATTEMPTS
    broken = _FlakyRay(CONNECT_ATTEMPTS)
    with pytest.raises(ConnectionAbortedError):
        _connect(broken, "ray://head:10001")
    assert broken.calls == CONNECT_ATTEMPTS
    other = _FlakyRay(1, "version mismatch")
    with pytest.raises(ConnectionAbortedError, match="version mismatch"):
        _connect(other, "ray://head:10001")
    assert other.calls == 1
