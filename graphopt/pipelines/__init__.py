"""MLCask-style versioning of whole ML pipelines around graphopt artifacts.

    objects.py      content-addressed store (sha-256, atomic, verified on read)
    meta.py         SQLite metadata (WAL, transactions)
    signatures.py   schemas computed from outputs (tensor signatures)
    components.py   component specs and how each kind runs; builtins.py: dataset,
                    model, compile, evaluate
    executor.py     runs a chain, reusing every stored result by run key / artifact id
    repo.py         branches, commits, versions (`branch@schema.increment`)
    search.py       merge search tree, compatibility pruning, priority
    merge.py        metric-driven (or Pareto) merge
    history.py      log, diff;  maintenance.py: fsck, gc
"""

from graphopt.pipelines.merge import Objective, merge
from graphopt.pipelines.repo import Repository, init, open_repo

__all__ = ["Objective", "Repository", "init", "merge", "open_repo"]
