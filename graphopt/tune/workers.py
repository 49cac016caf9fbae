"""`--workers K`: K local worker processes on one study, and a progress bar over the storage.

Workers are separate interpreters (`python -m graphopt.tune.worker`), not
threads: a compile holds the GIL in TVM and LLVM for seconds, and a separate
process can be killed (or crash) without touching the others or the storage.
The parent only watches the storage: trials done, best value per objective.
Each worker's output goes to STUDY_DIR/worker-<i>.log; a worker that fails is
reported with the last line of its log, never silently dropped.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from graphopt.tune.study_config import StudyConfig

POLL_SECONDS = 0.5


@dataclass(frozen=True)
class WorkerExit:
    index: int
    pid: int
    returncode: int
    log: Path

    def last_line(self) -> str:
        try:
            lines = [ln for ln in self.log.read_text(errors="replace").splitlines() if ln.strip()]
        except OSError:
            return "(no log)"
        errors = [ln for ln in lines if ln.startswith("error:")]
        return (errors or lines or ["(empty log)"])[-1]


def start_workers(url: str, study: str, count: int, log_dir: Path, cache_dir: str | None = None) -> list:
    """Starts `count` worker processes; returns (index, Popen, log path) triples."""
    log_dir.mkdir(parents=True, exist_ok=True)
    started = []
    for i in range(count):
        log = log_dir / f"worker-{i}.log"
        argv = [sys.executable, "-m", "graphopt.tune.worker", "--storage", url, "--study", study]
        if cache_dir:
            argv += ["--cache", cache_dir]
        with open(log, "a") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ))
        started.append((i, proc, log))
    return started


def watch(started: list, study, config: StudyConfig, quiet: bool) -> list[WorkerExit]:
    """Shows progress until every worker has exited; returns how each ended."""
    from tqdm import tqdm

    exits: dict[int, WorkerExit] = {}
    with tqdm(total=config.trials, desc="tune", unit="trial", disable=True if quiet else None) as bar:
        while len(exits) < len(started):
            for i, proc, log in started:
                if i not in exits and proc.poll() is not None:
                    exits[i] = WorkerExit(i, proc.pid, proc.returncode, log)
            _update(bar, study, config)
            if len(exits) < len(started):
                time.sleep(POLL_SECONDS)
        _update(bar, study, config)
    return [exits[i] for i in sorted(exits)]


def stop_all(started: list) -> None:
    """Ctrl-C in the parent: end the workers it started (their finished trials are stored)."""
    for _i, proc, _log in started:
        if proc.poll() is None:
            proc.terminate()
    for _i, proc, _log in started:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _update(bar, study, config: StudyConfig) -> None:
    from optuna.trial import TrialState

    from graphopt.tune.report import fmt

    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
    bar.update(min(len(trials), config.trials) - bar.n)
    done = [t for t in trials if t.state == TrialState.COMPLETE and t.values]
    if done:
        best = {o: min(t.values[k] for t in done) for k, o in enumerate(config.objectives)}
        pruned = len(trials) - len(done)
        bar.set_postfix_str(", ".join(f"{o} {fmt(o, v)}" for o, v in best.items()) + f", pruned {pruned}")
