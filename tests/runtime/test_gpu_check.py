"""benchmarks/gpu_check: the prepare step (tiny models) and the dry run, the parts that need no GPU."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from benchmarks import gpu_check
from tests.conftest import REPO

pytestmark = pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not installed (CUDA artifacts)")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu") / "prepared"
    # --python 3.11 only: no wheel download in tests
    assert gpu_check.main(["prepare", "--out", str(out), "--tiny", "--python", "3.11", "--time-limit", "2"]) == 0
    return out


def test_prepare_writes_plans_references_and_a_bundle(prepared):
    info = json.loads((prepared / "prepared.json").read_text())
    assert info["failed"] == {}
    assert info["infer"]["arena_bytes"] <= info["infer"]["tvm_stock_bytes"]
    train = info["train"]
    assert train["swaps"] > 0 and train["swap_arena_bytes"] <= train["budget_bytes"] < train["noswap_arena_bytes"]
    assert 0.6 < train["budget_bytes"] / train["noswap_arena_bytes"] <= 0.67
    bundle = json.loads((prepared / "bundle" / "bundle.json").read_text())
    assert sorted(bundle["artifacts"]) == ["infer", "infer_stock", "train_noswap", "train_swap"]
    assert all(a["target"]["kind"] == "cuda" for a in bundle["artifacts"].values())
    assert (prepared / "bundle" / "site" / "graphopt" / "runtime" / "libgraphopt_swap.so").is_file()
    assert bundle["total_bytes"] < 60 * 2**20
    with np.load(prepared / "ref" / "train.npz") as ref:
        assert {"in:target", "out:loss"} <= set(ref.files) and np.isfinite(ref["out:loss"])
    with np.load(prepared / "ref" / "infer.npz") as ref:
        assert any(k.startswith("out:") for k in ref.files)


def test_dry_run_checks_everything_short_of_the_gpu(prepared):
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "run", str(prepared), "--dry-run"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("hashes verified") == 4
    assert "would measure: train train_noswap train_swap" in done.stdout
    if gpu_check.gpu_card() is None:
        assert "no GPU: nothing measured" in done.stdout
        assert "no CUDA device is available here" in done.stdout  # the device step got as far as the GPU


def test_run_without_a_gpu_and_without_dry_run_fails(prepared):
    if gpu_check.gpu_card() is not None:
        pytest.skip("a GPU is present")
    assert gpu_check.main(["run", str(prepared)]) == 3


def test_run_refuses_a_directory_that_was_not_prepared(tmp_path):
    with pytest.raises(SystemExit, match="not a gpu_check preparation"):
        gpu_check.main(["run", str(tmp_path), "--dry-run"])


def _measurements(err: float, arena: int, stock: int, torch_peak: int, t_noswap: float, t_swap: float) -> dict:
    mem = {"max_rel_error": err, "run_bytes_less_outputs": arena}
    return {
        "memory infer": mem, "memory infer_stock": {"max_rel_error": err, "run_bytes_less_outputs": stock},
        "memory train_noswap": {"max_rel_error": err, "run_bytes_less_outputs": 100},
        "memory train_swap": {"max_rel_error": err, "run_bytes_less_outputs": 66},
        "train train_noswap train_swap": {"train_noswap": {"median_ms": t_noswap}, "train_swap": {"median_ms": t_swap},
                                          "overlap": [{"hidden_fraction": 0.9}, {"hidden_fraction": 0.8}]},
        "torch": {"peak_less_outputs": torch_peak, "max_rel_error": err},
    }


def test_summary_computes_the_issue_fields():
    info = {"bundled": [], "train": {"budget_bytes": 66, "noswap_arena_bytes": 100, "predicted_step_seconds": 1.01,
                                     "predicted_noswap_step_seconds": 1.0}}
    card = {"card": "NVIDIA H100 80GB HBM3", "driver": "580"}
    good = gpu_check.summarize(info, card, _measurements(1e-5, 60, 100, 80, 10.0, 10.05))
    assert good["outputs_match"] is True and good["arena_vs_stock"] == pytest.approx(0.6)
    assert good["arena_vs_torch"] == pytest.approx(0.75) and good["swap_budget_ratio"] == pytest.approx(0.66)
    assert good["swap_overhead_measured"] == pytest.approx(0.005) and good["swap_overhead_predicted"] == pytest.approx(0.01)
    assert good["swap_hidden_fraction"] == pytest.approx(0.8)
    bad = gpu_check.summarize(info, card, _measurements(2e-3, 60, 100, 80, 10.0, 10.05))
    assert bad["outputs_match"] is False
    missing = _measurements(1e-5, 60, 100, 80, 10.0, 10.05)
    missing["memory train_swap"] = {"error": "boom"}
    assert gpu_check.summarize(info, card, missing)["outputs_match"] is False  # an unmeasured output is no match
    text = gpu_check.table(good)
    assert "NVIDIA H100 80GB HBM3" in text and "0.600" in text and "0.50%" in text


def test_overlap_counts_copy_time_before_compute_reached_the_wait():
    sys.path.insert(0, str(REPO / "benchmarks"))
    from gpu_check_device import overlap

    rows = [{"start_ms": 1.0, "end_ms": 3.0, "wait_ms": 5.0, "bytes": 10},   # hidden entirely
            {"start_ms": 4.0, "end_ms": 8.0, "wait_ms": 6.0, "bytes": 20},   # half hidden, 2 ms stall
            {"start_ms": 9.0, "end_ms": 10.0, "wait_ms": -1.0, "bytes": 5}]  # never waited for
    got = overlap(rows)
    assert got["copy_ms"] == pytest.approx(6.0) and got["hidden_ms"] == pytest.approx(4.0)
    assert got["stall_ms"] == pytest.approx(2.0) and got["hidden_fraction"] == pytest.approx(4.0 / 6.0)
    assert got["copies"] == 3 and got["waited_copies"] == 2 and got["unwaited_copy_ms"] == pytest.approx(1.0)
    assert got["bytes"] == 35


def test_run_writes_the_issue_json_from_its_measurements(prepared, tmp_path, monkeypatch):
    """The GPU path's orchestration, with the device processes replaced by canned results."""
    canned = _measurements(1e-5, 60, 100, 80, 10.0, 10.05)
    calls = []

    def fake_measure(_prepared, mode, names, timeout=gpu_check.STEP_TIMEOUT):
        calls.append(" ".join([mode, *names]))
        return canned.get(calls[-1], {"infer": {"median_ms": 1.0}, "infer_stock": {"median_ms": 1.1}})

    monkeypatch.setattr(gpu_check, "gpu_card", lambda: {"card": "NVIDIA H200", "driver": "580.1", "memory": "x"})
    monkeypatch.setattr(gpu_check, "measure", fake_measure)
    assert gpu_check.main(["run", str(prepared), "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "gpu-check.json").read_text())
    required = ("card", "outputs_match", "arena_bytes", "tvm_stock_bytes", "torch_peak_bytes", "swap_budget_ratio",
                "swap_overhead_measured", "swap_overhead_predicted")
    assert all(result[k] is not None for k in required)
    assert result["card"] == "NVIDIA H200" and result["outputs_match"] is True
    info = json.loads((prepared / "prepared.json").read_text())
    assert result["swap_budget_ratio"] == pytest.approx(info["train"]["budget_bytes"] / info["train"]["noswap_arena_bytes"])
    assert calls == [" ".join([m, *n]) for m, n in gpu_check.plan_steps({"bundled": ["train_swap"]})]
