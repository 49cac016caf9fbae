"""fsck and gc: prove the repository consistent, and reclaim what nothing needs.

fsck re-hashes every object (a corrupt one is named), checks that every tree's
blobs are stored, that every run, commit, version and branch points at things
that exist, and runs SQLite's own integrity check. Temp files of killed writers
are not problems: they were never linked under an object name.

gc keeps everything reachable from a root: captured files of every version's
spec, outputs of every run record (they are the history merge reuses) and the
artifact index; with `prune_runs`, run records that no commit uses are dropped
first (merge candidates that lost), so their outputs become garbage too.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from dataclasses import dataclass, field

from graphopt.pipelines.errors import BadNameError
from graphopt.pipelines.meta import transaction
from graphopt.pipelines.names import check_file_name
from graphopt.pipelines.objects import TREE_FORMAT
from graphopt.pipelines.repo import PRIVATE_PREFIX, Repository

STALE_TMP_SECONDS = 3600.0


@dataclass
class FsckReport:
    objects: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.problems


def _tree_files(repo: Repository, oid: str) -> dict[str, str] | None:
    """The files of a tree object, or None if the object is not a tree (a plain blob)."""
    try:
        data = json.loads(repo.store.path(oid).read_bytes())
    except (ValueError, UnicodeDecodeError, OSError):
        return None
    return data["files"] if isinstance(data, dict) and data.get("format") == TREE_FORMAT else None


def fsck(repo: Repository, progress=None) -> FsckReport:
    report = FsckReport()
    for oid in repo.store.ids():
        report.objects += 1
        if progress:
            progress(oid)
        if repo.store.hash_of(repo.store.path(oid)) != oid:
            report.problems.append(f"corrupt object {oid} (sha-256 mismatch)")
            continue
        for name, blob in (_tree_files(repo, oid) or {}).items():
            try:
                check_file_name(name, nested=True)
            except BadNameError:
                report.problems.append(f"tree {oid} names an unsafe path {name[:80]!r}")
            if not repo.store.has(blob):
                report.problems.append(f"tree {oid} names missing object {blob} ({name})")
    _check_rows(repo, report)
    (ok,) = repo.conn.execute("PRAGMA integrity_check").fetchone()
    if ok != "ok":
        report.problems.append(f"metadata database: {ok}")
    return report


def _check_rows(repo: Repository, report: FsckReport) -> None:
    conn, has = repo.conn, repo.store.has
    for r in conn.execute("SELECT key, output FROM runs WHERE output IS NOT NULL"):
        if not has(r["output"]):
            report.problems.append(f"run {r['key'][:12]} names missing object {r['output']}")
    for r in conn.execute("SELECT artifact_id, tree FROM artifacts"):
        if not has(r["tree"]):
            report.problems.append(f"artifact {r['artifact_id'][:12]} names missing object {r['tree']}")
    for r in conn.execute("SELECT name, spec FROM versions"):
        for fname, oid in json.loads(r["spec"]).get("files", {}).items():
            if not has(oid):
                report.problems.append(f"version {r['name']} names missing object {oid} ({fname})")
    versions = {r["id"] for r in conn.execute("SELECT id FROM versions")}
    runs = {r["key"] for r in conn.execute("SELECT key FROM runs WHERE error IS NULL")}
    commits = {r["id"]: r for r in conn.execute("SELECT * FROM commits")}
    for cid, r in commits.items():
        for parent in json.loads(r["parents"]):
            if parent not in commits:
                report.problems.append(f"commit {cid[:12]} names missing parent {parent[:12]}")
        for entry in json.loads(r["pipeline"]):
            if entry["version"] not in versions or entry["run"] not in runs:
                report.problems.append(f"commit {cid[:12]}: {entry['component']} names a missing version or run")
    for r in conn.execute("SELECT name, head FROM branches"):
        if r["head"] is not None and r["head"] not in commits:
            report.problems.append(f"branch {r['name']} points at missing commit {r['head'][:12]}")


@dataclass
class GcReport:
    objects_removed: int = 0
    bytes_removed: int = 0
    runs_removed: int = 0
    tmp_removed: int = 0


def gc(repo: Repository, prune_runs: bool = False, grace: float = STALE_TMP_SECONDS) -> GcReport:
    """Removes unreachable objects and stale temp files older than `grace` seconds.

    The grace period protects a concurrent commit: it stores objects before the
    rows that name them, so a fresh unnamed object may be about to become live.
    """
    report = GcReport()
    _drop_dead_private_areas(repo)
    if prune_runs:
        used = {e["run"] for r in repo.conn.execute("SELECT pipeline FROM commits") for e in json.loads(r["pipeline"])}
        with transaction(repo.conn):
            for r in repo.conn.execute("SELECT key FROM runs").fetchall():
                if r["key"] not in used:
                    repo.conn.execute("DELETE FROM runs WHERE key=?", (r["key"],))
                    repo.conn.execute("DELETE FROM metrics WHERE run_key=?", (r["key"],))
                    report.runs_removed += 1
            repo.conn.execute("DELETE FROM artifacts WHERE tree NOT IN (SELECT output FROM runs WHERE output IS NOT NULL)")
    live = _reachable(repo)
    cutoff = time.time() - grace
    for oid in list(repo.store.ids()):
        if oid not in live and repo.store.path(oid).stat().st_mtime < cutoff:
            report.bytes_removed += repo.store.size(oid)
            repo.store.delete(oid)
            report.objects_removed += 1
    for path in repo.store.tmp.glob("*") if repo.store.tmp.is_dir() else []:
        if path.stat().st_mtime < cutoff:  # a live writer's temp file is recent: leave it
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
            report.tmp_removed += 1
    return report


def _drop_dead_private_areas(repo: Repository) -> None:
    """Staged rows of a private area whose process (on this host) is gone: nobody can commit them."""
    host = socket.gethostname()
    dead = []
    for (area,) in repo.conn.execute("SELECT DISTINCT area FROM staged WHERE area LIKE ?", (PRIVATE_PREFIX + "%",)):
        owner, _, rest = area[len(PRIVATE_PREFIX):].rpartition(":")[0].rpartition(":")
        if owner == host and rest.isdigit() and not _alive(int(rest)):
            dead.append(area)
    if dead:
        with transaction(repo.conn):
            for area in dead:
                repo.conn.execute("DELETE FROM staged WHERE area=?", (area,))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def _reachable(repo: Repository) -> set[str]:
    conn = repo.conn
    roots = {r["output"] for r in conn.execute("SELECT output FROM runs WHERE output IS NOT NULL")}
    roots |= {r["tree"] for r in conn.execute("SELECT tree FROM artifacts")}
    for r in conn.execute("SELECT spec FROM versions UNION SELECT spec FROM staged"):
        roots |= set(json.loads(r["spec"]).get("files", {}).values())
    live = set()
    for oid in roots:
        live.add(oid)
        live |= set((_tree_files(repo, oid) or {}).values()) if repo.store.has(oid) else set()
    return live
