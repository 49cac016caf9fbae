"""`--target cuda` builds here (nvcc, no GPU); running it needs a GPU."""

from __future__ import annotations

import shutil

import onnx
import pytest

from graphopt.cli import main
from graphopt.examples.models import EXAMPLES
from tests.conftest import revalidate

needs_nvcc = pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not installed")


@needs_nvcc
def test_cuda_artifact_builds_with_a_valid_plan(tmp_path, capsys):

    from graphopt.artifact import load_manifest, load_plan

    model_path = tmp_path / "m.onnx"
    onnx.save(EXAMPLES["residual_branch_net"](), model_path)
    assert main(["compile", str(model_path), "-o", str(tmp_path / "art"), "--target", "cuda", "--quiet",
                 "--time-limit", "2"]) == 0
    manifest = load_manifest(tmp_path / "art")
    assert manifest["target"] == {"kind": "cuda", "arch": "sm_90"}
    plan = load_plan(tmp_path / "art")
    assert revalidate(plan).valid
    assert plan["arena_bytes"] <= plan["tvm_stock_bytes"]
    capsys.readouterr()
    import tvm

    if not tvm.runtime.cuda(0).exist:
        assert main(["run", str(tmp_path / "art")]) == 2
        assert "no CUDA device" in capsys.readouterr().err
