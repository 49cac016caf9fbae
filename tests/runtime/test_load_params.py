"""The runtime reads params.npz as np.load would, without holding a second copy of the weights."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from graphopt.errors import ArtifactError
from graphopt.runtime import tvm_rt
from graphopt.runtime.session import _load_params

BIG_MB = 64


def _arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"p0": rng.standard_normal((3, 5)).astype(np.float32),
            "p1": np.array(2.5, dtype=np.float32),  # 0-d: a scalar weight (the OCR recognizer has some)
            "p2": np.asfortranarray(rng.standard_normal((4, 6))),  # np.save keeps it Fortran-ordered
            "p3": np.array([True, False, True]),
            "p4": rng.standard_normal(7).astype(np.float16),
            "p5": np.arange(6, dtype=np.int64).reshape(2, 3),
            "p6": np.zeros((0, 4), np.float32)}


def test_params_load_with_their_shapes_dtypes_and_values(tmp_path):
    arrays = _arrays()
    np.savez(tmp_path / "params.npz", **arrays)
    loaded = _load_params(tmp_path / "params.npz", list(arrays), tvm_rt.device("cpu", 0))
    for (name, want), got in zip(arrays.items(), loaded, strict=True):
        out = tvm_rt.to_numpy(got)
        assert out.shape == want.shape and out.dtype == want.dtype, name
        np.testing.assert_array_equal(out, want)


def test_a_truncated_archive_is_one_artifact_error(tmp_path):
    np.savez(tmp_path / "params.npz", p0=np.ones((256, 256), np.float32))
    data = (tmp_path / "params.npz").read_bytes()
    (tmp_path / "params.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactError, match="cannot read parameters"):
        _load_params(tmp_path / "params.npz", ["p0"], tvm_rt.device("cpu", 0))


PEAK = """
import sys, numpy as np
from graphopt.runtime import tvm_rt
from graphopt.runtime.session import _load_params
def kb(key): return int(next(l for l in open("/proc/self/status") if l.startswith(key)).split()[1])
dev = tvm_rt.device("cpu", 0)
_load_params(sys.argv[2], ["p0"], dev)  # a small file first: libraries and allocator, not measured
before = kb("VmHWM")
kept = _load_params(sys.argv[1], ["p0"], dev)
print((kb("VmHWM") - before) * 1024)
"""


def test_loading_holds_one_copy_of_the_weights(tmp_path):
    """The peak grows by about the weights' size, not twice it (np.load then copy did)."""
    size = BIG_MB << 20
    np.savez(tmp_path / "params.npz", p0=np.ones(size // 4, np.float32))
    np.savez(tmp_path / "small.npz", p0=np.ones(16, np.float32))
    command = [sys.executable, "-c", PEAK, str(tmp_path / "params.npz"), str(tmp_path / "small.npz")]
    grown = int(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
    assert size * 0.9 <= grown <= size * 1.5
