"""Runs a chain of components with reuse of every stored result.

Design: a step's *run key* is the hash of its spec hash and the tree ids of the
inputs it declares. A run record (key -> output tree, schema) is written once the
output is stored; the next time the same key comes up, on any branch, in a
commit or in a merge candidate, the stored output is taken instead of running.
That gives MLCask's "re-run only the changed suffix" for free: an unchanged
prefix has unchanged keys. `compile` is additionally keyed by the build id it
will produce (known before building), so equal (model, options) never compile
twice even under different specs; a cached tree is checked to hold that build
before it is reused, and evaluate loads an artifact pinned to its content id.

A step that fails because its inputs do not fit (SchemaConflictError) leaves a
failed run record and a `compat` row, so the pair is known-incompatible history
and is pruned by merge without running again. Other failures are not recorded:
they may be transient.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from graphopt.pipelines import components, names, signatures
from graphopt.pipelines.errors import SchemaConflictError, UnknownComponentError
from graphopt.pipelines.meta import now, transaction
from graphopt.pipelines.objects import ObjectStore, canonical, sha256_bytes


@dataclass(frozen=True)
class Node:
    """One component of a candidate chain: its name, the spec to run, and the spec's hash."""

    component: str
    spec: dict
    spec_hash: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.spec_hash:  # hashed once: merge compares specs of every candidate pair
            object.__setattr__(self, "spec_hash", components.spec_hash(self.spec))


@dataclass(frozen=True)
class Step:
    """What running (or reusing) one node gave."""

    component: str
    run_key: str
    output: str
    schema: int
    input_schemas: dict
    reused: bool
    seconds: float


def run_key(spec_hash: str, input_trees: dict[str, str]) -> str:
    return sha256_bytes(canonical({"spec": spec_hash, "inputs": dict(sorted(input_trees.items()))}))


def schemas_key(schemas: dict[str, int]) -> str:
    """The joint input schemas of a step: compatibility is judged on all inputs together."""
    return canonical(dict(sorted(schemas.items()))).decode()


def schema_number(conn: sqlite3.Connection, component: str, signature: dict) -> int:
    """The component's schema number for this signature; a new signature gets max+1."""
    digest = signatures.signature_hash(signature)
    with transaction(conn):
        row = conn.execute("SELECT number FROM schemas WHERE component=? AND signature_hash=?",
                           (component, digest)).fetchone()
        if row:
            return row["number"]
        (top,) = conn.execute("SELECT COALESCE(MAX(number), -1) FROM schemas WHERE component=?", (component,)).fetchone()
        conn.execute("INSERT INTO schemas VALUES (?, ?, ?, ?)", (component, top + 1, digest, json.dumps(signature)))
        return top + 1


def schema_signature(conn: sqlite3.Connection, component: str, number: int) -> dict:
    row = conn.execute("SELECT signature FROM schemas WHERE component=? AND number=?", (component, number)).fetchone()
    return json.loads(row["signature"]) if row else {}


def compat_reason(conn: sqlite3.Connection, node: Node, schemas: dict[str, int]) -> str | None:
    """Why `node` cannot take inputs of these schemas (history first, then signatures), or None."""
    if not schemas:
        return None
    row = conn.execute("SELECT ok, reason FROM compat WHERE component=? AND spec_hash=? AND input_schemas=?",
                       (node.component, node.spec_hash, schemas_key(schemas))).fetchone()
    if row is not None:
        return None if row["ok"] else row["reason"]
    return components.accepts(node.spec, {n: schema_signature(conn, n, s) for n, s in schemas.items()})


def conflict_message(node: Node, schemas: dict[str, int], reason: str) -> str:
    if reason.startswith("conflicting schema"):
        return reason
    ins = ", ".join(f"{n} schema {s}" for n, s in sorted(schemas.items()))
    return f"conflicting schema: {node.component} cannot take {ins}: {reason}; update {node.component} or its inputs"


class Executor:
    """Runs nodes against one repository's store and metadata."""

    def __init__(self, store: ObjectStore, conn: sqlite3.Connection, say: Callable[[str], None] | None = None) -> None:
        self.store, self.conn = store, conn
        self.say = say or (lambda _msg: None)
        self.runs = 0  # steps actually executed (not reused), for benchmarks and progress

    def run_path(self, nodes: list[Node]) -> list[Step]:
        """Runs every node in order, reusing stored results; raises on the first failure."""
        names.check_chain(n.component for n in nodes)  # each becomes the folder tmp/run-*/in/<name>
        steps: dict[str, Step] = {}
        for node in nodes:
            missing = [n for n in node.spec.get("inputs", []) if n not in steps]
            if missing:
                raise UnknownComponentError(f"{node.component} reads {missing[0]}, which is not before it in the pipeline")
            ins = {n: steps[n] for n in node.spec.get("inputs", [])}
            steps[node.component] = self.run_node(node, ins)
        return [steps[n.component] for n in nodes]

    def known(self, node: Node, ins: dict[str, Step]) -> sqlite3.Row | None:
        key = run_key(node.spec_hash, {n: s.output for n, s in ins.items()})
        return self.conn.execute("SELECT * FROM runs WHERE key=?", (key,)).fetchone()

    def run_node(self, node: Node, ins: dict[str, Step]) -> Step:
        """Reuses the stored run of this key, or runs it. Under a lock per run key: merge jobs in
        other processes (graphopt.cluster) that reach the same step wait and then reuse it."""
        key = run_key(node.spec_hash, {n: s.output for n, s in ins.items()})
        with self._run_lock(key):
            return self._run_node(node, ins, key)

    @contextmanager
    def _run_lock(self, key: str) -> Iterator[None]:
        """An exclusive flock on tmp/.runs/<key> (released by the OS if the holder is killed)."""
        locks = self._tmp() / ".runs"
        locks.mkdir(exist_ok=True)
        with open(locks / key, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _run_node(self, node: Node, ins: dict[str, Step], key: str) -> Step:
        trees = {n: s.output for n, s in ins.items()}
        schemas = {n: s.schema for n, s in ins.items()}
        row = self.conn.execute("SELECT * FROM runs WHERE key=?", (key,)).fetchone()
        if row is not None and row["error"] is None and self.store.has(row["output"]):
            return Step(node.component, key, row["output"], row["schema"], schemas, True, 0.0)
        if row is not None and row["error"] is not None:
            raise SchemaConflictError(row["error"])
        self._check_compat(node, key, trees, schemas)
        start = time.perf_counter()
        output, facts = self._produce(node, trees, schemas, key)
        signature = self._signature(output)
        number = schema_number(self.conn, node.component, signature)
        seconds = time.perf_counter() - start
        self._record(node, key, trees, schemas, output, number, seconds, facts)
        return Step(node.component, key, output, number, schemas, False, seconds)

    def _check_compat(self, node: Node, key: str, trees: dict, schemas: dict) -> None:
        """Refuses, before running, inputs that history or the signatures show it cannot take."""
        reason = compat_reason(self.conn, node, schemas)
        if reason is not None:
            message = conflict_message(node, schemas, reason)
            self._record_failure(node, key, trees, schemas, message)
            raise SchemaConflictError(message)

    def _produce(self, node: Node, trees: dict[str, str], schemas: dict[str, int], key: str) -> tuple[str, dict]:
        spec = node.spec
        if spec["kind"] in components.FILE_KINDS:
            return self.store.put_tree_files(spec["files"]), {}
        work = Path(tempfile.mkdtemp(prefix="run-", dir=self._tmp()))
        try:
            inputs = {n: self.store.materialize(t, work / "in" / n) for n, t in trees.items()}
            if spec["kind"] == "compile":
                cached = self._cached_artifact(inputs, spec)
                if cached:
                    return cached, {}
            self.say(f"run {node.component}")
            self.runs += 1
            out = work / "out"
            out.mkdir()
            pins = self._pins(trees) if spec["kind"] == "evaluate" else None
            try:
                facts = components.run(spec, inputs, out, pins=pins)
            except SchemaConflictError as exc:
                message = conflict_message(node, schemas, str(exc))
                self._record_failure(node, key, trees, schemas, message)
                raise SchemaConflictError(message) from None
            return self.store.put_dir(out), facts
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _cached_artifact(self, inputs: dict[str, Path], spec: dict) -> str | None:
        (model_dir,) = inputs.values()
        onnx_files = sorted(model_dir.rglob("*.onnx"))
        if len(onnx_files) != 1:
            return None
        from graphopt.pipelines.builtins import predicted_artifact_id

        artifact_id = predicted_artifact_id(onnx_files[0], spec.get("params", {}))  # the build id
        row = self.conn.execute("SELECT tree FROM artifacts WHERE artifact_id=?", (artifact_id,)).fetchone()
        if not row or not self.store.has(row["tree"]):
            return None
        from graphopt.pipelines.artifacts import check_tree, older_format

        if older_format(self.store, row["tree"]):
            return None  # stored by an older graphopt: compile again
        check_tree(self.store, row["tree"], build_id=artifact_id)  # the build the key predicts, or refuse
        return row["tree"]

    def _pins(self, trees: dict[str, str]) -> dict[str, str]:
        """The content id of each input that is a stored artifact (checked against its tree's
        blobs): the runtime refuses the materialized copy unless it is exactly that artifact."""
        from graphopt.pipelines.artifacts import check_tree, holds_artifact

        return {name: check_tree(self.store, tree)["id"] for name, tree in trees.items()
                if holds_artifact(self.store, tree)}

    def _tmp(self) -> Path:
        self.store.tmp.mkdir(parents=True, exist_ok=True)
        return self.store.tmp

    def _signature(self, tree: str) -> dict:
        work = Path(tempfile.mkdtemp(prefix="sig-", dir=self._tmp()))
        try:
            return signatures.signature_of_dir(self.store.materialize(tree, work))
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _record(self, node: Node, key: str, trees: dict, schemas: dict, output: str, number: int,
                seconds: float, facts: dict) -> None:
        metrics = self._metrics(output)
        with transaction(self.conn):
            self.conn.execute("INSERT OR REPLACE INTO runs VALUES (?,?,?,?,?,?,NULL,?,?)",
                              (key, node.component, node.spec_hash, json.dumps(trees), output, number, seconds, now()))
            for name, value in metrics.items():
                self.conn.execute("INSERT OR REPLACE INTO metrics VALUES (?,?,?)", (key, name, value))
            if schemas:
                self.conn.execute("INSERT OR REPLACE INTO compat VALUES (?,?,?,1,'ran')",
                                  (node.component, node.spec_hash, schemas_key(schemas)))
            if "artifact_id" in facts:  # replaces a row whose tree an older graphopt wrote (_cached_artifact)
                self.conn.execute("INSERT OR REPLACE INTO artifacts VALUES (?,?)", (facts["artifact_id"], output))

    def _record_failure(self, node: Node, key: str, trees: dict, schemas: dict, error: str) -> None:
        with transaction(self.conn):
            self.conn.execute("INSERT OR REPLACE INTO runs VALUES (?,?,?,?,NULL,NULL,?,0,?)",
                              (key, node.component, node.spec_hash, json.dumps(trees), error, now()))
            self.conn.execute("INSERT OR REPLACE INTO compat VALUES (?,?,?,0,?)",
                              (node.component, node.spec_hash, schemas_key(schemas), error))

    def _metrics(self, tree: str) -> dict[str, float]:
        files = self.store.read_tree(tree)
        if "metrics.json" not in files:
            return {}
        data = json.loads(self.store.read_bytes(files["metrics.json"]))
        return {k: float(v) for k, v in data.items() if isinstance(v, (int, float))}
