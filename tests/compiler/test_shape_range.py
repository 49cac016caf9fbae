"""One artifact for a range of batch sizes: compiled once, proven, run at many shapes against ORT."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest

from graphopt.cli import main
from graphopt.compiler import CompileOptions, TrainOptions, compile_model
from graphopt.errors import InputError
from graphopt.examples.range_models import batch_cnn, batch_mlp, encoder_block, two_inputs
from graphopt.frontend.ranges import DimRange
from graphopt.plan.record import revalidate
from graphopt.runtime.session import load

BATCHES = (1, 3, 7, 17, 32)  # both corners and odd interior points (tails of the symbolic GEMM tiles)


def _compile(model, tmp_path_factory, shapes: dict):
    out = tmp_path_factory.mktemp("range") / "art"
    return compile_model(model, out, CompileOptions(input_shapes=shapes))


@pytest.fixture(scope="module")
def mlp_art(tmp_path_factory):
    return _compile(batch_mlp(), tmp_path_factory, {"x": (DimRange(1, 32), 64)})


@pytest.fixture(scope="module")
def cnn_art(tmp_path_factory):
    return _compile(batch_cnn(), tmp_path_factory, {"x": (DimRange(1, 32), 3, 16, 16)})


@pytest.mark.parametrize("which", ["mlp", "cnn"])
def test_every_batch_in_the_range_matches_onnxruntime(which, mlp_art, cnn_art):
    model, result = (batch_mlp(), mlp_art) if which == "mlp" else (batch_cnn(), cnn_art)
    session, reference = load(result.artifact), ort.InferenceSession(model.SerializeToString())
    rng = np.random.default_rng(0)
    feature = tuple(result.manifest["inputs"][0]["shape"][1:])
    for batch in BATCHES:
        x = rng.standard_normal((batch, *feature)).astype(np.float32)
        got = session.run({"x": x})["y"]
        np.testing.assert_allclose(got, reference.run(None, {"x": x})[0], rtol=1e-4, atol=1e-5)


def _gemm_took_every_matmul(kernels: dict, count: int) -> None:
    """The range's matmul/conv kernels are the GEMM rule's: a rule that raises or declines on symbolic
    extents would hand them to the fallback (26x slower at batch 1 on the CNN, measured 2026-12-06)."""
    by_rule = kernels["by_rule"]
    assert by_rule.get("gemm") == count, by_rule
    assert not any("raised" in label for label in by_rule), by_rule


def test_the_range_convolutions_and_classifier_get_the_gemm_schedule(cnn_art, mlp_art):
    _gemm_took_every_matmul(cnn_art.plan["shape_range"]["kernels"], 3)  # two convolutions and the Gemm
    _gemm_took_every_matmul(mlp_art.plan["shape_range"]["kernels"], 2)


def test_a_batch_outside_the_range_is_refused_naming_it(mlp_art):
    session = load(mlp_art.artifact)
    with pytest.raises(InputError, match=r"x=1\.\.32x64") as info:
        session.run({"x": np.zeros((33, 64), np.float32)})
    assert "\n" not in str(info.value)


def test_the_plan_is_proven_and_reports_both_ends(cnn_art):
    record = cnn_art.plan["shape_range"]
    assert record["symbols"] == {"batch": [1, 32]} and record["points_checked"] >= 4
    at_max, at_min = record["at_max"], record["at_min"]
    assert at_max["arena_bytes"] == cnn_art.plan["arena_bytes"]
    assert at_min["lower_bound_bytes"] <= at_min["arena_bytes"] <= at_max["arena_bytes"]
    assert revalidate(cnn_art.plan).valid  # the stored buffers are the max's: the one validator agrees
    assert cnn_art.manifest["shape_symbols"] == {"batch": [1, 32]}
    assert cnn_art.manifest["inputs"][0]["dims"] == ["batch", 3, 16, 16]
    assert record["kernels"]["symbolic"] > 0 and not record["kernels"]["tvm_default"]


def test_a_shared_symbol_binds_both_inputs(tmp_path_factory):
    result = _compile(two_inputs(), tmp_path_factory, {"a": ((1, 8), 8)})  # b shares `batch`
    session = load(result.artifact)
    a, b = np.ones((3, 8), np.float32), np.ones((3, 8), np.float32)
    assert session.run({"a": a, "b": b})["y"].shape == (3, 4)
    with pytest.raises(InputError, match="earlier input"):
        session.run({"a": a, "b": np.ones((4, 8), np.float32)})


def test_cli_compiles_a_range_and_inspect_shows_both_ends(tmp_path, capsys):
    import onnx

    onnx.save(batch_mlp(), tmp_path / "m.onnx")
    assert main(["compile", str(tmp_path / "m.onnx"), "-o", str(tmp_path / "art"), "--input-shape", "x=1..4x64",
                 "--quiet"]) == 0
    capsys.readouterr()
    assert main(["inspect", str(tmp_path / "art")]) == 0
    text = capsys.readouterr().out
    assert "shape range    batch=1..4" in text and "min (batch=1)" in text and "max (batch=4)" in text
    assert main(["inspect", str(tmp_path / "art"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["shape_range"]["at_min"]["point"] == {"batch": 1}


@pytest.mark.slow
def test_a_transformer_block_runs_over_batch_and_sequence(tmp_path):
    """Two symbols (batch, seq); attention's batch x heads x seq x seq tensors are proven too."""
    model = encoder_block()
    result = compile_model(model, tmp_path / "art",
                           CompileOptions(input_shapes={"x": (DimRange(1, 4), DimRange(4, 32), 32)}))
    session, reference = load(result.artifact), ort.InferenceSession(model.SerializeToString())
    rng = np.random.default_rng(0)
    for batch, seq in [(1, 4), (4, 32), (1, 32), (4, 4), (3, 17), (3, 7)]:  # all four corners and odd ones
        x = rng.standard_normal((batch, seq, 32)).astype(np.float32)
        np.testing.assert_allclose(session.run({"x": x})["y"], reference.run(None, {"x": x})[0], rtol=1e-4,
                                   atol=1e-5)
    assert result.plan["shape_range"]["symbols"] == {"batch": [1, 4], "seq": [4, 32]}
    # q/k/v (one kernel), scores, context, output projection and the two MLP matmuls
    _gemm_took_every_matmul(result.plan["shape_range"]["kernels"], 6)


def test_fixed_shapes_record_as_before_and_ranges_as_text():
    assert CompileOptions(input_shapes={"x": (2, 64)}).as_manifest()["input_shapes"] == {"x": [2, 64]}
    assert not CompileOptions(input_shapes={"x": (2, 64)}).ranged
    ranged = CompileOptions(input_shapes={"x": (DimRange(1, 32), 64)})
    assert ranged.ranged and ranged.as_manifest()["input_shapes"] == {"x": ["1..32", 64]}


@pytest.mark.parametrize("options", [
    CompileOptions(target="cuda", input_shapes={"x": (DimRange(1, 4), 64)}),
    TrainOptions(input_shapes={"x": (DimRange(1, 4), 64)}),
])
def test_ranges_outside_cpu_inference_are_refused_in_one_line(options):
    with pytest.raises(InputError, match="shape range"):
        options.check()


@pytest.mark.slow
@pytest.mark.parametrize("which", ["cnn", "encoder"])
def test_the_benchmarked_range_artifacts_match_onnxruntime_across_their_range(which, tmp_path):
    """The exact models and ranges of benchmarks/shape_range.py, at both corners and odd sizes: their
    GEMM kernels tile symbolic extents (padded tails), so every timed artifact is also a checked one."""
    if which == "cnn":
        model, shape = batch_cnn(size=32, channels=(16, 32)), (DimRange(1, 32), 3, 32, 32)
        points, gemms = [(1, 3, 32, 32), (7, 3, 32, 32), (32, 3, 32, 32)], 3
    else:
        model, shape = encoder_block(dim=64), (DimRange(1, 16), DimRange(16, 128), 64)
        points, gemms = [(1, 16, 64), (3, 17, 64), (7, 101, 64), (16, 128, 64)], 6
    result = compile_model(model, tmp_path / "art", CompileOptions(input_shapes={"x": shape}))
    _gemm_took_every_matmul(result.plan["shape_range"]["kernels"], gemms)
    session, reference = load(result.artifact), ort.InferenceSession(model.SerializeToString())
    rng = np.random.default_rng(0)
    for point in points:
        x = rng.standard_normal(point).astype(np.float32)
        np.testing.assert_allclose(session.run({"x": x})["y"], reference.run(None, {"x": x})[0], rtol=1e-4,
                                   atol=1e-5)


@pytest.mark.slow
def test_the_zoo_style_encoder_compiles_once_for_batch_and_sequence(tmp_path):
    """benchmarks.shape_range's target model (issue #22: the zoo's encoder with batch and seq as symbols), one
    small layer here: pooled logits match ORT at all four corners and inside, and every matmul is the GEMM rule's."""
    from graphopt.examples.range_models import transformer_encoder

    model = transformer_encoder(layers=1, dim=32, heads=4)
    result = compile_model(model, tmp_path / "art",
                           CompileOptions(input_shapes={"x": (DimRange(1, 3), DimRange(4, 40), 32)}))
    session, reference = load(result.artifact), ort.InferenceSession(model.SerializeToString())
    rng = np.random.default_rng(1)
    for batch, seq in [(1, 4), (3, 40), (1, 40), (3, 4), (2, 17)]:
        x = rng.standard_normal((batch, seq, 32)).astype(np.float32)
        np.testing.assert_allclose(session.run({"x": x})["y"], reference.run(None, {"x": x})[0], rtol=1e-4,
                                   atol=1e-5)
    # q/k/v (one kernel), scores, context, output projection, the two MLP matmuls and the classifier
    _gemm_took_every_matmul(result.plan["shape_range"]["kernels"], 7)
