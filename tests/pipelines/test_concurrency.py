"""Several processes committing at once lose nothing; a killed commit leaves a valid repo."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from graphopt.pipelines import open_repo
from graphopt.pipelines.maintenance import fsck
from tests.pipelines.conftest import build_base

REPO_ROOT = Path(__file__).resolve().parents[2]

WORKER = """
import sys
from graphopt.pipelines import open_repo
from graphopt.pipelines.components import make_spec
repo = open_repo(sys.argv[1])
branch, tag = sys.argv[2], int(sys.argv[3])
for i in range(3):
    spec = make_spec("python", repo.store, ref="tests.pipelines.toy:score", inputs=["fit"],
                     params={"bonus": tag * 10 + i})
    repo.commit(f"{branch} {tag} {i}", branch=branch, changes={"score": spec})
"""


def _env() -> dict:
    return dict(os.environ, PYTHONPATH=str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))


def test_concurrent_commits_are_all_kept(tmp_path):
    repo = build_base(tmp_path)
    for b in ("x", "y"):
        repo.create_branch(b)
    jobs = [("x", 1), ("x", 2), ("y", 3), ("main", 4)]
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(tmp_path), b, str(t)], cwd=REPO_ROOT, env=_env(),
                              stderr=subprocess.PIPE, text=True) for b, t in jobs]
    for p in procs:
        assert p.wait(timeout=120) == 0, p.stderr.read()
    repo = open_repo(tmp_path)
    messages = {r["message"] for r in repo.conn.execute("SELECT message FROM commits")}
    assert {f"{b} {t} {i}" for b, t in jobs for i in range(3)} <= messages
    for branch, count in (("x", 6), ("y", 3), ("main", 3)):
        reachable = {repo.commit_row(c).message for c in repo.ancestors(repo.head(branch))} - {"base"}
        assert len(reachable) == count  # every commit on the branch's chain: none overwritten
    assert fsck(repo).clean


KILLED = """
import sys
from graphopt.pipelines import open_repo
from graphopt.pipelines.components import make_spec
repo = open_repo(sys.argv[1])
spec = make_spec("python", repo.store, ref="tests.pipelines.toy:slow", inputs=["data"],
                 params={"marker": sys.argv[2], "seconds": 60})
repo.commit("never lands", changes={"prep": spec})
"""


def test_killed_commit_leaves_the_repository_valid(tmp_path):
    repo = build_base(tmp_path / "r")
    head = repo.head("main")
    marker = tmp_path / "started"
    proc = subprocess.Popen([sys.executable, "-c", KILLED, str(tmp_path / "r"), str(marker)], cwd=REPO_ROOT, env=_env())
    deadline = time.time() + 60
    while not marker.exists() and time.time() < deadline:
        time.sleep(0.05)
    assert marker.exists()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    repo = open_repo(tmp_path / "r")
    assert repo.head("main") == head
    assert fsck(repo).clean
    assert "never lands" not in {r["message"] for r in repo.conn.execute("SELECT message FROM commits")}
