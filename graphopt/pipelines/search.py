"""The merge search tree: candidates, compatibility pruning, history lookup, priority.

Design (MLCask, ICDE 2021, section on merge): level i of the tree holds every
version of component i seen on either branch since their merge base (versions
with one spec collapse to one node: they compute the same thing). A root-to-leaf
path is a candidate pipeline; siblings share their prefix, so a prefix is run at
most once (the executor's run keys make that automatic).

Walking the tree we *predict* each node's output from history, without running:
if its inputs' trees are known and a run record exists for that key, the output
tree and schema are known exactly; else if a version of the same spec was once
run on inputs of the same schemas, its output schema is known. With input schemas
known, a node is pruned (with its whole subtree) when the compat history says
that spec failed on those schemas, or when its static check rejects their
computed signatures. Unknown schemas are never pruned: pruning stays sound, so an
exhaustive search could not find a better pipeline among what we pruned.

Priority: candidates whose every step is stored cost nothing and come first.
The rest are ordered by an estimate of the metric: the mean over already-
evaluated candidates that share the most components with it (its nearest
neighbours in the tree), then by how many steps still have to run.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

from graphopt.pipelines.executor import Node, compat_reason, run_key, schemas_key


@dataclass
class Candidate:
    """One root-to-leaf path of the tree and what became of it."""

    nodes: tuple[Node, ...]
    labels: tuple[str, ...]
    missing: int = 0            # steps without a stored result when planned
    status: str = "planned"     # planned | reused | ran | pruned | failed | skipped
    reason: str = ""
    metrics: dict = field(default_factory=dict)
    steps: list = field(default_factory=list)


@dataclass(frozen=True)
class Level:
    """The distinct specs of one component, each with the version names that carry it."""

    component: str
    nodes: tuple[Node, ...]
    labels: tuple[str, ...]


def _predict(conn: sqlite3.Connection, node: Node, known: dict) -> tuple[str | None, int | None]:
    """(output tree, output schema) of `node` from history, each None where unknown."""
    names = node.spec.get("inputs", [])
    trees = {n: known[n][0] for n in names}
    if all(t is not None for t in trees.values()):
        row = conn.execute("SELECT output, schema, error FROM runs WHERE key=?",
                           (run_key(node.spec_hash, trees),)).fetchone()
        if row is not None and row["error"] is None:
            return row["output"], row["schema"]
    if node.spec["kind"] in ("dataset", "model"):
        row = conn.execute("SELECT schema FROM versions WHERE component=? AND spec_hash=?",
                           (node.component, node.spec_hash)).fetchone()
        return None, (row["schema"] if row else None)
    schemas = {n: known[n][1] for n in names}
    if any(s is None for s in schemas.values()):
        return None, None
    row = conn.execute("SELECT schema FROM versions WHERE component=? AND spec_hash=? AND expects=?",
                       (node.component, node.spec_hash, schemas_key(schemas))).fetchone()
    return None, (row["schema"] if row else None)


def prune_reason(conn: sqlite3.Connection, node: Node, known: dict) -> str | None:
    """Why `node` cannot follow this prefix, from history and signatures; None if it may."""
    schemas = {n: known[n][1] for n in node.spec.get("inputs", [])}
    if any(s is None for s in schemas.values()):
        return None
    return compat_reason(conn, node, schemas)


def enumerate_candidates(conn: sqlite3.Connection, levels: list[Level]) -> tuple[list[Candidate], int]:
    """Depth-first walk of the tree; returns surviving candidates and the count of pruned leaves."""
    out: list[Candidate] = []
    pruned = 0

    def walk(depth: int, path: list[tuple[Node, str]], known: dict, missing: int) -> None:
        nonlocal pruned
        if depth == len(levels):
            out.append(Candidate(tuple(n for n, _ in path), tuple(lbl for _, lbl in path), missing))
            return
        for node, label in zip(levels[depth].nodes, levels[depth].labels):
            if prune_reason(conn, node, known) is not None:
                pruned += _leaves(levels, depth + 1)
                continue
            tree, schema = _predict(conn, node, known)
            walk(depth + 1, path + [(node, label)], {**known, node.component: (tree, schema)},
                 missing + (tree is None))

    walk(0, [], {}, 0)
    return out, pruned


def recheck(conn: sqlite3.Connection, candidate: Candidate) -> str | None:
    """Re-walks one path against the history as it is now (earlier runs may have failed)."""
    known: dict = {}
    for node in candidate.nodes:
        reason = prune_reason(conn, node, known)
        if reason is not None:
            return reason
        known[node.component] = _predict(conn, node, known)
    return None


def _leaves(levels: list[Level], depth: int) -> int:
    count = 1
    for level in levels[depth:]:
        count *= len(level.nodes)
    return count


def full_tree_size(levels: list[Level]) -> int:
    return _leaves(levels, 0)


def estimate(candidate: Candidate, done: list[Candidate], metric: str) -> float | None:
    """Mean metric of the evaluated candidates sharing the most specs with `candidate`."""
    scored = [c for c in done if metric in c.metrics]
    if not scored:
        return None
    overlap = [(sum(a.spec_hash == b.spec_hash for a, b in zip(c.nodes, candidate.nodes)), c.metrics[metric])
               for c in scored]
    best = max(n for n, _ in overlap)
    near = [m for n, m in overlap if n == best]
    return sum(near) / len(near)


def next_candidate(pending: list[Candidate], done: list[Candidate], metric: str, maximize: bool) -> Candidate:
    """The most promising pending candidate: free ones first, then best estimate, then cheapest."""
    def key(c: Candidate):
        guess = estimate(c, done, metric)
        value = 0.0 if guess is None else (-guess if maximize else guess)
        return (c.missing > 0, guess is None, value, c.missing)
    return min(pending, key=key)
