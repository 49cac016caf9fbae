"""Example and real models: valid ONNX, and ONNX Runtime gives finite, non-trivial outputs."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from graphopt.errors import ModelLoadError
from graphopt.examples import real_models
from graphopt.examples.models import EXAMPLES


def _run(model: onnx.ModelProto, seed: int = 0) -> list[np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(seed)
    feeds = {i.name: rng.standard_normal(i.shape).astype(np.float32) for i in session.get_inputs()}
    return session.run(None, feeds)


def _assert_meaningful(outputs: list[np.ndarray]) -> None:
    for out in outputs:
        assert np.isfinite(out).all()
        assert np.abs(out).max() > 0 and out.std() > 0  # not all zero, not constant


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example_is_valid_and_runs(name):
    model = EXAMPLES[name]()
    onnx.checker.check_model(model, full_check=True)
    assert model.ir_version == 10 and model.opset_import[0].version == 17
    _assert_meaningful(_run(model))


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example_is_seeded(name):
    assert EXAMPLES[name](seed=3) == EXAMPLES[name](seed=3)
    assert EXAMPLES[name](seed=3) != EXAMPLES[name](seed=4)


def test_demo_model_signature():
    model = EXAMPLES["residual_branch_net"]()
    assert [i.name for i in model.graph.input] == ["input"]
    ops = {n.op_type for n in model.graph.node}
    assert {"Conv", "Relu", "Add", "Concat", "MaxPool", "Flatten", "Gemm"} <= ops


def test_split_outputs_are_all_used():
    model = EXAMPLES["split_multi_output"]()
    (split,) = [n for n in model.graph.node if n.op_type == "Split"]
    used = {name for n in model.graph.node for name in n.input}
    assert len(split.output) == 3 and set(split.output) <= used


# The light models: squeezenet and shufflenet are the cheap ones (< 1 s to build).
@pytest.mark.parametrize("name", ["squeezenet", "shufflenet", "inception_v1", "resnet50"])
def test_light_model_is_random_valid_and_not_degenerate(name):
    model = real_models.light_model(name)
    onnx.checker.check_model(model)
    assert not any(n.op_type == "ConstantOfShape" for n in model.graph.node)
    assert len(model.graph.input) == 1
    (probs,) = _run(model)
    _assert_meaningful([probs])
    assert probs.max() < 0.9  # calibrated logits: the softmax is not one-hot


def test_unknown_light_model():
    with pytest.raises(ModelLoadError, match="known:"):
        real_models.light_model("alexnet_v9")


def test_rapidocr_models_are_cached(tmp_path_factory):
    cache = tmp_path_factory.mktemp("ocr")
    try:
        path = real_models.rapidocr_model("cls", cache)
    except ModelLoadError as exc:  # no network to PyPI here
        pytest.skip(str(exc))
    first = path.stat().st_mtime_ns
    assert real_models.rapidocr_model("cls", cache) == path
    assert path.stat().st_mtime_ns == first
    model = onnx.load(str(path))
    assert [i.name for i in model.graph.input] == ["x"]
