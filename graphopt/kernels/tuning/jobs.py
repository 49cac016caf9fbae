"""Kernel tuning as executor jobs: one kernel per job, on local processes or a Ray cluster.

    driver:  legalize the model, list its kernels, drop those the db knows for this
             CPU, most expensive first, one `kernel_job` each (executor keeps K in flight)
    job:     legalize the model once per worker process (cached), find its kernel by
             workload key, skip it if a record for this node's CPU appeared meanwhile,
             tune it (search.tune_task) and commit the record itself

Why the job commits: a worker killed after its kernel is committed loses nothing,
and a retried job finds the record and returns at once. The database must be one
every worker reaches: an RDB URL (the study's PostgreSQL for a cluster) or, on one
machine, a directory. Each record carries the CPU of the node that measured it
(graphopt.cluster.node), so a cluster of mixed CPUs tunes each kernel once per
CPU model and never compares timings across them. The jobs of one node work in
parallel and time one at a time, never beside other work (graphopt.cluster.node_lock),
and which kernels are tuned is decided from their size, not a timing
(search.MIN_TUNED_ITERATIONS): the records are the same with 1 or K workers.
"""

from __future__ import annotations

import time
from functools import lru_cache
from pathlib import Path

from graphopt.cluster import Executor
from graphopt.errors import GraphoptError


def model_key(model: Path, shapes: dict) -> tuple:
    """(absolute path, shapes as a sorted tuple, the file's sha-256): what `legalized` and the jobs
    take (hashable, picklable). The hash keeps a reused worker from tuning a stale module when
    another file was written at the same path since."""
    from graphopt.artifact import sha256_file
    from graphopt.errors import ModelLoadError

    path = Path(model).resolve()
    if not path.is_file():
        raise ModelLoadError(f"{model}: no such model file")
    return str(path), tuple(sorted((k, tuple(v)) for k, v in shapes.items())), sha256_file(path)


@lru_cache(maxsize=2)
def legalized(model: str, shapes: tuple, sha256: str) -> tuple:
    """(legalized module, target) of `model` as compile schedules it (once per process and file);
    InputError when this node's file at that path is not the driver's (another sha-256)."""
    from graphopt.artifact import sha256_file
    from graphopt.cluster.node_lock import working
    from graphopt.errors import InputError
    from graphopt.frontend import prepare
    from graphopt.frontend.importer import to_relax
    from graphopt.lowering import prepack
    from graphopt.lowering.lower import legalize
    from graphopt.lowering.target import make_target

    if not Path(model).is_file() or sha256_file(Path(model)) != sha256:
        raise InputError(f"{model} on this node is missing or not the driver's model (same file, same path needed)")
    with working():  # seconds of CPU: never beside another job's timing
        imported = to_relax(prepare(Path(model), dict(shapes)).model)
        target = make_target("llvm")
        return prepack.mark_weights()(legalize(imported.mod, target)), target


def kernel_job(key: tuple, workload: str, db_location: str, trials: int, threads: int | None,
               deadline: float | None) -> dict:
    """Tunes one kernel into the db; returns what the driver sums (picklable). Holds the node's
    shared lock throughout; its timings trade it for the exclusive one (graphopt.cluster.node_lock)."""
    from graphopt.cluster.node_lock import working

    with working():
        return _tune_kernel(key, workload, db_location, trials, threads, deadline)


def _tune_kernel(key: tuple, workload: str, db_location: str, trials: int, threads: int | None,
                 deadline: float | None) -> dict:
    from graphopt.cluster.node import node_cpu
    from graphopt.kernels.tuning.db import TuningDB
    from graphopt.kernels.tuning.search import Summary, tasks_of, tune_task
    from graphopt.kernels.tuning.workload import target_key

    if threads is not None:
        from graphopt.threads import set_threads

        set_threads(threads)
    mod, target = legalized(*key)
    task = next(t for t in tasks_of(mod) if t.workload == workload)
    db = TuningDB.open(db_location)
    if db.get(workload, target_key(target), node_cpu()) is not None:
        return {"kernel": task.name, "already": True}
    if deadline is not None and time.time() > deadline:
        return {"kernel": task.name, "left": True}
    summary = Summary()
    tune_task(task, target, db, trials, threads, _NoBar(), summary, time.perf_counter(),
              None if deadline is None else deadline - time.time())
    return {"kernel": task.name, "trials": summary.trials, "tuned": summary.tuned, "cpu": node_cpu()}


def tune_model_on(executor: Executor, model: Path, db, trials: int, shapes: dict,
                  time_budget: float | None = None, threads: int | None = None, progress: bool = True):
    """`graphopt tune-kernels` through an executor: the same records as the in-process loop."""
    from tqdm import tqdm

    from graphopt.cluster.node import node_cpu
    from graphopt.kernels.tuning.search import Summary, iterations, tasks_of
    from graphopt.kernels.tuning.workload import target_key

    start = time.perf_counter()
    key = model_key(model, shapes)
    mod, target = legalized(*key)
    tasks = tasks_of(mod)
    summary = Summary(kernels=len(tasks))
    todo = [t for t in tasks if db.get(t.workload, target_key(target), node_cpu()) is None]
    summary.already = len(tasks) - len(todo)
    todo.sort(key=lambda t: -iterations(t, target))
    deadline = None if time_budget is None else time.time() + time_budget
    args = [(key, t.workload, str(db.location), trials, threads, deadline) for t in todo]
    with tqdm(total=len(args), desc="tune", unit="kernel", disable=not progress) as bar:
        _collect(executor, args, summary, bar)
    summary.left = sorted(summary.left)
    summary.seconds = time.perf_counter() - start
    db.refresh()
    return summary


def _collect(executor: Executor, args: list[tuple], summary, bar) -> None:
    """Runs the jobs, at most `executor.workers` at once, summing their counts; the first job
    error is raised after the others finished, so their records are all committed."""
    failure = None
    for _index, job in executor.in_flight(kernel_job, args, timeout=0.5):
        if job is None:
            continue
        bar.update(1)
        try:
            done = executor.result(job)
        except GraphoptError as exc:
            failure = failure or exc
            continue
        summary.trials += done.get("trials", 0)
        summary.tuned += done.get("tuned", [])
        summary.already += done.get("already", False)
        if done.get("left"):
            summary.left.append(done["kernel"])
    if failure is not None:
        raise failure


class _NoBar:
    """tune_task's progress bar inside a job: the driver shows progress per kernel."""

    def update(self, _n: int = 1) -> None:
        pass

    def set_postfix_str(self, _text: str) -> None:
        pass

    def write(self, _text: str) -> None:
        pass
