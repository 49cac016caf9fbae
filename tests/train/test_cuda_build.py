"""The CUDA swap engine compiles with nvcc (it cannot run without a GPU here)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.conftest import REPO


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not installed")
def test_swap_engine_compiles(tmp_path) -> None:
    out = tmp_path / "libgraphopt_swap.so"
    done = subprocess.run(["make", "-C", str(REPO / "cuda"), f"OUT={out}"], capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert out.stat().st_size > 0
