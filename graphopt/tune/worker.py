"""A worker: loads the study from the shared storage and runs trials until the budget is spent.

Any number of workers, in any processes or machines, may run this on one study:
the storage hands out trial numbers; a trial is inside the budget when fewer
than `trials` live trials (done, pruned, running, or failed by their own
configuration) precede it, so concurrent
workers never run more than asked (a surplus trial is closed as failed with
`surplus` set and the worker stops). Each finished trial is committed to the
storage when it ends, so killing a worker loses only the trial it was running.

`trial_job` is what `graphopt tune` submits through its executor (graphopt.cluster):
one trial per job, in a local worker process or on a Ray worker; `--join` runs
`run_worker` in its own process until the budget is spent.
"""

from __future__ import annotations

import os
import socket
import warnings
from dataclasses import dataclass

from graphopt.cluster.node_lock import working
from graphopt.errors import GraphoptError
from graphopt.tune import study_config
from graphopt.tune.artifact_table import artifact_table_for
from graphopt.tune.cache import ArtifactCache, worker_name
from graphopt.tune.errors import StorageError
from graphopt.tune.sampler import make_sampler
from graphopt.tune.space import from_dict
from graphopt.tune.storage import masked, open_storage

LIVE = ("COMPLETE", "PRUNED", "RUNNING")


class _Surplus(Exception):
    """This trial is past the budget: other workers already hold the last ones."""


@dataclass
class WorkerReport:
    ran: int = 0
    surplus: bool = False


def load_study(url: str, name: str, cache_dir: str | None = None):
    """(study, config, cache) of an existing study; StorageError when absent or not ours."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(url)
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        raise StorageError(f"no study {name!r} in {masked(url)}") from None
    config = study_config.read(study)  # the sampler needs the stored space: set it once that is read
    study_config.check_model(config)
    study.sampler = make_sampler(config.sampler, from_dict(config.space, config.train), config.trials, config.seed)
    return study, config, ArtifactCache(cache_dir or config.cache_dir, artifact_table_for(url))


def trial_job(url: str, name: str, cache_dir: str | None = None) -> dict:
    """One trial of the study (none when its budget is already taken): an executor's job.
    Returns {"ran": 0|1, "surplus": bool, "worker": host:pid} (picklable, for any executor)."""
    report = run_worker(url, name, cache_dir, limit=1)
    return {"ran": report.ran, "surplus": report.surplus, "worker": worker_name()}


def run_worker(url: str, name: str, cache_dir: str | None = None, limit: int | None = None) -> WorkerReport:
    """Runs trials until the study's budget is spent (or `limit` trials ran), holding the node's
    shared lock throughout (graphopt.cluster.node_lock): its own latency timings trade it for the
    exclusive one, so no other worker's timing on this node runs beside any of its work."""
    with working():
        return _run_worker(url, name, cache_dir, limit)


def _run_worker(url: str, name: str, cache_dir: str | None, limit: int | None) -> WorkerReport:
    import optuna

    study, config, cache = load_study(url, name, cache_dir)
    space = from_dict(config.space, config.train)
    report = WorkerReport()
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

    def objective(trial: optuna.Trial):
        from graphopt.tune.trial import evaluate

        trial.set_user_attr("worker", worker_name())
        if _budget_taken(study, trial.number, config.trials):
            trial.set_user_attr("surplus", True)
            raise _Surplus()
        params = {**space.fixed_values(), **{n: _suggest(trial, n, d) for n, d in space.distributions().items()}}
        try:
            outcome = evaluate(config, params, cache)
        except GraphoptError as exc:
            trial.set_user_attr("error", str(exc))
            raise
        for key, value in outcome.attrs.items():
            trial.set_user_attr(key, value)
        if outcome.pruned:
            raise optuna.TrialPruned(outcome.attrs.get("pruned_reason", ""))
        return tuple(outcome.values[o] for o in config.objectives)

    while not _budget_reached(study, config.trials) and (limit is None or report.ran < limit):
        fail_dead_local_trials(study)
        try:
            study.optimize(objective, n_trials=1, catch=(GraphoptError,))
        except _Surplus:
            report.surplus = True
            break
        report.ran += 1
    return report


def _suggest(trial, name: str, dist):
    from optuna.distributions import CategoricalDistribution, IntDistribution

    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(name, dist.choices)
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, log=dist.log)
    return trial.suggest_float(name, dist.low, dist.high, log=dist.log)


def live_trials(study) -> list:
    """Trials that use up the budget: done, pruned, running, or failed by their configuration
    (an `error` attr); a trial failed because its worker died does not."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    return [t for t in trials if t.state.name in LIVE or (t.state == TrialState.FAIL and "error" in t.user_attrs)]


def _budget_reached(study, trials: int) -> bool:
    return len(live_trials(study)) >= trials


def _budget_taken(study, number: int, trials: int) -> bool:
    return sum(1 for t in live_trials(study) if t.number < number) >= trials


def fail_dead_local_trials(study) -> int:
    """Marks failed the RUNNING trials of workers on this host whose process is gone.

    Why: a killed worker's trial stays RUNNING until the heartbeat grace period ends
    (journal storages have no heartbeat at all), and it would hold a slot of the
    budget; on the same host we can tell for sure that its process is dead.
    """
    from optuna.trial import TrialState

    host = socket.gethostname()
    failed = 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        who = str(t.user_attrs.get("worker", ""))
        name, _, pid = who.rpartition(":")
        if name == host and pid.isdigit() and not _alive(int(pid)):
            study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
            failed += 1
    return failed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
