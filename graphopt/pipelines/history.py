"""Read-only views for log, diff and status: plain data, printed by the CLI."""

from __future__ import annotations

from dataclasses import dataclass

from graphopt.pipelines import components
from graphopt.pipelines.executor import schema_signature
from graphopt.pipelines.repo import Commit, Repository
from graphopt.pipelines.signatures import describe


@dataclass(frozen=True)
class Change:
    component: str
    old: str | None  # version names
    new: str | None
    detail: str


def version_names(repo: Repository, commit: Commit) -> dict[str, str]:
    return {e["component"]: repo.version(e["version"])["name"] for e in commit.pipeline}


def log(repo: Repository, ref: str | None = None, limit: int | None = None) -> list[tuple[Commit, dict[str, str]]]:
    """Commits reachable from `ref` (default: current branch), newest first, with version names."""
    head = repo.resolve(ref or repo.current_branch())
    ids = repo.ancestors(head)[:limit]
    return [(c, version_names(repo, c)) for c in (repo.commit_row(i) for i in ids)]


def diff(repo: Repository, a: str, b: str) -> tuple[list[Change], dict[str, tuple[float | None, float | None]]]:
    """Per-component version changes (spec and schema) and metric changes from `a` to `b`."""
    ca, cb = (repo.commit_row(repo.resolve(r)) if repo.resolve(r) else None for r in (a, b))
    va = {e["component"]: repo.version(e["version"]) for e in (ca.pipeline if ca else ())}
    vb = {e["component"]: repo.version(e["version"]) for e in (cb.pipeline if cb else ())}
    changes = []
    for name in dict.fromkeys([*va, *vb]):
        old, new = va.get(name), vb.get(name)
        if old and new and old["id"] == new["id"]:
            continue
        changes.append(Change(name, old and old["name"], new and new["name"], _detail(repo, name, old, new)))
    ma, mb = (ca.metrics if ca else {}), (cb.metrics if cb else {})
    metrics = {k: (ma.get(k), mb.get(k)) for k in sorted({*ma, *mb}) if ma.get(k) != mb.get(k)}
    return changes, metrics


def _detail(repo: Repository, name: str, old: dict | None, new: dict | None) -> str:
    if not old or not new:
        return "added" if new else "removed"
    parts = []
    if old["spec_hash"] != new["spec_hash"]:
        parts.append(f"spec: {components.summary(old['spec'])} -> {components.summary(new['spec'])}")
    if old["schema"] != new["schema"]:
        parts.append(f"schema {old['schema']} -> {new['schema']}: "
                     f"{describe(schema_signature(repo.conn, name, new['schema']))}")
    if not parts:
        parts.append("same spec and schema, new upstream schemas")
    return "; ".join(parts)
