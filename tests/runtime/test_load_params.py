"""The runtime reads params.npz as np.load would, without holding a second copy of the weights."""

from __future__ import annotations

import mmap
import subprocess
import sys
from pathlib import Path

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


@pytest.mark.parametrize("big", [False, True])
def test_params_load_with_their_shapes_dtypes_and_values(tmp_path, big):
    """Below host_slab.MIN_BYTES in TVM's allocator; with a big weight, every one in the host slab
    (graphopt.runtime.host_slab), each 64-byte aligned, the slab advised for 2 MiB pages where the OS has them."""
    from graphopt.runtime.host_slab import MIN_BYTES

    arrays = _arrays()
    if big:
        arrays["p7"] = np.random.default_rng(1).standard_normal(MIN_BYTES // 4 + 5).astype(np.float32)
    np.savez(tmp_path / "params.npz", **arrays)
    loaded, slab = _load_params(tmp_path / "params.npz", list(arrays), tvm_rt.device("cpu", 0))
    for (name, want), got in zip(arrays.items(), loaded, strict=True):
        out = tvm_rt.to_numpy(got)
        assert out.shape == want.shape and out.dtype == want.dtype, name
        np.testing.assert_array_equal(out, want)
        assert np.from_dlpack(got).ctypes.data % 64 == 0, name
    assert (slab is not None) == big
    if big:
        assert slab.used == sum(a.nbytes for a in arrays.values())
        views = [np.from_dlpack(t) for t in loaded]
        assert all(slab.holds(v) for v in views if v.size)
        if Path("/sys/kernel/mm/transparent_hugepage/enabled").exists() and hasattr(mmap, "MADV_HUGEPAGE"):
            assert slab.advised


def test_a_truncated_archive_is_one_artifact_error(tmp_path):
    np.savez(tmp_path / "params.npz", p0=np.ones((256, 256), np.float32))
    data = (tmp_path / "params.npz").read_bytes()
    (tmp_path / "params.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactError, match="cannot read parameters"):
        _load_params(tmp_path / "params.npz", ["p0"], tvm_rt.device("cpu", 0))


def test_a_session_keeps_its_big_weights_in_the_slab_and_computes_onnx_runtimes_numbers(tmp_path):
    """A 4.4 MB MatMul weight: the session's weights live in its host slab, outputs as ONNX Runtime's."""
    from onnx import TensorProto, helper, numpy_helper

    from graphopt.examples.models import IR_VERSION, OPSET
    from tests.conftest import compile_run_check

    weight = np.random.default_rng(2).standard_normal((1100, 1000)).astype(np.float32)
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "big_weight",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 1100])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 1000])],
                              [numpy_helper.from_array(weight, "w")])
    model = helper.make_model(graph, ir_version=IR_VERSION, opset_imports=[helper.make_opsetid("", OPSET)])
    compile_run_check(model, tmp_path, tol=1e-3)
    from graphopt.runtime import load

    session = load(tmp_path / "art")
    assert session.host_slab is not None and session.host_slab.used >= weight.nbytes


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
