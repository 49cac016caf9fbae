"""Metric-driven merge of two branches (MLCask), with a Pareto option.

    1. merge base = newest common ancestor; fast-forward when one head contains the other
    2. levels: every version of each component seen on either branch since the base
    3. candidates: the search tree walked with compatibility pruning (search.py)
    4. evaluate in priority order (stored results first, then by neighbours' metrics),
       at most `budget` candidates that need new runs; every step reuses stored
       outputs and compiled artifacts by id, so nothing runs or compiles twice.
       With `jobs` (a graphopt.cluster executor of K workers), rounds of the K most
       promising candidates run at once as `evaluate_job`s, each in a worker that
       opens the same repository (its path must be the same on every node)
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
        steps = executor.run_path(list(candidate.nodes))
    except (SchemaConflictError, ComponentRunError) as exc:
        candidate.status, candidate.reason = "failed", str(exc)
        return
    _score(repo, candidate, objective, steps, executor.runs > before)


def _score(repo: Repository, candidate: Candidate, objective: Objective, steps: list, ran: bool) -> None:
    candidate.steps = steps
    candidate.metrics = repo.step_metrics(steps)
    candidate.status = "ran" if ran else "reused"
    missing = [m for m, _ in objective.metrics if m not in candidate.metrics]
    if missing:
        raise PipelineError(f"metric {missing[0]!r} is not produced by the pipeline "
                            f"(it has: {', '.join(sorted(candidate.metrics)) or 'no metrics'})")


def evaluate_job(root: str, nodes: tuple[Node, ...]) -> dict:
    """One candidate's chain, run in a worker on the repository at `root` (an executor's job):
    {"steps", "runs"} or {"failed": why, "runs"}. Each step is stored as it finishes, so a worker
    killed mid-chain loses only the step it was running."""
    from graphopt.pipelines.repo import open_repo

    repo = open_repo(root)
    try:
        executor = repo.executor()
        try:
            steps = executor.run_path(list(nodes))
        except (SchemaConflictError, ComponentRunError) as exc:
            return {"failed": str(exc), "runs": executor.runs}
        return {"steps": steps, "runs": executor.runs}
    finally:
        repo.close()


def search(repo: Repository, levels: list[Level], objective: Objective, budget: int | None = None,
           progress: Callable[[Candidate, int, int], None] | None = None, say=None, jobs=None) -> MergeResult:
    """Walks, prunes and evaluates candidates (in this process, or K at a time on `jobs`); does not commit."""
    candidates, pruned = enumerate_candidates(repo.conn, levels)
    if jobs is None:
        executor = repo.executor(say)
        _search_here(repo, candidates, objective, budget, progress, executor)
        runs = executor.runs
    else:
        runs = _search_on(repo, candidates, objective, budget, progress, jobs)
    scored = [c for c in candidates if c.status in ("ran", "reused")]
    front = pareto_front(scored, objective) if len(objective.metrics) > 1 else []
    best = _pick(front or scored, objective)
    pruned += sum(c.status == "pruned" for c in candidates)
    return MergeResult(None, best, candidates, front, full_tree_size(levels), pruned, runs)


def _search_here(repo: Repository, candidates: list[Candidate], objective: Objective, budget: int | None,
                 progress, executor) -> None:
    """One candidate at a time, each chosen with every earlier result known."""
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


def _search_on(repo: Repository, candidates: list[Candidate], objective: Objective, budget: int | None,
               progress, jobs) -> int:
    """Rounds of up to `jobs.workers` candidates chosen as _search_here would, run as jobs at once;
    returns the steps run. Two candidates that would run the same unstored step (a shared prefix
    up to the first step without a stored result) never share a round: the step would run twice.
    Without a budget every surviving candidate is evaluated, as in process, so the pick (by
    metrics, ties in tree order), the steps run and each candidate's status are the same."""
    pending, done = list(candidates), []
    metric, maximize = objective.primary
    paid = runs = 0
    while pending:
        batch, deferred = [], []
        while pending and len(batch) < jobs.workers:
            cand = next_candidate(pending, done, metric, maximize)
            pending.remove(cand)
            if any(_same_unstored_step(cand, other) for other, _ in batch):
                deferred.append(cand)
                continue
            reason = recheck(repo.conn, cand)
            if reason is not None:
                cand.status, cand.reason = "pruned", reason
            elif cand.missing and budget is not None and paid + sum(c.missing > 0 for c, _ in batch) >= budget:
                cand.status, cand.reason = "skipped", "over the run budget"
            else:
                batch.append((cand, jobs.submit(evaluate_job, str(repo.root), cand.nodes)))
                continue
            if progress:
                progress(cand, len(candidates) - len(pending) - len(deferred), len(candidates))
        pending += deferred
        runs += _finish_round(repo, batch, objective, jobs, done)
        paid += sum(c.status == "ran" for c, _ in batch)
        if progress:
            for cand, _ in batch:
                progress(cand, len(candidates) - len(pending), len(candidates))
    return runs


def _same_unstored_step(a: Candidate, b: Candidate) -> bool:
    """Would a and b both run a's first unstored step? Missing steps are a suffix of the chain
    (a step after an unstored one has unknown inputs), and equal prefixes give equal run keys."""
    first = len(a.nodes) - a.missing
    return a.missing > 0 and a.nodes[:first + 1] == b.nodes[:first + 1]


def _finish_round(repo: Repository, batch: list, objective: Objective, jobs, done: list[Candidate]) -> int:
    """Waits for a round's jobs and scores their candidates; returns the steps they ran."""
    runs = 0
    for cand, job in batch:
        outcome = jobs.result(job)
        runs += outcome["runs"]
        if "failed" in outcome:
            cand.status, cand.reason = "failed", outcome["failed"]
        else:
            _score(repo, cand, objective, outcome["steps"], outcome["runs"] > 0)
        done.append(cand)
    return runs


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
          message: str | None = None, progress=None, say=None, jobs=None) -> MergeResult:
    """Merges branch `other` into the current branch by the objective; commits the winner
    (candidates evaluated in this process, or on `jobs`, a graphopt.cluster executor)."""
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
    result = search(repo, levels, objective, budget, progress, say, jobs)
    if result.best is None:
        raise PipelineError("no candidate pipeline ran to the end; nothing to merge")
    text = message or f"merge {other} into {branch} by {', '.join(m for m, _ in objective.metrics)}"
    result.commit = repo.record_commit(branch, list(result.best.nodes), result.best.steps, text, extra_parents=(theirs,),
                                       base=ours)  # refused (HeadMovedError) if another commit landed meanwhile
    return result
