"""Runs a study's remaining trials as jobs on an executor (graphopt.cluster), with progress.

One job = one trial (`worker.trial_job`): it loads the study from the storage, asks
for a configuration, compiles or reuses, measures, and commits the trial before
returning. So the executor decides only *where* a trial runs: in K local
processes (the default) or on a Ray cluster's workers, which then need the study's
storage URL and the artifact cache path to reach the same database and files.

Rounds: as many jobs as trials are left, K in flight at a time (K = --workers);
when a round ends short (a worker died
mid-trial and its trial was failed, not counted), the next round submits the
rest. A round in which no trial ran, or a job that failed, stops the run: the
failures are returned as lines, and the same command resumes the study later.
"""

from __future__ import annotations

from graphopt.cluster import Executor
from graphopt.errors import GraphoptError
from graphopt.tune.study_config import StudyConfig
from graphopt.tune.worker import fail_dead_local_trials, live_trials, trial_job

POLL_SECONDS = 0.5


def run_trials(executor: Executor, url: str, name: str, cache_dir: str, study, config: StudyConfig,
               quiet: bool) -> list[str]:
    """Runs trials until the budget is spent; returns one line per failed job (empty: all ran)."""
    from tqdm import tqdm

    errors: list[str] = []
    with tqdm(total=config.trials, desc="tune", unit="trial", disable=True if quiet else None) as bar:
        while not errors:
            fail_dead_local_trials(study)
            left = config.trials - len(live_trials(study))
            if left <= 0:
                break
            if _round(executor, [(url, name, cache_dir)] * left, study, config, bar, errors) == 0:
                break
        _update(bar, study, config)
    return errors


def _round(executor: Executor, args: list[tuple], study, config: StudyConfig, bar, errors: list[str]) -> int:
    """One job per trial left, `executor.workers` at a time; returns the trials run."""
    ran = 0
    try:
        for _index, job in executor.in_flight(trial_job, args, timeout=POLL_SECONDS):
            if job is not None:
                ran += _ran(executor, job, errors)
            _update(bar, study, config)
    except GraphoptError as exc:  # a job could not even be submitted (a local worker died: the pool is gone)
        _note(errors, str(exc))
    return ran


def _ran(executor: Executor, job, errors: list[str]) -> int:
    try:
        return executor.result(job)["ran"]
    except GraphoptError as exc:
        _note(errors, str(exc))
        return 0


def _note(errors: list[str], line: str) -> None:
    if line not in errors:
        errors.append(line)


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
