"""The tuner's artifact cache: one directory per artifact id, plus its measured result.

    CACHE/<id>/               the artifact (written atomically by the compiler)
    CACHE/<id>.result.json    what a trial measured on it (or the plan's peak when pruned)
    CACHE/.locks/<id>         flock held while one worker compiles/measures that id
    CACHE/compiles.jsonl      one line per compile (or fetch): the audit that recompilations
                              are zero, and the content id each build wrote or each fetch
                              checked (what later loads pin)

<id> is the build id (predicted before compiling). The artifact's content id is
known once it is written; the worker that built it records it (compile log, result,
trial attributes) and every later load of that artifact pins it: an artifact changed
in the cache after it was built is refused, never measured or committed.

Why a lock per id: two workers (or two machines on a shared disk) may draw the
same configuration at once; the second waits and then reuses the first's
artifact instead of compiling it again. The compile log is written by every
worker and read by the report, so "zero recompilations" is counted, not assumed.

Past one machine: the directory is each node's own (the same path on every node,
shared or not), and `shared` (graphopt.tune.artifact_table, the study's PostgreSQL)
is what the nodes share: a node that lacks an artifact some node built fetches it
by its content id (`fetch`, logged as "fetched"), and every build is published
(`publish`). The per-id lock then only keeps the workers of one node apart.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from graphopt.artifact import MANIFEST

if TYPE_CHECKING:
    from graphopt.tune.artifact_table import ArtifactTable

COMPILE_LOG = "compiles.jsonl"
PLACED = ("built", "fetched")  # log outcomes that leave a checked artifact in the directory


class ArtifactCache:
    def __init__(self, root: str | Path, shared: ArtifactTable | None = None) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / ".locks").mkdir(exist_ok=True)
        self.shared = shared

    def artifact(self, artifact_id: str) -> Path:
        return self.root / artifact_id

    def has_artifact(self, artifact_id: str) -> bool:
        return (self.artifact(artifact_id) / MANIFEST).is_file()

    @contextmanager
    def lock(self, artifact_id: str) -> Iterator[None]:
        """Exclusive per-id lock across processes (released by the OS if the holder is killed). Waited
        for without the node lock (graphopt.cluster.node_lock.waiting): the holder may need to time."""
        from graphopt.cluster.node_lock import waiting

        with open(self.root / ".locks" / artifact_id, "a") as handle:
            with waiting():
                fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def load_result(self, artifact_id: str) -> dict | None:
        try:
            return json.loads((self.root / f"{artifact_id}.result.json").read_text())
        except (OSError, json.JSONDecodeError):
            return None  # absent, or torn by a kill before os.replace: measure again

    def save_result(self, artifact_id: str, result: dict) -> None:
        final = self.root / f"{artifact_id}.result.json"
        tmp = final.with_name(f".{final.name}.{os.getpid()}")
        tmp.write_text(json.dumps(result, indent=1, sort_keys=True))
        os.replace(tmp, final)

    def log_compile(self, artifact_id: str, seconds: float, outcome: str, content_id: str | None = None) -> None:
        """Appends one line (O_APPEND: whole lines from concurrent writers)."""
        entry = {"id": artifact_id, "seconds": round(seconds, 3), "outcome": outcome,
                 "worker": worker_name(), "time": time.time()}
        if content_id is not None:
            entry["content_id"] = content_id
        line = json.dumps(entry) + "\n"
        fd = os.open(self.root / COMPILE_LOG, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)

    def compile_log(self) -> list[dict]:
        path = self.root / COMPILE_LOG
        if not path.is_file():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def recorded_content_id(self, artifact_id: str) -> str | None:
        """The content id the last build (or checked fetch) of `artifact_id` wrote (None: never recorded)."""
        found = None
        for entry in self.compile_log():
            if entry.get("id") == artifact_id and entry.get("outcome") in PLACED and entry.get("content_id"):
                found = entry["content_id"]
        return found

    def fetch(self, artifact_id: str) -> str | None:
        """The content id of `artifact_id` after fetching it from the shared table into this directory
        (checked, logged as "fetched"); None when no node has built it or nothing is shared."""
        content_id = self.shared.lookup(artifact_id) if self.shared is not None else None
        if content_id is None:
            return None
        began = time.perf_counter()
        self.shared.fetch(content_id, artifact_id, self.artifact(artifact_id))
        self.log_compile(artifact_id, time.perf_counter() - began, "fetched", content_id=content_id)
        return content_id

    def publish(self, artifact_id: str, content_id: str) -> None:
        """Makes a build of this node visible to every other (no-op when nothing is shared)."""
        if self.shared is not None:
            self.shared.publish(artifact_id, content_id, self.artifact(artifact_id), worker_name())

    def recompilations(self) -> int:
        """Builds of an id built before (a trial compiles only after finding no artifact for its id)."""
        seen: set[str] = set()
        count = 0
        for entry in self.compile_log():
            if entry["outcome"] != "built":
                continue
            count += entry["id"] in seen
            seen.add(entry["id"])
        return count


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"
