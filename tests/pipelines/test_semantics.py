"""commit / branch / checkout / log / diff / merge semantics on the toy pipeline."""

from __future__ import annotations

import itertools

import pytest

from graphopt.pipelines.errors import PipelineError, SchemaConflictError, UnknownBranchError
from graphopt.pipelines.history import diff, log, version_names
from graphopt.pipelines.merge import Objective, levels_for, merge, merge_base
from tests.pipelines.conftest import py


def names(repo, ref=None):
    return version_names(repo, repo.commit_row(repo.resolve(ref or repo.current_branch())))


def test_first_commit_names_versions_branch_at_schema_increment(toy_repo):
    assert names(toy_repo) == {"data": "main@0.0", "prep": "main@0.0", "fit": "main@0.0", "score": "main@0.0"}
    assert toy_repo.commit_row(toy_repo.head("main")).metrics["score"] >= 0


def test_commit_reruns_only_the_changed_suffix(toy_repo):
    py(toy_repo, "fit", "fit", ["prep"], width=4, gain=2.0)
    ex = toy_repo.executor()
    steps = ex.run_path(toy_repo.working("main"))
    assert [s.reused for s in steps] == [True, True, False, False]
    toy_repo.record_commit("main", toy_repo.working("main"), steps, "gain 2")
    assert names(toy_repo)["fit"] == "main@0.1" and names(toy_repo)["prep"] == "main@0.0"


def test_unchanged_commit_is_refused(toy_repo):
    with pytest.raises(PipelineError, match="nothing to commit"):
        toy_repo.commit("again")


def test_schema_change_without_downstream_update_is_a_conflict(toy_repo):
    py(toy_repo, "prep", "prep", ["data"], repeat=2)
    with pytest.raises(SchemaConflictError, match="conflicting schema: fit"):
        toy_repo.commit("wider")
    py(toy_repo, "fit", "fit", ["prep"], width=8)
    toy_repo.commit("wider + fit for it")
    assert names(toy_repo)["prep"] == "main@1.0"  # new schema number, counter restarts


def test_branch_checkout_log_diff(toy_repo):
    base = toy_repo.head("main")
    toy_repo.create_branch("dev")
    toy_repo.checkout("dev")
    py(toy_repo, "score", "score", ["fit"], bonus=3.0)
    toy_repo.commit("bonus")
    assert toy_repo.head("main") == base and toy_repo.current_branch() == "dev"
    assert [c.message for c, _ in log(toy_repo)] == ["bonus", "base"]
    assert [c.message for c, _ in log(toy_repo, "main")] == ["base"]
    changes, metrics = diff(toy_repo, "main", "dev")
    assert [c.component for c in changes] == ["score"] and "score" in metrics
    with pytest.raises(UnknownBranchError, match="unknown branch 'nope'"):
        toy_repo.checkout("nope")
    with pytest.raises(PipelineError, match="already exists"):
        toy_repo.create_branch("dev")


def _two_branches(repo):
    """a: prep factor 3 and 0.5; b: fit gain 2, score bonus 0.1 -> 3 x 2 x 2 candidates."""
    repo.create_branch("a")
    repo.create_branch("b")
    repo.checkout("a")
    for factor in (3.0, 0.5):
        py(repo, "prep", "prep", ["data"], factor=factor)
        repo.commit(f"factor {factor}")
    repo.checkout("b")
    py(repo, "fit", "fit", ["prep"], width=4, gain=2.0)
    repo.commit("gain 2")
    py(repo, "score", "score", ["fit"], bonus=0.1)
    repo.commit("bonus 0.1")
    repo.checkout("a")


def _exhaustive_best(repo, metric="score"):
    """Every combination of the merge tree's levels run with a fresh executor (no pruning)."""
    ours, theirs = repo.head("a"), repo.head("b")
    levels = levels_for(repo, ours, theirs, merge_base(repo, ours, theirs))
    best = None
    for combo in itertools.product(*[lvl.nodes for lvl in levels]):
        steps = repo.executor().run_path(list(combo))
        value = repo.step_metrics(steps)[metric]
        best = value if best is None else max(best, value)
    return best, len(levels)


def test_merge_picks_the_exhaustive_best_and_reuses_history(toy_repo):
    _two_branches(toy_repo)
    result = merge(toy_repo, "b", Objective.parse("score", True, None))
    assert result.tree_leaves == 1 * 3 * 2 * 2
    merged = toy_repo.commit_row(result.commit)
    assert len(merged.parents) == 2 and merged.branch == "a"
    assert sum(c.status == "reused" for c in result.candidates) >= 3  # branch heads + base were stored
    best, _ = _exhaustive_best(toy_repo)
    assert merged.metrics["score"] == pytest.approx(best)
    assert names(toy_repo)["prep"].startswith("a@") and names(toy_repo)["fit"].startswith("b@")
    with pytest.raises(PipelineError, match="already up to date"):
        merge(toy_repo, "b", Objective.parse("score", True, None))


def test_merge_prunes_incompatible_pairs_from_history(toy_repo):
    toy_repo.create_branch("w")
    toy_repo.checkout("w")
    py(toy_repo, "prep", "prep", ["data"], repeat=2)
    py(toy_repo, "fit", "fit", ["prep"], width=8)
    toy_repo.commit("wide")
    toy_repo.checkout("main")
    py(toy_repo, "score", "score", ["fit"], bonus=2.0)
    toy_repo.commit("bonus 2")
    result = merge(toy_repo, "w", Objective.parse("score", True, None))
    assert result.pruned == 2 * 2  # (wide prep, fit w4) and (narrow prep, fit w8), x 2 score versions
    assert all(c.status != "failed" for c in result.candidates)


def test_budget_limits_new_runs_and_pareto_returns_a_front(toy_repo):
    _two_branches(toy_repo)
    result = merge(toy_repo, "b", Objective.parse(None, None, "score:max,cost:min"), budget=2)
    ran = [c for c in result.candidates if c.status == "ran"]
    assert len(ran) <= 2 and any(c.status == "skipped" for c in result.candidates)
    assert result.pareto and result.best in result.pareto


def test_fast_forward_when_ours_has_nothing_new(toy_repo):
    toy_repo.create_branch("dev")
    toy_repo.checkout("dev")
    py(toy_repo, "score", "score", ["fit"], bonus=3.0)
    head = toy_repo.commit("bonus")
    toy_repo.checkout("main")
    assert merge(toy_repo, "dev", Objective.parse("score", True, None)).fast_forward
    assert toy_repo.head("main") == head
