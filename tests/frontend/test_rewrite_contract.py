"""The RewriteResult contract of the two ONNX rewrites (graphopt.frontend).

For each: (1) where it applies, `modified` and the nodes it replaces; (2) where it
does not, `modified` False, `module` the input ModelProto itself, byte for byte as it
was; (3) ONNX Runtime computes the same outputs for the rewritten model as for the
original. test_sum_to_add.py and test_batchnorm_to_affine.py judge the compiled
result through the driver; here ONNX Runtime runs the rewritten ModelProto itself.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from graphopt.frontend.batchnorm_to_affine import batchnorms_to_affine
from graphopt.frontend.sum_to_add import sums_to_adds
from graphopt.transforms.result import RewriteResult
from tests.conftest import random_feeds
from tests.transforms import programs

Rewrite = Callable[[onnx.ModelProto], RewriteResult]


def _ops(model: onnx.ModelProto) -> list[str]:
    return [n.op_type for n in model.graph.node]


def _bytes(model: onnx.ModelProto) -> bytes:
    return model.SerializeToString(deterministic=True)


# --- (1) where each rewrite applies ----------------------------------------------------------


def test_sums_become_left_to_right_adds_and_an_identity() -> None:
    model = programs.sums()
    original = _bytes(model)
    result = sums_to_adds(model)
    assert result.modified and result.record == {"rewritten": 2}
    assert result.module is not model and _bytes(model) == original  # a copy was rewritten
    assert _ops(result.module) == ["Add", "Add", "Relu", "Identity"]
    first, second, _, identity = result.module.graph.node
    assert list(first.input) == ["a", "row"] and list(second.input) == [first.output[0], "b"]
    assert list(second.output) == ["s"] and list(identity.input) == ["r"] and list(identity.output) == ["y"]
    onnx.checker.check_model(result.module, full_check=True)


def test_batchnorm_becomes_mul_add_with_per_channel_constants() -> None:
    model = programs.batchnorm()
    original = _bytes(model)
    result = batchnorms_to_affine(model)
    assert result.modified and result.record == {"rewritten": 1}
    assert _bytes(model) == original
    assert _ops(result.module) == ["Mul", "Add", "Relu"]
    inits = {t.name: numpy_helper.to_array(t) for t in result.module.graph.initializer}
    assert set(inits) == {"bn0__bn_factor", "bn0__bn_shift"}  # the four statistics are dropped
    stats = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in model.graph.initializer}
    factor = stats["scale"] / np.sqrt(stats["var"] + 1e-3)
    np.testing.assert_allclose(inits["bn0__bn_factor"], factor.reshape(-1, 1, 1), rtol=1e-6)
    np.testing.assert_allclose(inits["bn0__bn_shift"], (stats["bias"] - stats["mean"] * factor).reshape(-1, 1, 1),
                               rtol=1e-6, atol=1e-7)
    onnx.checker.check_model(result.module, full_check=True)


# --- (2) where it does not apply: the input itself, unchanged ---------------------------------


NO_OPS: dict[str, tuple[Rewrite, Callable[[], onnx.ModelProto]]] = {
    "sums_to_adds": (sums_to_adds, programs.adds),
    # the mean is a graph input, not a constant to fold
    "batchnorms_to_affine": (batchnorms_to_affine, lambda: programs.batchnorm(statistics_as_inputs=True)),
}


@pytest.mark.parametrize("name", list(NO_OPS))
def test_no_op_returns_the_input_model_unchanged(name: str) -> None:
    """prepare_model re-infers shapes only when a rewrite says it modified the model,
    and keeps using the object it passed in: both must hold."""
    rewrite, build = NO_OPS[name]
    model = build()
    original = _bytes(model)
    result = rewrite(model)
    assert result.modified is False
    assert result.module is model
    assert _bytes(model) == original
    assert result.record == {"rewritten": 0}


# --- (3) ONNX Runtime computes the same before and after ----------------------------------------


AGREEMENT: dict[str, tuple[Rewrite, Callable[[], onnx.ModelProto]]] = {
    "sums_to_adds": (sums_to_adds, programs.sums),
    "batchnorms_to_affine": (batchnorms_to_affine, programs.batchnorm),
}


@pytest.mark.parametrize("name", list(AGREEMENT))
def test_rewritten_model_matches_onnx_runtime(name: str, tmp_path: Path) -> None:
    rewrite, build = AGREEMENT[name]
    model = build()
    result = rewrite(model)
    assert result.modified
    feeds = random_feeds(model, seed=5)
    expected = programs.ort_outputs(model, feeds, tmp_path)
    programs.assert_same_outputs(programs.ort_outputs(result.module, feeds, tmp_path), expected)
