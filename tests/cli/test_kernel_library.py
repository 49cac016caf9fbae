"""`graphopt compile --kernel-library`: forced oneDNN kernels end to end through the CLI, and the
one-line refusals (oneDNN missing, a range or training compile, a typo)."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest

from graphopt.cli import main
from graphopt.kernels.onednn import library
from tests.kernels.onednn_models import conv_gemm_model, write

MISSING = library.available()


@pytest.fixture
def model_path(tmp_path):
    return write(conv_gemm_model(), tmp_path)


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


@pytest.mark.skipif(MISSING is not None, reason=f"oneDNN not installed: {MISSING}")
def test_forced_onednn_compiles_runs_and_is_recorded(model_path, tmp_path):
    from graphopt.runtime import load

    out = tmp_path / "art"
    assert main(["compile", str(model_path), "--out", str(out), "--kernel-library", "onednn", "--time-limit", "1"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    plan = json.loads((out / "plan.json").read_text())
    assert manifest["options"]["kernel_library"] == "onednn"
    assert any(label.startswith("onednn") for label in plan["schedules"]["by_rule"])
    x = np.random.default_rng(3).standard_normal((1, 8, 12, 12)).astype(np.float32)
    expected = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    got = load(out).run({"x": x})["y"]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_forced_onednn_without_it_is_one_line(model_path, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GRAPHOPT_ONEDNN_ROOT", str(tmp_path / "nowhere"))
    assert main(["compile", str(model_path), "--out", str(tmp_path / "art"), "--kernel-library", "onednn"]) == 2
    assert "onednn" in _one_error_line(capsys)
    assert not (tmp_path / "art" / "manifest.json").exists()


def test_forced_library_on_a_range_compile_is_refused(model_path, tmp_path, capsys):
    code = main(["compile", str(model_path), "--out", str(tmp_path / "art"), "--kernel-library", "tvm",
                 "--input-shape", "x=1..4x8x12x12"])
    assert code == 2
    assert "fixed-shape inference" in _one_error_line(capsys)


@pytest.mark.skipif(MISSING is not None, reason=f"oneDNN not installed: {MISSING}")
def test_tune_kernels_portfolio_records_a_library_per_kernel(model_path, tmp_path, capsys):
    from graphopt.kernels.tuning.db import TuningDB

    db = tmp_path / "db"
    assert main(["tune-kernels", str(model_path), "--trials", "1", "--db", str(db), "--portfolio", "--quiet"]) == 0
    assert "oneDNN-capable kernels" in capsys.readouterr().out
    libraries = [r.extra.get("library") for r in TuningDB.open(db).records.values() if "library" in r.extra]
    assert libraries and set(libraries) <= {"onednn", "tvm"}


def test_tune_kernels_portfolio_without_onednn_is_one_line(model_path, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GRAPHOPT_ONEDNN_ROOT", str(tmp_path / "nowhere"))
    code = main(["tune-kernels", str(model_path), "--trials", "1", "--db", str(tmp_path / "db"), "--portfolio"])
    assert code == 2
    assert "onednn" in _one_error_line(capsys)
