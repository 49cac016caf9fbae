"""The real graphopt flow: digits -> preprocess -> ONNX model -> graphopt compile -> evaluate, two users, merge."""

from __future__ import annotations

import itertools

import pytest

from graphopt.pipelines.maintenance import fsck
from graphopt.pipelines.merge import Objective, levels_for, merge, merge_base

pytestmark = pytest.mark.slow


def test_two_user_merge_matches_exhaustive_and_compiles_nothing_twice(tmp_path):
    from benchmarks.merge import run_from_scratch
    from benchmarks.pipeline_example.scenario import Scenario

    scenario = Scenario(tmp_path / "repo", tmp_path / "files", epochs=30, say=lambda _m: None)
    repo = scenario.build(versions=2)  # alice: standardize, pool2 (+ the refused conflict); bob: h64, greedy
    ours, theirs = repo.head("alice"), repo.head("bob")
    levels = levels_for(repo, ours, theirs, merge_base(repo, ours, theirs))
    result = merge(repo, "bob", Objective.parse("accuracy", True, None))
    assert result.pruned > 0 and result.best is not None
    # nothing compiles twice: one compile run per artifact id, on every branch and in the merge
    (compiles,) = repo.conn.execute("SELECT COUNT(*) FROM runs WHERE component='compile' AND error IS NULL").fetchone()
    (artifacts,) = repo.conn.execute("SELECT COUNT(DISTINCT artifact_id) FROM artifacts").fetchone()
    assert compiles == artifacts
    exhaustive = [run_from_scratch(repo, combo, tmp_path / f"x{i}")
                  for i, combo in enumerate(itertools.product(*[lvl.nodes for lvl in levels]))]
    best = max(m["accuracy"] for m in exhaustive if m)
    assert result.best.metrics["accuracy"] == best
    failed = sum(c.status == "failed" for c in result.candidates)
    assert sum(m is None for m in exhaustive) == result.pruned + failed  # pruned only what cannot run
    assert fsck(repo).clean
