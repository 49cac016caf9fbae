"""Where tuning and merge jobs run: one small interface, two implementations.

    executor.py       the interface (submit a job, wait for some, take a result, cancel),
                      ClusterError, and open_executor(--cluster, --workers)
    local.py          in this process, or a pool of local worker processes (the default;
                      never imports Ray)
    ray_executor.py   a Ray cluster: a local one (`--cluster ray`) or a running one
                      (`--cluster ray://HOST:PORT`); Ray is the optional extra `cluster`
    node.py           the node's CPU (model name / vector width): what kernel timings are keyed by
    node_lock.py      builds side by side, timings one at a time per node (never beside a build)
    probe.py          small jobs that say where they ran (host, pid, CPU): cluster checks

A job is a module-level function and picklable arguments; it returns a picklable
value. Jobs write what they finish to shared state themselves (the study's RDB,
the kernel table, the pipeline store), so a worker killed mid-job loses only that
job, which the Ray executor runs again on another worker. Artifacts reach the node
that needs them through the same shared state, by content id
(graphopt.tune.artifact_table), so no tuning trial compiles what another node built.
"""

from graphopt.cluster.executor import ClusterError, Executor, Job, open_executor

__all__ = ["ClusterError", "Executor", "Job", "open_executor"]
