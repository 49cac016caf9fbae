"""An artifact built for another CPU is refused in one line before its library loads.

Without the check, an artifact compiled for an AVX-512 CPU killed `graphopt run` (and a
service at start-up) with SIGILL on an AVX2 host. The comparison itself is tested on
made-up hosts everywhere; the end-to-end refusals need a host without AVX-512.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import graphopt.lowering.target as target_module
import graphopt.runtime
from graphopt.artifact import load_manifest
from graphopt.compiler import CompileOptions, compile_model
from graphopt.errors import ArtifactError
from graphopt.runtime import cpu_features
from graphopt.runtime.cpu_features import (
    check_host_cpu,
    cpuinfo_features,
    host_features,
    missing_features,
    parse_cpuinfo,
    required_features,
)
from tests.artifact_edit import edited_copy

HOST, HOST_WHY = host_features()
NO_AVX512 = pytest.mark.skipif(HOST is None or "avx512f" in HOST,
                               reason=f"needs a Linux host without avx512f ({HOST_WHY or 'this host has avx512f'})")
ON_LINUX = pytest.mark.skipif(HOST is None, reason=f"host CPU features unknown here ({HOST_WHY})")


def _model() -> onnx.ModelProto:
    w = helper.make_tensor("w", TensorProto.FLOAT, [64, 64], np.linspace(-1, 1, 64 * 64, dtype=np.float32))
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Relu", ["h"], ["y"])], "mm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [8, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [8, 64])], initializer=[w])
    return helper.make_model(graph, ir_version=10, opset_imports=[helper.make_opsetid("", 17)])


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """`host`: compiled for this CPU; `avx512`: compiled for skylake-avx512 (real AVX-512 code)."""
    work = tmp_path_factory.mktemp("cpu")
    onnx.save(_model(), work / "m.onnx")
    np.save(work / "x.npy", np.ones((8, 64), np.float32))
    compile_model(work / "m.onnx", work / "host", CompileOptions(time_limit=1.0))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(target_module, "host_cpu", lambda: "skylake-avx512")
        compile_model(work / "m.onnx", work / "avx512", CompileOptions(time_limit=1.0))
    return work


def _graphopt_run(art: Path, work: Path) -> subprocess.CompletedProcess:
    """In a subprocess: a SIGILL would show as a negative return code, not kill the tests."""
    return subprocess.run([sys.executable, "-m", "graphopt.cli", "run", str(art), "--input", f"x={work / 'x.npy'}"],
                          capture_output=True, text=True, timeout=300, check=False)


def _one_error_line(proc: subprocess.CompletedProcess) -> str:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


# ---------------------------------------------------------------- everywhere


def test_llvm_feature_names_become_cpuinfo_flags():
    names = cpuinfo_features(["sse4.2", "sse3", "avx512f", "avx512vnni", "lzcnt", "bmi", "fma",
                              "prefer-256-bit", "fast-gather", "64bit", "aes", "neon", "dotprod"])
    assert names == sorted(["sse4_2", "pni", "avx512f", "avx512_vnni", "abm", "bmi1", "fma", "asimd", "asimddp"])


def test_host_flags_are_read_from_cpuinfo_text():
    x86 = "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse sse2 pni avx avx2 fma\nbugs\t: x\n"
    arm = "processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd evtstrm asimddp sve\n"
    assert parse_cpuinfo(x86) == {"fpu", "sse", "sse2", "pni", "avx", "avx2", "fma"}
    assert parse_cpuinfo(arm) == {"fp", "asimd", "evtstrm", "asimddp", "sve"}
    assert parse_cpuinfo("") == frozenset()


def test_comparison_names_what_the_host_lacks(monkeypatch):
    target = {"kind": "llvm", "mcpu": "skylake-avx512", "cpu_features": ["avx2", "avx512bw", "avx512f", "sse2"]}
    assert missing_features(target["cpu_features"], {"sse2", "avx2"}) == ["avx512bw", "avx512f"]
    monkeypatch.setattr(cpu_features, "host_features", lambda: (frozenset({"sse2", "avx", "avx2", "fma"}), ""))
    with pytest.raises(ArtifactError, match="skylake-avx512.*lacks the CPU features avx512bw, avx512f") as info:
        check_host_cpu(target, "ART")
    assert "\n" not in str(info.value)
    assert check_host_cpu({**target, "cpu_features": ["sse2", "avx2"]}, "ART") == "ok"
    assert check_host_cpu({"kind": "cuda", "arch": "sm_90"}, "ART") == "ok"
    monkeypatch.setattr(cpu_features, "host_features", lambda: (None, "host CPU features are not read on Darwin"))
    assert check_host_cpu(target, "ART") == "not checked: host CPU features are not read on Darwin"


def test_artifacts_without_a_feature_list_use_only_certain_knowledge():
    assert "avx512f" in required_features({"kind": "llvm", "mcpu": "skylake-avx512"})[0]
    assert set(required_features({"kind": "llvm", "mcpu": "znver3"})[0]) == {"avx", "avx2", "fma"}
    needed, why = required_features({"kind": "llvm", "mcpu": "some-future-cpu"})
    assert needed == [] and "recompile" in why
    assert required_features({"kind": "llvm"}) == ([], "")
    with pytest.raises(ArtifactError, match="cpu_features"):
        required_features({"kind": "llvm", "cpu_features": "avx2"})


def test_an_artifact_built_here_records_its_features_and_loads_here(built):
    sess = graphopt.runtime.load(built / "host")
    features = sess.manifest["target"]["cpu_features"]
    assert isinstance(features, list) and features == sorted(features)
    if HOST is not None:
        assert sess.cpu_check == "ok" and not missing_features(features, HOST)
    assert sess.run({"x": np.ones((8, 64), np.float32)})["y"].shape == (8, 64)


@ON_LINUX
def test_a_feature_no_host_has_is_refused(built, tmp_path):
    art = edited_copy(built / "host", tmp_path / "art",
                      manifest=lambda m: m["target"]["cpu_features"].append("graphopt_no_such_flag"))
    with pytest.raises(ArtifactError, match="lacks the CPU features graphopt_no_such_flag"):
        graphopt.runtime.load(art)
    assert "graphopt_no_such_flag" in _one_error_line(_graphopt_run(art, built))


# ---------------------------------------------------------------- hosts without AVX-512


@NO_AVX512
def test_an_artifact_compiled_for_avx512_is_refused_not_sigill(built):
    assert "avx512f" in load_manifest(built / "avx512")["target"]["cpu_features"]
    with pytest.raises(ArtifactError, match="avx512f"):
        graphopt.runtime.load(built / "avx512")
    line = _one_error_line(_graphopt_run(built / "avx512", built))
    assert "avx512f" in line and "skylake-avx512" in line


@NO_AVX512
def test_a_manifest_rewritten_to_need_avx512f_is_refused(built, tmp_path):
    def need_avx512(manifest: dict) -> None:
        manifest["target"]["mcpu"] = "skylake-avx512"
        manifest["target"]["cpu_features"] = sorted({*manifest["target"]["cpu_features"], "avx512f"})

    art = edited_copy(built / "host", tmp_path / "art", manifest=need_avx512)
    with pytest.raises(ArtifactError, match="avx512f"):
        graphopt.runtime.load(art)
    assert "avx512f" in _one_error_line(_graphopt_run(art, built))


@NO_AVX512
def test_an_artifact_from_before_the_check_is_refused_by_its_cpu_name(built, tmp_path):
    def legacy(manifest: dict) -> None:
        manifest["target"] = {"kind": "llvm", "mcpu": "skylake-avx512"}  # no cpu_features: built before the check

    art = edited_copy(built / "avx512", tmp_path / "art", manifest=legacy)
    with pytest.raises(ArtifactError, match="avx512f"):
        graphopt.runtime.load(art)
    assert "avx512f" in _one_error_line(_graphopt_run(art, built))
