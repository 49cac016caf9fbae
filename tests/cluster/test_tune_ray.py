"""`graphopt tune --cluster ray`: trials run on the Ray workers; one worker killed mid-trial loses
no finished trial, its job runs again on another worker, and the study ends complete; the two
workers compile side by side but never time at once, nor beside a compile (graphopt.cluster.node_lock)."""

from __future__ import annotations

import itertools
import os
import signal
import threading
import time
from pathlib import Path

import onnx
from optuna.trial import TrialState

from graphopt.cli import main
from graphopt.examples.models import EXAMPLES
from graphopt.tune.cache import ArtifactCache
from tests.tune.conftest import SMALL_SPACE, load, tune_args

DEADLINE_S = 120


def _kill_a_running_worker(study_dir: Path, record: dict) -> None:
    """Once a trial is finished and another is running, SIGKILLs the Ray worker running it."""
    began = time.monotonic()
    while time.monotonic() - began < DEADLINE_S:
        time.sleep(0.1)
        if not (study_dir / "artifacts" / "compiles.jsonl").exists():
            continue  # the study is not there yet (opening it now would race the CLI creating its tables)
        trials = load(study_dir).get_trials()
        done = {t.number: tuple(t.values) for t in trials if t.state == TrialState.COMPLETE}
        running = [t for t in trials if t.state == TrialState.RUNNING and "worker" in t.user_attrs]
        if done and running:
            pid = int(running[0].user_attrs["worker"].rpartition(":")[2])
            os.kill(pid, signal.SIGKILL)
            record.update(done=done, killed=running[0].number, pid=pid)
            return


def test_tune_on_ray_survives_a_killed_worker(ray_cluster, tmp_path: Path, capsys) -> None:
    model, space = tmp_path / "mlp.onnx", tmp_path / "space.yaml"
    onnx.save(EXAMPLES["mlp"](), model)
    space.write_text(SMALL_SPACE)
    study_dir = tmp_path / "study"
    record: dict = {}
    killer = threading.Thread(target=_kill_a_running_worker, args=(study_dir, record), daemon=True)
    killer.start()
    argv = tune_args(model, space, study_dir, "--trials", "4", "--sampler", "random", "--workers", "2",
                     "--cluster", "ray")
    assert main(argv) == 0
    killer.join(timeout=1)
    assert record, "no worker was killed mid-trial"
    trials = load(study_dir).get_trials()
    complete = {t.number: tuple(t.values) for t in trials if t.state == TrialState.COMPLETE}
    lost = len(record["done"].keys() - complete.keys())
    with capsys.disabled():
        print(f"\nkilled Ray worker {record['pid']} in trial {record['killed']}; finished before: "
              f"{len(record['done'])}, lost: {lost}")
    assert lost == 0 and record["done"].items() <= complete.items()
    assert len(complete) == 4 and not [t for t in trials if t.state == TrialState.RUNNING]
    workers = {t.user_attrs["worker"] for t in trials if t.state == TrialState.COMPLETE}
    assert all(int(w.rpartition(":")[2]) != os.getpid() for w in workers)  # run by Ray workers, not here
    assert ArtifactCache(study_dir / "artifacts").recompilations() == 0
    assert "on ray" in capsys.readouterr().out
    done = [t.user_attrs for t in trials if t.state == TrialState.COMPLETE and "measure_window" in t.user_attrs]
    timed = sorted(a["measure_window"] for a in done)
    built = [a["compile_window"] for a in done if "compile_window" in a]
    assert len(timed) >= 2 and all(a[1] <= b[0] for a, b in itertools.pairwise(timed)), timed  # timed one by one
    assert not [(m, c) for m in timed for c in built if m[0] < c[1] and c[0] < m[1]]  # and never beside a compile


def test_bad_cluster_flag_is_one_line_and_creates_nothing(tmp_path: Path, capsys) -> None:
    model = tmp_path / "mlp.onnx"
    onnx.save(EXAMPLES["mlp"](), model)
    assert main(["tune", str(model), "--dir", str(tmp_path / "s"), "--cluster", "ray:/x"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: bad --cluster 'ray:/x'") and "\n" not in err
    assert not (tmp_path / "s" / "study.db").exists()
