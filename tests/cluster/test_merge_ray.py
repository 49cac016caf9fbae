"""Merge evaluation on Ray: the candidates run as jobs on the 2 workers, and the merge picks
the same pipeline with the same metrics as the in-process merge of an identical repository."""

from __future__ import annotations

from pathlib import Path

from graphopt.pipelines.merge import Objective, merge
from tests.pipelines.conftest import build_base
from tests.pipelines.test_semantics import _two_branches


def _merged(root: Path, jobs) -> tuple:
    repo = build_base(root)
    try:
        _two_branches(repo)
        result = merge(repo, "b", Objective.parse(None, None, "score:max,cost:min"), jobs=jobs)
        front = sorted(tuple(c.labels) for c in result.pareto)
        statuses = sorted((c.labels, c.status) for c in result.candidates)
        return tuple(result.best.labels), result.best.metrics, front, result.runs, statuses
    finally:
        repo.close()


def test_merge_on_ray_picks_what_the_in_process_merge_picks(ray_cluster, tmp_path: Path) -> None:
    here = _merged(tmp_path / "here", None)
    there = _merged(tmp_path / "there", ray_cluster)
    assert there == here  # same winner, metrics, Pareto front, steps run, and each candidate's status
