"""One local Ray cluster (2 worker processes) for every test of this folder: starting one takes
seconds, so it is started once, and executors opened inside the tests join it rather than
start their own (RayExecutor leaves a cluster it did not start running)."""

from __future__ import annotations

import pytest

RAY_WORKERS = 2


@pytest.fixture(scope="package")
def ray_cluster():
    """The executor that started the cluster; shut down after this folder's last test, so its
    processes do not hold memory through the rest of the suite."""
    pytest.importorskip("ray", reason="ray is not installed (pip install 'graphopt[cluster]'): Ray tests skipped")
    from graphopt.cluster.ray_executor import RayExecutor

    executor = RayExecutor(None, RAY_WORKERS)
    yield executor
    executor.close()


from tests.tune.conftest import postgres_server  # noqa: E402,F401  (the throwaway PostgreSQL server, re-used)
