"""graphopt bounds how long TVM's pool workers spin after a kernel, unless the
user chose a value (see graphopt/threads.py)."""

from __future__ import annotations

import os
import subprocess
import sys


def _spin_count_seen(env: dict) -> str:
    code = "import os, graphopt.runtime; print(os.environ['TVM_THREAD_POOL_SPIN_COUNT'])"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_runtime_import_bounds_spinning_and_keeps_a_user_value():
    from graphopt.threads import POOL_SPIN_COUNT

    env = {k: v for k, v in os.environ.items() if k != "TVM_THREAD_POOL_SPIN_COUNT"}
    assert _spin_count_seen(env) == str(POOL_SPIN_COUNT)
    assert _spin_count_seen(env | {"TVM_THREAD_POOL_SPIN_COUNT": "77"}) == "77"
