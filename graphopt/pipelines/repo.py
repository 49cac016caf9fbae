"""The repository: branches, commits and versions of one pipeline (MLCask semantics).

    REPO/.graphopt-pipeline/objects/ab/cdef...   content-addressed outputs and captured files
    REPO/.graphopt-pipeline/meta.sqlite          metadata (WAL), see meta.py
    REPO/.graphopt-pipeline/tmp/                 temp files of writers and runs

A commit is a snapshot of the whole chain: for each component, in order, the
version it uses and the run key of its stored output. A version is named
`branch@schema.increment`: the branch that first produced it, the schema number
of its output signature (computed, see signatures.py), and a counter per
(branch, schema). Versions are identified by (spec, output schema, input schemas),
so the same spec fed a new upstream schema is a new version.

Commit runs the working chain through the Executor (an unchanged prefix is reused
from the store), then writes versions, the commit row and the branch head in one
transaction: concurrent committers serialize there and none is lost.

Concurrent committers never take each other's changes:
  * staged changes live in an *area*; a commit takes exactly the rows of its own
    area that it read when it started, each by the token it was staged with, and
    deletes them in the commit's transaction (compare-and-swap): if one was
    re-staged or committed by another process meanwhile, the commit is refused
    (StagedChangedError) and nothing is written. Rows staged later stay staged.
    A `Repository` opened without `area` gets a private area of its own (one per
    instance: a process stages and commits its own changes); the CLI uses the
    shared area `""` unless given `--area` / GRAPHOPT_STAGE_AREA.
  * the chain is built on the head the commit started from; if another commit
    landed on the branch meanwhile, it is rebuilt on the new head (stored steps are
    reused) and written with that head as parent, so it never reverts the other
    commit's changes.
"""

from __future__ import annotations

import getpass
import json
import os
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from graphopt.errors import InputError
from graphopt.pipelines import meta, names
from graphopt.pipelines.errors import (
    HeadMovedError,
    PipelineError,
    RepoNotFoundError,
    StagedChangedError,
    UnknownBranchError,
    UnknownComponentError,
)
from graphopt.pipelines.executor import Executor, Node, Step, schemas_key
from graphopt.pipelines.objects import ObjectStore, canonical, fsync_dir, sha256_bytes

DIRNAME = ".graphopt-pipeline"
DB = "meta.sqlite"
SHARED_AREA = ""  # the staging area of the CLI unless --area names another
PRIVATE_PREFIX = "~"  # private areas: "~HOST:PID:RANDOM", never a valid user-given name
MAX_REBASES = 20


@dataclass(frozen=True)
class Commit:
    id: str
    branch: str
    parents: tuple[str, ...]
    message: str
    author: str
    created: float
    pipeline: tuple[dict, ...]  # {"component", "version", "run"} in chain order
    metrics: dict


def init(path: str | Path, branch: str = "main") -> Repository:
    names.check_name("branch", branch)
    root = Path(path) / DIRNAME
    if (root / DB).is_file():
        raise PipelineError(f"{path} already holds a pipeline repository")
    (root / "objects").mkdir(parents=True, exist_ok=True)
    (root / "tmp").mkdir(exist_ok=True)
    repo = Repository(root)
    meta.create(repo.conn, branch)
    for folder in (root, root.parent):  # the new folders' names (SQLite syncs its own files)
        fsync_dir(folder)
    return repo


def open_repo(path: str | Path = ".", area: str | None = None) -> Repository:
    """Finds the repository at `path` or in a parent directory (like git).

    `area`: the staging area to stage into and commit from (None: a private one).
    """
    start = Path(path).resolve()
    for folder in (start, *start.parents):
        if (folder / DIRNAME / DB).is_file():
            return Repository(folder / DIRNAME, area)
    raise RepoNotFoundError(f"no pipeline repository at {path} or above it (run `graphopt pipeline init`)")


def _author() -> str:
    try:
        return os.environ.get("GRAPHOPT_AUTHOR") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def private_area() -> str:
    return f"{PRIVATE_PREFIX}{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class Repository:
    def __init__(self, root: Path, area: str | None = None) -> None:
        if area is None:
            area = private_area()
        elif area != SHARED_AREA:
            names.check_name("staging area", area)
        self.root = Path(root)
        self.area = area
        self.store = ObjectStore(self.root)
        self.conn = meta.connect(self.root / DB)

    def close(self) -> None:
        """Closes the metadata; a private area's uncommitted changes are dropped with it."""
        if self.area.startswith(PRIVATE_PREFIX) and self.conn.execute(
                "SELECT 1 FROM staged WHERE area=? LIMIT 1", (self.area,)).fetchone():
            with meta.transaction(self.conn):
                self.conn.execute("DELETE FROM staged WHERE area=?", (self.area,))
        self.conn.close()

    def executor(self, say: Callable[[str], None] | None = None) -> Executor:
        return Executor(self.store, self.conn, say)

    # --- branches -----------------------------------------------------------------------

    def current_branch(self) -> str:
        return self.conn.execute("SELECT value FROM state WHERE key='head'").fetchone()["value"]

    def branches(self) -> dict[str, str | None]:
        return {r["name"]: r["head"] for r in self.conn.execute("SELECT * FROM branches ORDER BY name")}

    def head(self, branch: str) -> str | None:
        row = self.conn.execute("SELECT head FROM branches WHERE name=?", (branch,)).fetchone()
        if row is None:
            known = ", ".join(self.branches()) or "none"
            raise UnknownBranchError(f"unknown branch {branch!r} (branches: {known})")
        return row["head"]

    def create_branch(self, name: str, start: str | None = None) -> str | None:
        """A new branch at `start` (a branch or commit; default: the current branch's head)."""
        names.check_name("branch", name)
        commit = self.resolve(start or self.current_branch())
        with meta.transaction(self.conn):
            if self.conn.execute("SELECT 1 FROM branches WHERE name=?", (name,)).fetchone():
                raise PipelineError(f"branch {name!r} already exists")
            self.conn.execute("INSERT INTO branches VALUES (?, ?)", (name, commit))
        return commit

    def checkout(self, name: str) -> None:
        self.head(name)  # raises UnknownBranchError
        with meta.transaction(self.conn):
            self.conn.execute("UPDATE state SET value=? WHERE key='head'", (name,))

    def resolve(self, ref: str) -> str | None:
        """A branch name or a (prefix of a) commit id -> commit id (None: branch without commits)."""
        if self.conn.execute("SELECT 1 FROM branches WHERE name=?", (ref,)).fetchone():
            return self.head(ref)
        rows = self.conn.execute("SELECT id FROM commits WHERE id LIKE ?", (ref + "%",)).fetchall() if len(ref) >= 4 else []
        if len(rows) == 1:
            return rows[0]["id"]
        if len(rows) > 1:
            raise InputError(f"commit prefix {ref!r} is ambiguous")
        raise UnknownBranchError(f"unknown branch or commit {ref!r} (branches: {', '.join(self.branches())})")

    # --- commits and versions -----------------------------------------------------------

    def commit_row(self, commit_id: str) -> Commit:
        r = self.conn.execute("SELECT * FROM commits WHERE id=?", (commit_id,)).fetchone()
        if r is None:
            raise PipelineError(f"commit {commit_id} is missing from the metadata")
        return Commit(r["id"], r["branch"], tuple(json.loads(r["parents"])), r["message"], r["author"],
                      r["created"], tuple(json.loads(r["pipeline"])), json.loads(r["metrics"]))

    def version(self, version_id: int) -> dict:
        r = self.conn.execute("SELECT * FROM versions WHERE id=?", (version_id,)).fetchone()
        return {**dict(r), "spec": json.loads(r["spec"]), "expects": json.loads(r["expects"])}

    def nodes(self, commit_id: str | None) -> list[Node]:
        if commit_id is None:
            return []
        return [Node(e["component"], self.version(e["version"])["spec"]) for e in self.commit_row(commit_id).pipeline]

    def ancestors(self, commit_id: str | None) -> list[str]:
        """Every commit reachable from `commit_id` (itself included), newest first."""
        seen, todo = set(), [commit_id] if commit_id else []
        while todo:
            c = todo.pop()
            if c not in seen:
                seen.add(c)
                todo.extend(self.commit_row(c).parents)
        return sorted(seen, key=lambda c: (self.commit_row(c).created, c), reverse=True)

    def _resolve_version(self, step: Step, spec: dict, branch: str) -> int:
        """Existing version for (spec, schema, input schemas), or a new `branch@schema.increment`."""
        from graphopt.pipelines.components import spec_hash

        expects, digest = schemas_key(step.input_schemas), spec_hash(spec)
        row = self.conn.execute("SELECT id FROM versions WHERE component=? AND spec_hash=? AND schema=? AND expects=?",
                                (step.component, digest, step.schema, expects)).fetchone()
        if row:
            return row["id"]
        (inc,) = self.conn.execute("SELECT COALESCE(MAX(increment), -1) + 1 FROM versions "
                                   "WHERE component=? AND branch=? AND schema=?",
                                   (step.component, branch, step.schema)).fetchone()
        cur = self.conn.execute(
            "INSERT INTO versions(component, name, branch, schema, increment, spec_hash, spec, expects, created) "
            "VALUES (?,?,?,?,?,?,?,?,?)", (step.component, f"{branch}@{step.schema}.{inc}", branch, step.schema, inc,
                                           digest, json.dumps(spec), expects, meta.now()))
        return cur.lastrowid

    def record_commit(self, branch: str, nodes: list[Node], steps: list[Step], message: str,
                      extra_parents: tuple[str, ...] = (), base: str | None | bool = False,
                      taken: tuple[tuple[str, str], ...] = ()) -> str:
        """Writes versions + commit + head in one transaction; the parent is the head at that moment.

        `base` (unless False): the head `nodes` were built on; HeadMovedError if the head
        is another one now. `taken`: the (component, token) staged rows this commit
        consumes; StagedChangedError, and nothing written, if one is no longer staged.
        """
        with meta.transaction(self.conn):
            parent = self.head(branch)
            if base is not False and parent != base:
                raise HeadMovedError(f"{branch} moved to {parent[:12] if parent else '(no commits)'} while this ran "
                                     f"(another commit landed); run it again")
            for component, token in taken:
                cur = self.conn.execute("DELETE FROM staged WHERE branch=? AND area=? AND component=? AND token=?",
                                        (branch, self.area, component, token))
                if cur.rowcount != 1:
                    raise StagedChangedError(f"the staged change of {component!r} on {branch} was re-staged or "
                                             f"committed by another process while this commit ran; nothing was "
                                             f"committed (see `graphopt pipeline status`, then commit again)")
            pipeline = [{"component": s.component, "version": self._resolve_version(s, n.spec, branch), "run": s.run_key}
                        for n, s in zip(nodes, steps)]
            if parent and not extra_parents and list(self.commit_row(parent).pipeline) == pipeline:
                raise PipelineError(f"nothing to commit on {branch}: the pipeline is unchanged")
            parents = [p for p in (parent, *extra_parents) if p]
            body = {"branch": branch, "parents": parents, "message": message, "author": _author(),
                    "created": meta.now(), "pipeline": pipeline, "metrics": self.step_metrics(steps)}
            cid = sha256_bytes(canonical(body))
            self.conn.execute("INSERT INTO commits VALUES (?,?,?,?,?,?,?,?)",
                              (cid, branch, json.dumps(parents), message, body["author"], body["created"],
                               json.dumps(pipeline), json.dumps(body["metrics"])))
            self.conn.execute("UPDATE branches SET head=? WHERE name=?", (cid, branch))
        return cid

    def step_metrics(self, steps: list[Step]) -> dict[str, float]:
        found = {s.component: {r["name"]: r["value"] for r in
                               self.conn.execute("SELECT name, value FROM metrics WHERE run_key=?", (s.run_key,))}
                 for s in steps}
        found = {c: m for c, m in found.items() if m}
        if len(found) == 1:
            return next(iter(found.values()))
        return {f"{c}.{k}": v for c, m in found.items() for k, v in m.items()}

    # --- working pipeline ----------------------------------------------------------------

    def stage(self, name: str, spec: dict, branch: str | None = None, position: int | None = None) -> None:
        """Adds or replaces component `name` in the branch's working pipeline (applied by commit)."""
        branch = branch or self.current_branch()
        names.check_new_component(name, self.component_names(branch))
        _check_spec_names(spec)
        with meta.transaction(self.conn):
            self.conn.execute("INSERT OR REPLACE INTO staged(branch, area, component, position, spec, token) "
                              "VALUES (?,?,?,?,?,?)",
                              (branch, self.area, name, position, json.dumps(spec), secrets.token_hex(16)))

    def _staged_rows(self, branch: str) -> list[tuple[str, int | None, dict, str]]:
        rows = self.conn.execute("SELECT * FROM staged WHERE branch=? AND area=? ORDER BY rowid", (branch, self.area))
        return [(r["component"], r["position"], json.loads(r["spec"]), r["token"]) for r in rows]

    def staged(self, branch: str) -> list[tuple[str, int | None, dict]]:
        """This area's staged changes on `branch`, in staging order."""
        return [(name, position, spec) for name, position, spec, _token in self._staged_rows(branch)]

    def staged_elsewhere(self, branch: str) -> dict[str, int]:
        """How many changes other staging areas hold on `branch`, by area."""
        rows = self.conn.execute("SELECT area, COUNT(*) AS n FROM staged WHERE branch=? AND area!=? GROUP BY area "
                                 "ORDER BY area", (branch, self.area))
        return {r["area"]: r["n"] for r in rows}

    def working(self, branch: str) -> list[Node]:
        """The branch head's chain with this area's staged changes applied."""
        return _apply(self.nodes(self.head(branch)), self.staged(branch))

    def commit(self, message: str, branch: str | None = None, changes: dict[str, dict] | None = None,
               say: Callable[[str], None] | None = None) -> str:
        """Runs the working chain (reusing the unchanged prefix) and commits it to `branch`.

        Takes exactly this area's changes staged when it starts (see the module note);
        rebuilt on the new head if another commit lands on the branch meanwhile.
        """
        branch = branch or self.current_branch()
        for name in changes or {}:
            names.check_new_component(name, self.component_names(branch))
        for _ in range(MAX_REBASES):
            base = self.head(branch)
            rows = self._staged_rows(branch)
            nodes = _apply(self.nodes(base), [(n, p, s) for n, p, s, _t in rows] + [(n, None, s) for n, s in
                                                                                    (changes or {}).items()])
            if not nodes:
                raise PipelineError("nothing to commit: add components first (`graphopt pipeline add-component`)")
            steps = self.executor(say).run_path(nodes)
            try:
                return self.record_commit(branch, nodes, steps, message, base=base,
                                          taken=tuple((n, t) for n, _p, _s, t in rows))
            except HeadMovedError:
                continue  # another commit landed on the branch: rebuild on top of it (its steps are stored)
        raise HeadMovedError(f"{branch} kept moving under this commit ({MAX_REBASES} tries); commit again")

    def component_names(self, branch: str) -> list[str]:
        return [n.component for n in self.working(branch)]

    def require_component(self, branch: str, name: str) -> None:
        if name not in self.component_names(branch):
            raise UnknownComponentError(f"no component {name!r} on {branch}")


def _apply(nodes: list[Node], changes: list[tuple[str, int | None, dict]]) -> list[Node]:
    """`nodes` with each (name, position, spec) replacing its component or inserted at `position`."""
    nodes = list(nodes)
    for name, position, spec in changes:
        present = [n.component for n in nodes]
        if name in present:
            nodes[present.index(name)] = Node(name, spec)
        else:
            nodes.insert(len(nodes) if position is None else position, Node(name, spec))
    return nodes


def _check_spec_names(spec: dict) -> None:
    """The names inside a spec that become paths: its captured files and the inputs it reads."""
    files = spec.get("files") if isinstance(spec, dict) else None
    if isinstance(files, dict):
        names.check_file_names(files)
    for name in (spec.get("inputs") or []) if isinstance(spec, dict) else []:
        names.check_name("component", name)
