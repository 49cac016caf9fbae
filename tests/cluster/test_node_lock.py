"""The node lock: timings never overlap one another nor any work, builds run side by side, on the
Ray workers of one node as in one process; a job trades its shared lock for a timing and back; a
timing must not wait for anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from graphopt.cluster import node_lock
from graphopt.cluster.probe import hold

SECONDS = 0.4


def _overlap(a: tuple, b: tuple) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def test_timings_run_alone_and_work_runs_together_on_ray_workers(ray_cluster, tmp_path: Path) -> None:
    lock = str(tmp_path / "node.lock")
    kinds = ["job", "job", "working", "working", "timing", "timing"]
    results = ray_cluster.map(hold, [(kind, SECONDS, lock) for kind in kinds])
    assert len({r["pid"] for r in results}) == 2  # both workers took part
    timed = [r["timing"] for r in results if "timing" in r]
    worked = [r["working"] for r in results if "working" in r]
    clashes = [(a, b) for i, a in enumerate(timed) for b in timed[i + 1:] + worked if _overlap(a, b)]
    assert len(timed) == 4 and clashes == [], f"a timing overlapped another section: {clashes}"
    assert any(_overlap(a, b) for i, a in enumerate(worked) for b in worked[i + 1:]), worked  # work side by side


def _free_for(lock: Path, mode: int) -> bool:
    """Could another holder take the lock in `mode` now? (A descriptor of its own conflicts like another
    process's would: flock locks belong to the open file.)"""
    import fcntl
    import os

    fd = os.open(lock, os.O_RDONLY)
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def test_a_job_converts_for_a_timing_and_a_timing_waits_for_nothing(tmp_path: Path, monkeypatch) -> None:
    import fcntl

    lock = tmp_path / "node.lock"
    monkeypatch.setenv(node_lock.ENV, str(lock))
    with node_lock.working(), node_lock.working():  # nested work: already covered
        assert _free_for(lock, fcntl.LOCK_SH) and not _free_for(lock, fcntl.LOCK_EX)  # others work, nobody times
        with node_lock.timing(), node_lock.working():  # shared traded for exclusive (which covers work)
            assert not _free_for(lock, fcntl.LOCK_SH)  # nobody else works meanwhile
        assert _free_for(lock, fcntl.LOCK_SH) and not _free_for(lock, fcntl.LOCK_EX)  # shared again
        with node_lock.waiting():  # holds nothing: another process could time now
            assert _free_for(lock, fcntl.LOCK_EX)
        with node_lock.timing(), pytest.raises(RuntimeError, match="must not wait"), node_lock.waiting():
            pass
    assert _free_for(lock, fcntl.LOCK_EX)  # all released
