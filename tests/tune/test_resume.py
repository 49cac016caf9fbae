"""A worker killed mid-study loses no finished trial; running the command again resumes the study.

On SQLite only: resuming goes through the same RDB storage code on both (a dead worker's trial is
failed with set_trial_state_values, the finished ones are read back), and a PostgreSQL run of this
test cost 50-95 s of the suite. The server's own behaviour (several hosts on one study, the password
kept out of output) is tested in test_study.py and test_postgres.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
from optuna.trial import TrialState

from graphopt.cli import main
from graphopt.tune.cache import ArtifactCache
from graphopt.tune.storage import sqlalchemy_url
from tests.tune.conftest import Storage, load, tune_args

DEADLINE_S = 60


def _kill_a_worker_after_first_trial(url: str) -> tuple[dict, int]:
    """Waits for a finished trial and a worker holding a trial, SIGKILLs that worker; returns
    (finished trials before the kill: number -> values, the killed trial's number)."""
    storage = optuna.storages.RDBStorage(sqlalchemy_url(url))  # the study exists by now
    began = time.monotonic()
    while time.monotonic() - began < DEADLINE_S:
        time.sleep(0.1)
        trials = optuna.load_study(study_name="mlp", storage=storage).get_trials()
        done = {t.number: tuple(t.values) for t in trials if t.state == TrialState.COMPLETE}
        running = [t for t in trials if t.state == TrialState.RUNNING and "worker" in t.user_attrs]
        if done and running:
            os.kill(int(running[0].user_attrs["worker"].rpartition(":")[2]), signal.SIGKILL)
            return done, running[0].number
    raise AssertionError("the study never had a finished and a running trial")


def test_killed_worker_loses_nothing_and_the_study_resumes(tmp_path: Path, model: Path, space_file: Path,
                                                           sqlite_storage: Storage, capsys) -> None:
    storage = sqlite_storage
    study_dir = tmp_path / "study"
    url = storage.url(study_dir)
    argv = tune_args(model, space_file, study_dir, "--trials", "4", "--sampler", "random", *storage.args())
    parent = subprocess.Popen([sys.executable, "-m", "graphopt.cli", *argv], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert parent.stdout.readline().startswith("created study 'mlp'")  # printed once the study is in the storage
    done_before, killed = _kill_a_worker_after_first_trial(url)
    _out, err = parent.communicate(timeout=DEADLINE_S)
    assert parent.returncode == 1 and "a local worker process died" in err  # the death is reported, not hidden
    kept = {t.number: tuple(t.values) for t in load(study_dir, url=url).get_trials()
            if t.state == TrialState.COMPLETE}
    assert done_before.items() <= kept.items()  # every trial finished before the kill is still there

    assert main(argv) == 0
    assert "resuming study 'mlp'" in capsys.readouterr().out
    trials = load(study_dir, url=url).get_trials()
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 4 and not [t for t in trials if t.state == TrialState.RUNNING]
    assert {t.number: tuple(t.values) for t in complete}.items() >= kept.items()
    killed_trial = next(t for t in trials if t.number == killed)
    assert killed_trial.state in (TrialState.FAIL, TrialState.COMPLETE)  # FAIL unless it finished before the signal
    assert len({t.user_attrs["artifact_id"] for t in complete}) == 4
    assert ArtifactCache(study_dir / "artifacts").recompilations() == 0
