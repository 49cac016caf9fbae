"""Real studies on a tiny model: two worker processes on one study (an SQLite file, a PostgreSQL
database), dedup by artifact id across studies (and --commit reusing the artifact), pruning by the
planned peak before any build."""

from __future__ import annotations

import json
from pathlib import Path

from optuna.trial import TrialState

from graphopt.cli import main
from graphopt.tune.cache import ArtifactCache
from tests.tune.conftest import Storage, load, tune_args


def test_two_workers_share_one_study_then_a_second_study_reuses_every_artifact(
        tmp_path: Path, model: Path, space_file: Path, storage: Storage, capsys) -> None:
    first = tmp_path / "first"
    argv = tune_args(model, space_file, first, "--trials", "4", "--workers", "2", "--sampler", "random",
                     *storage.args())
    assert main(argv) == 0
    study = load(first, url=storage.url(first))
    trials = study.get_trials()
    assert len(trials) == 4 and sorted(t.number for t in trials) == list(range(4))
    assert len({t._trial_id for t in trials}) == 4
    assert all(t.state == TrialState.COMPLETE and len(t.values) == 2 for t in trials)
    assert len({t.user_attrs["worker"] for t in trials}) == 2  # both processes ran trials
    ids = {t.user_attrs["artifact_id"] for t in trials}
    assert len(ids) == 4  # a 4-configuration space, sampled without repeats
    assert all(t.user_attrs["compiled"] and not t.user_attrs["reused"] for t in trials)
    for t in trials:  # each stored value is what the artifact's own plan says
        plan = json.loads((first / "artifacts" / t.user_attrs["artifact_id"] / "plan.json").read_text())
        assert t.values[1] == plan["arena_bytes"]
    cache = ArtifactCache(first / "artifacts")
    assert cache.recompilations() == 0 and len(cache.compile_log()) == 4
    capsys.readouterr()

    # same cache, new study: every configuration's artifact exists, nothing is compiled or measured again
    repo = tmp_path / "repo"
    from graphopt.pipelines import init

    init(repo).close()
    second = tmp_path / "second"
    argv = tune_args(model, space_file, second, "--trials", "4", "--study", "again", "--cache",
                     str(first / "artifacts"), "--commit", "--repo", str(repo), *storage.args())
    assert main(argv) == 0
    out = capsys.readouterr().out
    again = load(second, "again", storage.url(second)).get_trials()
    assert len(again) == 4 and all(t.user_attrs["reused"] and not t.user_attrs["compiled"] for t in again)
    assert {t.user_attrs["artifact_id"] for t in again} == ids
    by_id = {t.user_attrs["artifact_id"]: t.values for t in trials}
    assert all(t.values == by_id[t.user_attrs["artifact_id"]] for t in again)  # the stored result, reused
    assert len(cache.compile_log()) == 4 and "recompilations 0" in out
    assert "stored artifact reused" in out

    from graphopt.pipelines import open_repo

    r = open_repo(repo)
    head = r.commit_row(r.head("main"))
    assert head.message.startswith("tune: trial")
    r.close()


def test_memory_limit_prunes_after_planning_without_building(tmp_path: Path, model: Path, space_file: Path,
                                                              sqlite_storage: Storage) -> None:
    storage = sqlite_storage
    study_dir = tmp_path / "pruned"
    assert main(tune_args(model, space_file, study_dir, "--trials", "2", "--memory-limit", "1000",
                          *storage.args())) == 0
    trials = load(study_dir, url=storage.url(study_dir)).get_trials()
    assert len(trials) == 2 and all(t.state == TrialState.PRUNED for t in trials)
    for t in trials:
        # the driver's `verify` stage judges the plan, then calls the tuner's hook: pruned there, before any build
        stages = t.user_attrs["stages"]
        assert stages[-2:] == ["plan", "verify"] and "build" not in stages
        assert t.user_attrs["peak_memory"] > 1000
        assert "--memory-limit 1000" in t.user_attrs["pruned_reason"]
    cache = ArtifactCache(study_dir / "artifacts")
    assert [e["outcome"] for e in cache.compile_log()] == ["pruned", "pruned"]
    assert not any(p.is_dir() and not p.name.startswith(".") for p in cache.root.iterdir())  # no artifact written
