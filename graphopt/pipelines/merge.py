"""Metric-driven merge of two branches (MLCask), with a Pareto option.

    1. merge base = newest common ancestor; fast-forward when one head contains the other
    2. levels: every version of each component seen on either branch since the base
    3. candidates: the search tree walked with compatibility pruning (search.py)
    4. evaluate in priority order (stored results first, then by neighbours' metrics),
       at most `budget` candidates that need new runs; every step reuses stored
       outputs and compiled artifacts by id, so nothing runs or compiles twice
    5. pick the best by one metric (max or min), or from the Pareto set over several
    6. commit it on the current branch with both heads as parents
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from graphopt.errors import InputError
from graphopt.pipelines.errors import ComponentRunError, HeadMovedError, PipelineError, SchemaConflictError
from graphopt.pipelines.executor import Node
from graphopt.pipelines.meta import transaction
from graphopt.pipelines.repo import Repository
from graphopt.pipelines.search import Candidate, Level, enumerate_candidates, full_tree_size, next_candidate, recheck

MAXIMIZE_BY_DEFAULT = ("accuracy", "acc", "f1", "auc", "precision", "recall", "score")


@dataclass(frozen=True)
class Objective:
    """Metrics with directions; one metric = MLCask, several = choose from the Pareto set."""

    metrics: tuple[tuple[str, bool], ...]  # (name, maximize)

    @classmethod
    def parse(cls, metric: str | None, maximize: bool | None, pareto: str | None) -> Objective:
        """`--metric NAME [--maximize|--minimize]` or `--pareto m1,m2:min,...` (default accuracy, max)."""
        if metric and pareto:
            raise InputError("give --metric or --pareto, not both")
        if pareto:
            items = []
            for part in (p.strip() for p in pareto.split(",") if p.strip()):
                name, _, way = part.partition(":")
                if way not in ("", "max", "min"):
                    raise InputError(f"bad --pareto item {part!r} (NAME, NAME:max or NAME:min)")
                items.append((name, way == "max" if way else _default_max(name)))
            if len(items) < 2:
                raise InputError("--pareto needs at least two metrics")
            return cls(tuple(items))
        name = metric or "accuracy"
        return cls(((name, _default_max(name) if maximize is None else maximize),))

    @property
    def primary(self) -> tuple[str, bool]:
        return self.metrics[0]


def _default_max(name: str) -> bool:
    return name.split(".")[-1].lower() in MAXIMIZE_BY_DEFAULT


@dataclass
class MergeResult:
    commit: str | None
    best: Candidate | None
    candidates: list[Candidate]
    pareto: list[Candidate] = field(default_factory=list)
    tree_leaves: int = 0
    pruned: int = 0
    runs: int = 0
    fast_forward: bool = False


def merge_base(repo: Repository, a: str, b: str) -> str | None:
    ours = set(repo.ancestors(a))
    for c in repo.ancestors(b):  # newest first
        if c in ours:
            return c
    return None


def levels_for(repo: Repository, ours: str, theirs: str, base: str | None) -> list[Level]:
    """Per component, the distinct specs seen on either branch since the base (base included)."""
    before = set(repo.ancestors(base)) - {base} if base else set()
    commits = [c for c in dict.fromkeys(repo.ancestors(ours) + repo.ancestors(theirs)) if c not in before]
    order = [e["component"] for e in repo.commit_row(ours).pipeline]
    if [e["component"] for e in repo.commit_row(theirs).pipeline] != order:
        raise PipelineError("the branches' pipelines have different components; merge needs the same chain")
    seen: dict[str, dict[str, tuple[Node, list[str]]]] = {name: {} for name in order}
    for cid in commits:
        for entry in repo.commit_row(cid).pipeline:
            if entry["component"] not in seen:
                continue
            v = repo.version(entry["version"])
            node = Node(entry["component"], v["spec"])
            slot = seen[entry["component"]].setdefault(node.spec_hash, (node, []))
            if v["name"] not in slot[1]:
                slot[1].append(v["name"])
    return [Level(name, tuple(n for n, _ in seen[name].values()),
                  tuple("/".join(sorted(lbl)) for _, lbl in seen[name].values())) for name in order]


def _evaluate(repo: Repository, candidate: Candidate, objective: Objective, executor) -> None:
    reason = recheck(repo.conn, candidate)
    if reason is not None:
        candidate.status, candidate.reason = "pruned", reason
        return
    before = executor.runs
    try:
        candidate.steps = executor.run_path(list(candidate.nodes))
    except (SchemaConflictError, ComponentRunError) as exc:
        candidate.status, candidate.reason = "failed", str(exc)
        return
    candidate.metrics = repo.step_metrics(candidate.steps)
    candidate.status = "ran" if executor.runs > before else "reused"
    missing = [m for m, _ in objective.metrics if m not in candidate.metrics]
    if missing:
        raise PipelineError(f"metric {missing[0]!r} is not produced by the pipeline "
                            f"(it has: {', '.join(sorted(candidate.metrics)) or 'no metrics'})")


def search(repo: Repository, levels: list[Level], objective: Objective, budget: int | None = None,
           progress: Callable[[Candidate, int, int], None] | None = None, say=None) -> MergeResult:
    """Walks, prunes and evaluates candidates; does not commit."""
    candidates, pruned = enumerate_candidates(repo.conn, levels)
    executor = repo.executor(say)
    pending, done = list(candidates), []
    metric, maximize = objective.primary
    paid = 0
    while pending:
        cand = next_candidate(pending, done, metric, maximize)
        pending.remove(cand)
        if cand.missing and budget is not None and paid >= budget:
            cand.status, cand.reason = "skipped", "over the run budget"
        else:
            _evaluate(repo, cand, objective, executor)
            paid += cand.status == "ran"
            done.append(cand)
        if progress:
            progress(cand, len(candidates) - len(pending), len(candidates))
    scored = [c for c in candidates if c.status in ("ran", "reused")]
    front = pareto_front(scored, objective) if len(objective.metrics) > 1 else []
    best = _pick(front or scored, objective)
    pruned += sum(c.status == "pruned" for c in candidates)
    return MergeResult(None, best, candidates, front, full_tree_size(levels), pruned, executor.runs)


def pareto_front(cands: list[Candidate], objective: Objective) -> list[Candidate]:
    """The candidates no other candidate beats on every metric (and strictly on one)."""
    def vec(c: Candidate) -> tuple[float, ...]:
        return tuple(c.metrics[m] if up else -c.metrics[m] for m, up in objective.metrics)
    front = []
    for c in cands:
        v = vec(c)
        if not any(all(a >= b for a, b in zip(vec(o), v)) and vec(o) != v for o in cands):
            front.append(c)
    return front


def _pick(cands: list[Candidate], objective: Objective) -> Candidate | None:
    """Best by the metrics in order (lexicographic); ties keep the earliest in tree order."""
    if not cands:
        return None
    return max(cands, key=lambda c: tuple(c.metrics[m] if up else -c.metrics[m] for m, up in objective.metrics)
               + (-cands.index(c),))


def merge(repo: Repository, other: str, objective: Objective, budget: int | None = None,
          message: str | None = None, progress=None, say=None) -> MergeResult:
    """Merges branch `other` into the current branch by the objective; commits the winner."""
    branch = repo.current_branch()
    ours, theirs = repo.head(branch), repo.head(other)
    if theirs is None:
        raise PipelineError(f"branch {other!r} has no commits")
    if ours is None or ours in repo.ancestors(theirs):
        with transaction(repo.conn):
            if repo.head(branch) != ours:
                raise HeadMovedError(f"{branch} moved while merging (another commit landed); merge again")
            repo.conn.execute("UPDATE branches SET head=? WHERE name=?", (theirs, branch))
        return MergeResult(theirs, None, [], fast_forward=True)
    if theirs in repo.ancestors(ours):
        raise PipelineError(f"already up to date: {other} is merged into {branch}")
    levels = levels_for(repo, ours, theirs, merge_base(repo, ours, theirs))
    result = search(repo, levels, objective, budget, progress, say)
    if result.best is None:
        raise PipelineError("no candidate pipeline ran to the end; nothing to merge")
    text = message or f"merge {other} into {branch} by {', '.join(m for m, _ in objective.metrics)}"
    result.commit = repo.record_commit(branch, list(result.best.nodes), result.best.steps, text, extra_parents=(theirs,),
                                       base=ours)  # refused (HeadMovedError) if another commit landed meanwhile
    return result
