"""The runtime uses one thread per physical core by default (TVM alone would take half the
cores on x86), and a TVM_NUM_THREADS the user exported wins."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from graphopt.threads import physical_cores

PROBE = ("import graphopt.runtime, tvm; "
         "print(tvm.get_global_func('runtime.NumThreads')())")


def _topology(root: Path, siblings: dict[int, str]) -> Path:
    for cpu, listed in siblings.items():
        folder = root / f"cpu{cpu}" / "topology"
        folder.mkdir(parents=True)
        (folder / "thread_siblings_list").write_text(listed + "\n")
    return root


def test_smt_siblings_count_once(tmp_path: Path) -> None:
    sys_cpu = _topology(tmp_path, {0: "0,2", 1: "1,3", 2: "0,2", 3: "1,3"})
    assert physical_cores({0, 1, 2, 3}, sys_cpu) == 2
    assert physical_cores({0, 2}, sys_cpu) == 1  # an affinity mask of one core's two threads


def test_without_smt_every_cpu_is_a_core(tmp_path: Path) -> None:
    assert physical_cores({0, 1}, _topology(tmp_path, {0: "0", 1: "1"})) == 2
    assert physical_cores({0, 1, 5}, tmp_path / "no-sysfs") == 3


def _runtime_threads(env: dict[str, str]) -> int:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, env=env)
    return int(done.stdout.strip())


def test_the_runtime_uses_every_physical_core_by_default() -> None:
    env = {k: v for k, v in os.environ.items() if k != "TVM_NUM_THREADS"}
    assert _runtime_threads(env) == physical_cores()


@pytest.mark.skipif(physical_cores() < 2, reason="needs 2 physical cores to tell the user's value from ours")
def test_a_value_the_user_exported_wins() -> None:
    assert _runtime_threads({**os.environ, "TVM_NUM_THREADS": "1"}) == 1


def test_set_threads_resizes_the_pool_in_process() -> None:
    """Tools that time kernels at a chosen count (tune-kernels --threads, benchmarks) resize TVM's
    pool through its API, never through the environment a user's process would inherit."""
    code = ("import graphopt.runtime; from graphopt.threads import current_threads, set_threads; "
            "set_threads(1); print(current_threads())")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "1"
