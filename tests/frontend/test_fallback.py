"""Fallback kernels: nodes TVM cannot import run with onnxruntime inside the plan.

Each compiled model is checked against ONNX Runtime on random non-zero inputs; the
compile itself runs the one validator on the plan that includes the fallback outputs.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnxruntime as ort
import pytest

import graphopt.runtime as rt
from graphopt.compiler import compile_model
from graphopt.errors import ArtifactError, InputError, ShapeError, UnsupportedOperatorError
from graphopt.frontend import prepare_model
from graphopt.frontend.fallback import partition, with_unique_node_names
from graphopt.options import CompileOptions
from tests.frontend.fallback_models import data_dependent_loop, fixed_loop, mixed_fallback

TVM_OPS = frozenset({"Conv", "TopK", "Relu", "Sigmoid", "Tanh", "Mul", "Add", "Identity"})


def _reference(model, feeds: dict) -> list[np.ndarray]:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    out = tmp_path_factory.mktemp("fallback") / "mixed"
    compile_model(mixed_fallback(), out, CompileOptions())
    return out


def test_mixed_model_matches_onnxruntime(mixed):
    x = np.random.default_rng(1).standard_normal((1, 2, 4, 4)).astype(np.float32)
    got = rt.load(mixed).run({"x": x})
    values, indices = _reference(mixed_fallback(), {"x": x})
    np.testing.assert_allclose(got["y"], values, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(got["i"], indices)


def test_plan_lists_each_fallback_node_and_why(mixed):
    kernels = json.loads((mixed / "plan.json").read_text())["fallback"]["kernels"]
    by_op = {k["op_type"]: k for k in kernels}
    assert set(by_op) == {"TopK", "Celu", "Gelu"}
    assert by_op["Gelu"]["domain"] == "com.microsoft"
    assert "converter failed" in by_op["TopK"]["reason"] and by_op["TopK"]["outputs"] == 2
    assert "no converter" in by_op["Celu"]["reason"]


def test_inspect_names_the_fallback_ops(mixed):
    out = subprocess.run([sys.executable, "-m", "graphopt.cli", "inspect", str(mixed)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    line = next(line for line in out.stdout.splitlines() if line.startswith("fallback"))
    assert "3 node(s)" in line and "Celu" in line and "com.microsoft:Gelu" in line and "TopK" in line


def test_fixed_trip_count_loop_is_planned_and_matches(tmp_path):
    compile_model(fixed_loop(), tmp_path / "art", CompileOptions())
    x = np.random.default_rng(2).uniform(0.2, 0.9, 4).astype(np.float32)
    got = rt.load(tmp_path / "art").run({"x": x})
    for name, ref in zip(("y", "z"), _reference(fixed_loop(), {"x": x})):
        np.testing.assert_allclose(got[name], ref, rtol=1e-5, atol=1e-6)


def test_loop_that_may_stop_early_is_refused_in_one_line():
    prepared = with_unique_node_names(prepare_model(data_dependent_loop()).model)
    with pytest.raises(ShapeError, match="no static shape") as err:
        partition(prepared, TVM_OPS, {})
    assert "\n" not in str(err.value)


def test_partition_passes_outer_scope_values_to_the_kernel():
    prepared = with_unique_node_names(prepare_model(fixed_loop()).model)
    part = partition(prepared, TVM_OPS, {})
    (kernel,) = part.kernels
    assert kernel.op_type == "Loop" and "x" in kernel.inputs and kernel.outputs == ("s", "steps")
    assert [n.op_type for n in part.model.graph.node].count("GraphoptFallback") == 1


def test_no_fallback_refuses_in_one_line(tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(mixed_fallback().SerializeToString())
    out = subprocess.run([sys.executable, "-m", "graphopt.cli", "compile", str(path), "-o", str(tmp_path / "a"),
                          "--no-fallback", "--quiet"], capture_output=True, text=True)
    assert out.returncode != 0
    assert len(out.stderr.strip().splitlines()) == 1 and "com.microsoft:Gelu" in out.stderr
    assert not (tmp_path / "a").exists()


def test_cuda_target_refuses_fallback_kernels(tmp_path):
    with pytest.raises(UnsupportedOperatorError, match="CPU targets only"):
        compile_model(mixed_fallback(), tmp_path / "a", CompileOptions(target="cuda"))


def test_runtime_without_onnxruntime_refuses_in_one_line(mixed):
    code = ("import sys; sys.modules['onnxruntime'] = None\n"
            "import graphopt.runtime as rt\n"
            f"rt.load({str(mixed)!r})\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode != 0 and "install onnxruntime" in out.stderr


def test_tampered_kernel_model_is_refused(mixed, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(mixed, copy)
    data = bytearray((copy / "fallback.npz").read_bytes())
    data[-20] ^= 0xFF
    (copy / "fallback.npz").write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="fallback.npz is corrupt"):
        rt.load(copy)


def test_runtime_only_bundle_refuses_fallback_artifacts(mixed, tmp_path):
    from graphopt.bundle import make_bundle

    with pytest.raises(InputError, match="onnxruntime fallback kernels"):
        make_bundle([mixed], tmp_path / "bundle")


def test_onnxruntime_failure_inside_a_kernel_is_one_line_kernel_error(mixed, monkeypatch):
    """An error onnxruntime raises while a fallback kernel runs crosses TVM's VM as KernelError."""
    import graphopt.runtime.fallback as fallback_runtime
    from graphopt.errors import KernelError

    def failing(name, session, label=""):
        def run(*tensors):
            raise KernelError(f"fallback kernel {name} ({label}): onnxruntime failed: simulated")
        return run

    monkeypatch.setattr(fallback_runtime, "_kernel", failing)
    session = rt.load(mixed)  # registers the failing kernels before the VM resolves them
    with pytest.raises(KernelError, match="Celu node .*onnxruntime failed: simulated") as err:
        session.run({"x": np.ones((1, 2, 4, 4), np.float32)})
    assert "\n" not in str(err.value)
