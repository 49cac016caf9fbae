"""oneDNN as a second kernel library (graphopt.kernels.onednn): matching, extern kernels, the
portfolio's records, and compiled models against ONNX Runtime with the plan unchanged.

oneDNN is the optional extra `graphopt[onednn]` (about 2 GB of SYCL/OpenCL/TBB runtimes come
with the PyPI wheel), so CI's `.[dev]` does not install it: the tests that build oneDNN
kernels skip, saying why, when it is missing. The matcher tests need only TVM and always run.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import numpy as np
import onnxruntime as ort
import pytest

from graphopt.kernels.onednn import library
from graphopt.kernels.onednn.match import ADD, BIAS, RELU, match
from tests.kernels.onednn_models import conv_gemm_model, grouped_conv_model, onednn_db, write

MISSING = library.available()
needs_onednn = pytest.mark.skipif(MISSING is not None, reason=f"oneDNN not installed: {MISSING}")


@pytest.fixture(scope="module")
def legalized(tmp_path_factory):
    """(model path, legalized module with weights marked, target) of the small conv/Gemm model."""
    from graphopt.frontend import prepare
    from graphopt.frontend.importer import to_relax
    from graphopt.lowering import prepack
    from graphopt.lowering.lower import legalize
    from graphopt.lowering.target import make_target

    path = write(conv_gemm_model(), tmp_path_factory.mktemp("onednn"))
    target = make_target("llvm")
    return path, prepack.mark_weights()(legalize(to_relax(prepare(path, {}).model).mod, target)), target


def _specs(mod) -> dict:
    import tvm

    return {gv.name_hint: match(f) for gv, f in mod.functions_items() if isinstance(f, tvm.tirx.PrimFunc)}


def test_matcher_reads_convolutions_and_products_back(legalized):
    """Every conv and matmul of the model is recognised with its real strides, padding and epilogue."""
    specs = [s for s in _specs(legalized[1]).values() if s is not None]
    convs = sorted((s.shape, s.epilogue) for s in specs if s.op == "conv2d")
    # n c h w o kh kw oh ow sh sw pt pl pb pr dh dw groups
    assert convs == sorted([
        ((1, 8, 12, 12, 8, 3, 3, 12, 12, 1, 1, 1, 1, 1, 1, 1, 1, 1), (BIAS, RELU)),
        ((1, 8, 12, 12, 8, 1, 1, 12, 12, 1, 1, 0, 0, 0, 0, 1, 1, 1), (BIAS, ADD, RELU)),
        ((1, 8, 12, 12, 4, 3, 3, 6, 6, 2, 2, 1, 1, 0, 0, 1, 1, 1), (BIAS,)),
    ])
    products = sorted((s.shape, s.epilogue) for s in specs if s.op == "matmul")
    assert products == [((1, 1, 10, 6, 0), ()), ((1, 1, 144, 10, 0), (BIAS,))]


def test_matcher_declines_what_it_does_not_know(legalized):
    """Kernels that are not a conv/matmul chain (the flatten, here) get no oneDNN call."""
    specs = _specs(legalized[1])
    declined = [name for name, spec in specs.items() if spec is None]
    assert declined and all("conv" not in name and "matmul" not in name for name in declined)


@needs_onednn
@pytest.mark.parametrize("mode", ["plain", "blocked"])
def test_compiled_with_onednn_matches_ort_and_keeps_the_plan(legalized, tmp_path, mode):
    """A database giving every kernel to oneDNN: the artifact runs them through the shim, its outputs
    match ONNX Runtime's on random inputs, and arena and lower bound equal the TVM-only compile's."""
    from graphopt.compiler import compile_model
    from graphopt.options import CompileOptions
    from graphopt.runtime import load

    path = legalized[0]
    _, count = onednn_db(path, tmp_path / "db", mode)
    assert count == 5
    plain = compile_model(path, tmp_path / "tvm", CompileOptions(time_limit=1.0))
    mixed = compile_model(path, tmp_path / "onednn", CompileOptions(time_limit=1.0, tuning_db=tmp_path / "db"))
    labels = mixed.plan["schedules"]["by_rule"]
    assert labels.get(f"onednn conv2d {mode}") == 3 and labels.get("onednn matmul") == 2
    for key in ("arena_bytes", "lower_bound_bytes"):
        assert mixed.plan[key] == plain.plan[key]
    x = np.random.default_rng(1).standard_normal((1, 8, 12, 12)).astype(np.float32)
    expected = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    got = next(iter(load(tmp_path / "onednn").run({"x": x}).values()))
    assert np.abs(expected).max() > 0.1
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


@needs_onednn
def test_portfolio_records_the_faster_library(legalized, tmp_path):
    """Each oneDNN-capable kernel gets a record saying which library won, with the times behind it;
    the choice is the faster median (oneDNN only when 3% faster than TVM)."""
    from graphopt.kernels.onednn.portfolio import MARGIN, tune_portfolio
    from graphopt.kernels.tuning.db import FILE, TuningDB

    _, mod, target = legalized
    rows = tune_portfolio(mod, target, TuningDB.open(tmp_path, create=True), progress=False)
    assert len(rows) == 5
    records = [json.loads(line) for line in (tmp_path / FILE).read_text().splitlines()]
    assert sorted(r["kernel"] for r in records) == sorted(r["kernel"] for r in rows)
    for row in rows:
        seconds = row["seconds"]
        fastest = min((m for m in seconds if m != "tvm"), key=seconds.get)
        wins = seconds[fastest] < seconds["tvm"] * MARGIN
        assert row["library"] == ("onednn" if wins else "tvm")
        assert not row["rejected"], row["rejected"]
    again = tune_portfolio(mod, target, TuningDB.open(tmp_path), progress=False)
    assert all(r["already"] for r in again)  # decided kernels are not timed twice


@needs_onednn
def test_forced_onednn_without_a_database(legalized):
    """kernel_library="onednn" gives every matched kernel to oneDNN; "tvm" none; a typo is refused."""
    from graphopt.errors import GraphoptError
    from graphopt.kernels.tuning.apply import applied_schedules, apply_schedules

    _, mod, target = legalized
    with target:  # the pass updates the module it is given: each gets a copy
        forced = applied_schedules(apply_schedules(None, "onednn")(mod.clone()))["by_rule"]
        plain = applied_schedules(apply_schedules(None, "tvm")(mod.clone()))["by_rule"]
    assert forced.get("onednn conv2d blocked") == 3 and forced.get("onednn matmul") == 2
    assert not any(label.startswith("onednn") for label in plain)
    with pytest.raises(GraphoptError, match="kernel library"):
        apply_schedules(None, "mkl")


@needs_onednn
def test_grouped_strided_dilated_convolution_matches_ort(tmp_path):
    """Groups, asymmetric padding, unequal strides and a dilation, in both layout modes, against ORT."""
    from graphopt.compiler import compile_model
    from graphopt.options import CompileOptions
    from graphopt.runtime import load

    path = write(grouped_conv_model(), tmp_path)
    x = np.random.default_rng(2).standard_normal((1, 8, 11, 13)).astype(np.float32)
    expected = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    for mode in ("plain", "blocked"):
        assert onednn_db(path, tmp_path / f"db_{mode}", mode)[1] == 1
        result = compile_model(path, tmp_path / mode, CompileOptions(time_limit=1.0, tuning_db=tmp_path / f"db_{mode}"))
        assert result.plan["schedules"]["by_rule"] == {f"onednn conv2d {mode}": 1}
        got = next(iter(load(tmp_path / mode).run({"x": x}).values()))
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_missing_onednn_is_one_line_not_a_fallback(legalized, tmp_path, monkeypatch):
    """A database that gives kernels to oneDNN, on a machine without it: OneDNNMissing naming the
    extra, not an artifact silently built with TVM kernels (runs without oneDNN installed)."""
    from graphopt.compiler import compile_model
    from graphopt.options import CompileOptions

    path = legalized[0]
    onednn_db(path, tmp_path / "db", "plain")
    monkeypatch.setenv("GRAPHOPT_ONEDNN_ROOT", str(tmp_path / "nowhere"))
    with pytest.raises(library.OneDNNMissing, match=r"graphopt\[onednn\]") as raised:
        compile_model(path, tmp_path / "art", CompileOptions(time_limit=1.0, tuning_db=tmp_path / "db"))
    assert "\n" not in str(raised.value)
    assert not (tmp_path / "art" / "manifest.json").exists()


@needs_onednn
@pytest.mark.skipif(importlib.util.find_spec("openvino") is None, reason="OpenVINO is the optional bench extra")
def test_an_older_tbb_loaded_first_is_named_in_the_error(legalized, tmp_path):
    """OpenVINO's libtbb.so.12 (oneTBB 2021) loaded before the artifact leaves oneDNN's SYCL CPU device
    uninitialised: the run fails (never a wrong answer) and the error says why and what to do. A
    subprocess, since a library once loaded stays for the rest of the process."""
    from graphopt.compiler import compile_model
    from graphopt.options import CompileOptions

    onednn_db(legalized[0], tmp_path / "db", "plain")
    compile_model(legalized[0], tmp_path / "art", CompileOptions(time_limit=1.0, tuning_db=tmp_path / "db"))
    script = ("import sys, numpy as np, openvino\n"
              "from graphopt.runtime import load\n"
              "load(sys.argv[1]).run({'x': np.ones((1, 8, 12, 12), np.float32)})\n")
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "art")], capture_output=True, text=True, check=False,
                          timeout=300)
    assert done.returncode != 0
    assert "older oneTBB" in done.stderr and "before that library" in done.stderr, done.stderr[-2000:]
