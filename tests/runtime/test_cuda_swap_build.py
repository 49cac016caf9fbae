"""The CUDA swap engine: built by the install when nvcc exists, skipped in one line when not,
loadable with ctypes, and wired so a CUDA artifact's swap steps reach it.

Running copies needs a GPU; here the tests stop where the machine does (no
driver): they check the build, the C ABI, and that a missing device is a clear
error rather than a crash or a silent CPU fallback."""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

needs_nvcc = pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not installed")
ABI = ("graphopt_swap_init", "graphopt_swap_set_compute_stream", "graphopt_swap_out", "graphopt_swap_wait_out",
       "graphopt_swap_in", "graphopt_swap_wait_in", "graphopt_swap_set_timing", "graphopt_swap_begin_step",
       "graphopt_swap_timeline", "graphopt_swap_pinned_bytes", "graphopt_swap_shutdown", "graphopt_swap_last_error")


def _setup_build_ext(tmp_path: Path, path_env: str) -> subprocess.CompletedProcess:
    """`setup.py build_ext` into tmp (never the source tree), as the package install runs it."""
    env = {**os.environ, "PATH": path_env}
    return subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "-b", str(tmp_path / "lib"),
                           "-t", str(tmp_path / "tmp")], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300, check=False)


@pytest.fixture(scope="module")
def engine_lib(tmp_path_factory) -> Path:
    if shutil.which("nvcc") is None:
        pytest.skip("nvcc not installed")
    tmp = tmp_path_factory.mktemp("swapbuild")
    done = _setup_build_ext(tmp, os.environ["PATH"])
    assert done.returncode == 0, done.stderr[-2000:]
    assert "built the CUDA swap engine" in done.stdout
    lib = tmp / "lib" / "graphopt" / "runtime" / "libgraphopt_swap.so"
    assert lib.stat().st_size > 0
    return lib


def test_install_builds_the_engine_into_the_runtime_package(engine_lib):
    exported = subprocess.run(["nm", "-D", "--defined-only", str(engine_lib)], capture_output=True, text=True,
                              check=True).stdout
    missing = [name for name in ABI if f" {name}" not in exported]
    assert missing == []


def test_install_without_nvcc_says_so_once_and_succeeds(tmp_path):
    bare = tmp_path / "bin"
    bare.mkdir()
    for tool in ("make", "gcc", "g++", "c++", "cc"):  # a C++ toolchain but no nvcc
        if shutil.which(tool):
            (bare / tool).symlink_to(shutil.which(tool))
    done = _setup_build_ext(tmp_path, str(bare))
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("nvcc not found") == 1
    assert not list((tmp_path / "lib").rglob("libgraphopt_swap.so"))


def _cuda_driver_present() -> bool:
    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    return True


def test_engine_loads_with_ctypes_and_reports_a_missing_device(engine_lib):
    """Loading needs libcudart only; init needs a driver and a device."""
    try:
        lib = ctypes.CDLL(str(engine_lib))
    except OSError as exc:
        pytest.skip(f"libcudart not loadable here: {exc}")
    if _cuda_driver_present():
        pytest.skip("a CUDA driver is present: the no-device path cannot be checked here")
    lib.graphopt_swap_last_error.restype = ctypes.c_char_p
    assert lib.graphopt_swap_init(0, None) == -1
    assert b"cudaSetDevice" in lib.graphopt_swap_last_error()


def test_runtime_wrapper_raises_one_clear_error_without_a_device(engine_lib, monkeypatch):
    from graphopt.runtime import cuda_swap

    if _cuda_driver_present():
        pytest.skip("a CUDA driver is present")
    monkeypatch.setenv("GRAPHOPT_SWAP_LIB", str(engine_lib))
    assert cuda_swap.library_path() == engine_lib
    with pytest.raises(cuda_swap.SwapEngineError, match="swap engine init: cudaSetDevice"):
        cuda_swap.CudaSwapEngine(cuda_swap.library_path(), 0)


def test_missing_engine_is_an_artifact_error(monkeypatch, tmp_path):
    from graphopt.errors import ArtifactError
    from graphopt.runtime import cuda_swap

    monkeypatch.setenv("GRAPHOPT_SWAP_LIB", str(tmp_path / "absent.so"))
    monkeypatch.setattr(cuda_swap, "__file__", str(tmp_path / "cuda_swap.py"))
    with pytest.raises(ArtifactError, match="swap engine libgraphopt_swap.so is missing"):
        cuda_swap.library_path()


def test_cpu_swaps_still_reach_the_cpu_functions_after_a_cuda_install(monkeypatch):
    """The registered names are process-global: they dispatch on the tensor's device."""
    import numpy as np
    import tvm
    import tvm_ffi

    from graphopt.runtime import cuda_swap
    from graphopt.runtime import swap as cpu_swap

    class FakeEngine:  # what install() would load on a GPU machine
        def wait_out(self, slot):
            self.waited = slot

        wait_in = wait_out

    monkeypatch.setitem(cuda_swap._STATE, "engine", FakeEngine())
    try:
        cuda_swap.install(0)
        cpu_swap.reset()
        tensor = tvm.runtime.tensor(np.arange(6, dtype=np.float32))
        tvm_ffi.get_global_func("graphopt.swap_out")(tensor, 3)
        assert cpu_swap.stats()["bytes_out"] == 24
        back = tvm.runtime.empty((6,), "float32")
        tvm_ffi.get_global_func("graphopt.swap_in")(back, 3)
        np.testing.assert_array_equal(back.numpy(), np.arange(6, dtype=np.float32))
    finally:
        cpu_swap.register()
        cpu_swap.reset()


@needs_nvcc
def test_makefile_builds_for_another_arch(tmp_path):
    out = tmp_path / "libgraphopt_swap.so"
    done = subprocess.run(["make", "-s", "-C", str(REPO / "cuda"), "ARCH=sm_80", f"OUT={out}"], capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert out.stat().st_size > 0
