"""The manifest's target records the instruction-set features its code may use, in the
spelling of /proc/cpuinfo, so the runtime can refuse a CPU without them (no SIGILL)."""

from __future__ import annotations

import platform

import pytest
import tvm

from graphopt.lowering.target import make_target, target_record

X86 = platform.machine().lower() in ("x86_64", "amd64")


@pytest.mark.skipif(not X86, reason="x86 feature names")
def test_an_avx512_cpu_records_avx512_in_cpuinfo_spelling():
    record = target_record(tvm.target.Target({"kind": "llvm", "mcpu": "skylake-avx512"}))
    assert record["mcpu"] == "skylake-avx512"
    features = record["cpu_features"]
    assert {"avx512f", "avx512bw", "avx512dq", "avx512vl", "avx2", "fma", "sse4_2", "pni"} <= set(features)
    assert not {"sse4.2", "prefer-256-bit", "64bit", "aes"} & set(features)  # LLVM spelling, tuning, crypto
    assert features == sorted(features)


@pytest.mark.skipif(not X86, reason="x86 feature names")
def test_a_generic_target_needs_only_the_baseline():
    assert target_record(tvm.target.Target({"kind": "llvm"})) == {"kind": "llvm", "cpu_features": ["sse", "sse2"]}


def test_the_host_target_records_a_feature_list_and_cuda_none():
    assert isinstance(target_record(make_target("llvm"))["cpu_features"], list)
    assert "cpu_features" not in target_record(make_target("cuda"))
