"""Concurrent committers each commit exactly what they staged; a killed object write leaves no trace.

Processes are real (subprocess), synchronised with marker files so the race is
forced rather than hoped for; every wait is bounded.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from graphopt.pipelines import open_repo
from graphopt.pipelines.components import make_spec
from graphopt.pipelines.history import diff
from graphopt.pipelines.maintenance import fsck, gc
from graphopt.pipelines.objects import ObjectStore
from tests.pipelines.conftest import TOY

REPO_ROOT = Path(__file__).resolve().parents[2]
CLI = "import sys; from graphopt.cli import main; sys.exit(main(sys.argv[1:]))"


def _env(**extra) -> dict:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), **extra)
    env.pop("GRAPHOPT_STAGE_AREA", None)
    env.update(extra)
    return env


def _wait_for(path: Path, proc: subprocess.Popen | None = None, timeout: float = 60.0) -> None:
    deadline = time.time() + timeout
    while not path.exists():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process exited {proc.returncode} before {path.name}: {proc.stderr.read()}")
        assert time.time() < deadline, f"timed out waiting for {path}"
        time.sleep(0.02)




@pytest.fixture
def root(tmp_path, template):
    shutil.copytree(template, tmp_path / "r")
    return tmp_path / "r"


def changed(repo, cid: str) -> list[str]:
    """The components whose spec commit `cid` changed against its first parent (downstream re-versions aside)."""
    commit = repo.commit_row(cid)
    changes, _ = diff(repo, commit.parents[0], cid)
    return [c.component for c in changes if c.detail.startswith(("spec", "added", "removed"))]


def commit_by_message(repo, message: str) -> str:
    rows = repo.conn.execute("SELECT id FROM commits WHERE message=?", (message,)).fetchall()
    assert len(rows) == 1, (message, len(rows))
    return rows[0]["id"]


def spec_of(repo, cid: str, component: str) -> dict:
    entry = next(e for e in repo.commit_row(cid).pipeline if e["component"] == component)
    return repo.version(entry["version"])["spec"]


# --- two processes, each stages its own change, both commit at once ---------------------------

LIBRARY_WORKER = """
import json, sys, time
from pathlib import Path
from graphopt.pipelines import open_repo
from graphopt.pipelines.components import make_spec
root, me, other, component, ref, inputs, params = sys.argv[1:8]
repo = open_repo(root)                      # a private staging area of its own
repo.stage(component, make_spec("python", repo.store, ref=ref, inputs=[inputs], params=json.loads(params)))
Path(root, me).write_text("staged")
deadline = time.time() + 60
while not Path(root, other).exists():       # both have staged before either commits
    assert time.time() < deadline
    time.sleep(0.01)
repo.commit(f"{component} by {me}")
repo.close()
"""


def test_two_library_processes_each_commit_exactly_their_own_staged_change(root):
    jobs = [("p1", "p2", "prep", f"{TOY}:prep", "data", {"factor": 2.0}),
            ("p2", "p1", "score", f"{TOY}:score", "fit", {"bonus": 5.0})]
    procs = [subprocess.Popen([sys.executable, "-c", LIBRARY_WORKER, str(root), me, other, comp, ref, ins,
                               json.dumps(params)], cwd=REPO_ROOT, env=_env(), stderr=subprocess.PIPE, text=True)
             for me, other, comp, ref, ins, params in jobs]
    for p in procs:
        assert p.wait(timeout=120) == 0, p.stderr.read()
    repo = open_repo(root, area="")
    c1, c2 = commit_by_message(repo, "prep by p1"), commit_by_message(repo, "score by p2")
    assert list(changed(repo, c1)) == ["prep"] and list(changed(repo, c2)) == ["score"]  # nothing mixed
    head = repo.head("main")
    assert {head, *repo.commit_row(head).parents} >= {c1, c2}  # one landed on the other: none reverted
    assert spec_of(repo, head, "prep")["params"] == {"factor": 2.0}
    assert spec_of(repo, head, "score")["params"] == {"bonus": 5.0}
    assert not repo.conn.execute("SELECT 1 FROM staged").fetchone()
    assert fsck(repo).clean
    repo.close()


def _cli(root: Path, *args: str, area: str | None = None, **popen) -> subprocess.Popen:
    env = _env(**({"GRAPHOPT_STAGE_AREA": area} if area else {}))
    return subprocess.Popen([sys.executable, "-c", CLI, "pipeline", args[0], "--repo", str(root), *args[1:]],
                            cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def _done(proc: subprocess.Popen, rc: int = 0) -> tuple[str, str]:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == rc, err
    return out, err


def test_two_cli_users_with_their_own_areas_commit_concurrently_without_mixing(root):
    _done(_cli(root, "add-component", "prep", "--kind", "python", "--ref", f"{TOY}:prep", "--input", "data",
               "--param", "factor=3", area="alice"))
    _done(_cli(root, "add-component", "score", "--kind", "python", "--ref", f"{TOY}:score", "--input", "fit",
               "--param", "bonus=7", area="bob"))
    commits = [_cli(root, "commit", "-m", f"by {who}", "--quiet", area=who) for who in ("alice", "bob")]
    for proc in commits:
        _done(proc)
    repo = open_repo(root, area="")
    assert list(changed(repo, commit_by_message(repo, "by alice"))) == ["prep"]
    assert list(changed(repo, commit_by_message(repo, "by bob"))) == ["score"]
    head = repo.head("main")
    assert spec_of(repo, head, "prep")["params"] == {"factor": 3}
    assert spec_of(repo, head, "score")["params"] == {"bonus": 7}
    assert not repo.conn.execute("SELECT 1 FROM staged").fetchone() and fsck(repo).clean
    repo.close()


# --- compare-and-swap on the staged rows, rebuild on a moved head ------------------------------

def _slow_commit(root: Path, tmp: Path, area: str, seconds: float = 1.5) -> tuple[subprocess.Popen, Path]:
    """Stages a slow `prep` in `area` and starts committing it; returns when its step is running."""
    marker = tmp / "running"
    _done(_cli(root, "add-component", "prep", "--kind", "python", "--ref", f"{TOY}:slow", "--input", "data",
               "--param", f"marker={marker}", "--param", f"seconds={seconds}", area=area))
    proc = _cli(root, "commit", "-m", "slow prep", "--quiet", area=area)
    _wait_for(marker, proc)
    return proc, marker


def test_a_change_restaged_during_a_commit_refuses_that_commit_in_one_line(root, tmp_path):
    before = open_repo(root, area="")
    head = before.head("main")
    before.close()
    proc, _ = _slow_commit(root, tmp_path, "team")
    repo = open_repo(root, area="team")  # a teammate re-stages prep in the same area meanwhile
    restaged = make_spec("python", repo.store, ref=f"{TOY}:prep", inputs=["data"], params={"factor": 4.0})
    repo.stage("prep", restaged)
    repo.close()
    _out, err = _done(proc, rc=2)
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1 and "re-staged" in err, err
    repo = open_repo(root, area="team")
    assert repo.head("main") == head  # nothing committed under a change it did not run
    assert repo.staged("main") == [("prep", None, restaged)]  # the teammate's change is kept
    assert "slow prep" not in {r["message"] for r in repo.conn.execute("SELECT message FROM commits")}
    assert fsck(repo).clean
    repo.close()


def test_a_change_staged_after_a_commit_started_stays_staged(root, tmp_path):
    proc, _ = _slow_commit(root, tmp_path, "team")
    repo = open_repo(root, area="team")
    later = make_spec("python", repo.store, ref=f"{TOY}:score", inputs=["fit"], params={"bonus": 9.0})
    repo.stage("score", later)
    repo.close()
    _done(proc)
    repo = open_repo(root, area="team")
    assert list(changed(repo, commit_by_message(repo, "slow prep"))) == ["prep"]
    assert repo.staged("main") == [("score", None, later)] and fsck(repo).clean
    repo.close()
    out, _ = _done(_cli(root, "status", area="team"))
    assert "staged changes (area team):" in out and "score: python" in out and "prep" not in out
    out, _ = _done(_cli(root, "status"))
    assert "nothing staged" in out and "other staging areas: team 1" in out


def test_a_commit_that_lands_meanwhile_is_built_on_not_reverted(root, tmp_path):
    proc, _ = _slow_commit(root, tmp_path, "alice")
    repo = open_repo(root)  # another process commits a score change while alice's prep runs
    other = repo.commit("bonus 6", changes={"score": make_spec("python", repo.store, ref=f"{TOY}:score",
                                                                 inputs=["fit"], params={"bonus": 6.0})})
    repo.close()
    _done(proc)
    repo = open_repo(root, area="")
    slow = commit_by_message(repo, "slow prep")
    assert repo.head("main") == slow and repo.commit_row(slow).parents == (other,)
    assert list(changed(repo, slow)) == ["prep"]  # the score change of `other` is kept, not reverted
    assert spec_of(repo, slow, "score")["params"] == {"bonus": 6.0}
    assert fsck(repo).clean
    repo.close()


# --- a process killed while it writes an object ------------------------------------------------

KILLED_WRITER = """
import os, sys, time
from pathlib import Path
from graphopt.pipelines import open_repo
from graphopt.pipelines.components import make_spec
root, point, marker, source = sys.argv[1:5]
repo = open_repo(root)

def pause():
    Path(marker).write_text(point)
    time.sleep(60)

real_link = os.link
if point == "mid-write":                     # half the bytes are in the temp file
    install = repo.store._install
    def half_install(oid, write):
        data = Path(source).read_bytes()
        def half(f):
            f.write(data[: len(data) // 2])
            f.flush()
            pause()
        install(oid, half)
    repo.store._install = half_install
elif point == "before-link":                 # complete and fsync'ed, not yet under its name
    os.link = lambda src, dst: pause()
elif point == "after-link":                  # under its name, directory not yet fsync'ed, temp not removed
    def link(src, dst):
        real_link(src, dst)
        pause()
    os.link = link
repo.stage("big", make_spec("dataset", repo.store, files=[Path(source)]))
repo.commit("never lands")
"""


@pytest.mark.parametrize("point", ["mid-write", "before-link", "after-link"])
def test_sigkill_during_an_object_write_leaves_fsck_clean_and_no_partial_object(root, tmp_path, point):
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(3 << 20))
    oid = ObjectStore.hash_of(source)
    marker = tmp_path / "paused"
    before = open_repo(root, area="")
    head, objects = before.head("main"), set(before.store.ids())
    before.close()
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(root), point, str(marker), str(source)],
                            cwd=REPO_ROOT, env=_env(), stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(marker, proc)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    repo = open_repo(root, area="")
    report = fsck(repo)
    assert report.clean, report.problems
    assert repo.head("main") == head
    new = set(repo.store.ids()) - objects
    if point == "after-link":
        assert new == {oid} and repo.store.verify(oid)  # complete, or (other points) absent
    else:
        assert new == set() and not repo.store.path(oid).exists()
    assert list(repo.store.tmp.glob("obj-*"))  # what the killed writer left: a temp file, no object
    assert gc(repo, grace=0).tmp_removed >= 1 and not list(repo.store.tmp.glob("obj-*"))
    repo.stage("big", make_spec("dataset", repo.store, files=[source]))  # the same write now succeeds
    repo.commit("lands")
    assert repo.store.verify(oid) and fsck(repo).clean
    repo.close()


# --- durability: names and refs are synced before anything names them --------------------------

def test_an_object_name_is_fsynced_in_its_directory_after_the_link(tmp_path, monkeypatch):
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc to name file descriptors")
    events: list[tuple[str, str]] = []
    real_fsync, real_link = os.fsync, os.link

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        return real_fsync(fd)

    def link(src, dst, **kw):
        events.append(("link", str(dst)))
        return real_link(src, dst, **kw)

    store = ObjectStore(tmp_path)
    store.tmp.mkdir()
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "link", link)
    oid = store.put_bytes(b"durable")
    final = store.path(oid)
    kinds = [k for k, _ in events]
    link_at = events.index(("link", str(final)))
    assert any(k == "fsync" and Path(p).parent == store.tmp for k, p in events[:link_at])  # the bytes first
    assert ("fsync", str(final.parent)) in events[link_at:]  # then the new name
    assert ("fsync", str(store.objects)) in events  # and the new fan-out folder's name
    assert kinds.count("link") == 1


def test_metadata_commits_are_synchronous_full(root):
    repo = open_repo(root)
    (level,) = repo.conn.execute("PRAGMA synchronous").fetchone()
    repo.close()
    assert level == 2  # FULL: a branch head update is on disk when the commit returns


def test_a_private_area_goes_with_its_process(root):
    """close() drops a private area's uncommitted changes; gc drops those of a process that died."""
    code = ("import os, sys\n"
            "from graphopt.pipelines import open_repo\n"
            "from graphopt.pipelines.components import make_spec\n"
            "repo = open_repo(sys.argv[1])\n"
            f"repo.stage('score', make_spec('python', repo.store, ref='{TOY}:score', inputs=['fit'], "
            "params={'bonus': 2}))\n"
            "os._exit(0)\n")
    subprocess.run([sys.executable, "-c", code, str(root)], cwd=REPO_ROOT, env=_env(), check=True, timeout=60)
    repo = open_repo(root)
    (area,) = [r["area"] for r in repo.conn.execute("SELECT area FROM staged")]
    assert area.startswith("~") and repo.staged("main") == []  # not ours, not the shared area's
    gc(repo, grace=3600)
    assert not repo.conn.execute("SELECT 1 FROM staged").fetchone()
    repo.stage("score", make_spec("python", repo.store, ref=f"{TOY}:score", inputs=["fit"], params={"bonus": 3}))
    repo.close()
    repo = open_repo(root)
    assert not repo.conn.execute("SELECT 1 FROM staged").fetchone() and fsck(repo).clean
    repo.close()
