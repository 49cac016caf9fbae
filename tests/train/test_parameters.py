"""Which float initializers a training step trains (graphopt.train.parameters): values the
model computes from constants stay fixed even after folding turns them into initializers,
and `frozen` weights stay fixed; everything else is trained, with the right gradients."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from graphopt.cli import main
from graphopt.compiler import compile_model
from graphopt.errors import InputError
from graphopt.examples.models import IR_VERSION, OPSET
from graphopt.options import TrainOptions
from graphopt.train.frontend import for_training
from graphopt.train.parameters import constant_names
from graphopt.train.runner import TrainRunner
from tests.train.reference import Reference


def scaled_linear() -> onnx.ModelProto:
    """logits = (x @ w) / sqrt(Constant 4) + b: folding turns the divisor into an initializer."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(0, 0.5, (6, 4)).astype(np.float32), "w"),
             numpy_helper.from_array(rng.normal(0, 0.1, (4,)).astype(np.float32), "b")]
    nodes = [
        helper.make_node("Constant", [], ["four"], value=numpy_helper.from_array(np.array(4.0, np.float32))),
        helper.make_node("Sqrt", ["four"], ["root"]),
        helper.make_node("MatMul", ["x", "w"], ["xw"]),
        helper.make_node("Div", ["xw", "root"], ["scaled"]),
        helper.make_node("Add", ["scaled", "b"], ["logits"]),
    ]
    graph = helper.make_graph(nodes, "scaled_linear", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [8, 6])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [8, 4])], inits)
    return helper.make_model(graph, ir_version=IR_VERSION, opset_imports=[helper.make_opsetid("", OPSET)])


def test_constant_names_are_what_constants_alone_compute() -> None:
    names = constant_names(scaled_linear())
    assert {"four", "root"} <= names
    assert not names & {"x", "w", "b", "xw", "scaled", "logits"}


def test_an_initializer_that_is_also_an_input_is_not_a_constant() -> None:
    model = scaled_linear()
    model.graph.initializer.append(numpy_helper.from_array(np.array([1, 2], np.int64), "fed"))
    model.graph.input.append(helper.make_tensor_value_info("fed", TensorProto.INT64, [2]))
    assert "fed" not in constant_names(model)


def _step(tmp_path, model: onnx.ModelProto, **kw) -> tuple[TrainRunner, dict, dict]:
    """One SGD step at lr=1 on a folded compile: the runner, the weights before, and the feeds."""
    compile_model(model, tmp_path / "art", TrainOptions(time_limit=2.0, optimizer="sgd:lr=1", **kw))
    runner = TrainRunner(tmp_path / "art")
    names = runner.session.manifest["param_names"][:runner.num_params]
    before = dict(zip(names, runner.weights()))
    rng = np.random.default_rng(3)
    feeds = {"x": rng.standard_normal((8, 6)).astype(np.float32), "target": rng.integers(0, 4, 8).astype(np.int64)}
    runner.step(feeds)
    return runner, before, feeds


def test_a_folded_constant_is_not_trained_and_the_gradients_are_right(tmp_path) -> None:
    """Before: the folded 1/sqrt(4) became a parameter with a gradient and an SGD update."""
    model = scaled_linear()
    runner, before, feeds = _step(tmp_path, model)
    assert sorted(before) == ["b", "w"]
    assert "root" in runner.session.plan["parameters"]["fixed"]
    after = dict(zip(before, runner.weights()))
    reference = Reference(for_training(model, "cross_entropy"), "cross_entropy", feeds["x"], feeds["target"])
    for name in before:
        grad = before[name] - after[name]
        assert np.abs(grad).max() > 1e-4
        for index in [(0,) * grad.ndim, tuple(d - 1 for d in grad.shape)]:
            assert reference.gradient(before, name, index) == pytest.approx(grad[index], abs=1e-4)


def test_a_frozen_weight_is_not_trained(tmp_path) -> None:
    runner, before, _feeds = _step(tmp_path, scaled_linear(), frozen=("b",))
    assert sorted(before) == ["w"]
    assert {"b", "root"} <= set(runner.session.plan["parameters"]["fixed"])


@pytest.mark.parametrize("name, words", [("bias", "no float initializer"), ("four", "no float initializer")])
def test_an_unknown_frozen_name_is_refused(tmp_path, name: str, words: str) -> None:
    with pytest.raises(InputError, match=words):
        compile_model(scaled_linear(), tmp_path / "art", TrainOptions(time_limit=2.0, frozen=(name,)))


def test_the_cli_freezes_by_name_and_refuses_an_unknown_one_in_one_line(tmp_path, capsys) -> None:
    path = tmp_path / "m.onnx"
    onnx.save(scaled_linear(), path)
    base = ["compile", str(path), "--train", "--quiet", "--time-limit", "2"]
    assert main([*base, "-o", str(tmp_path / "ok"), "--frozen", "b"]) == 0
    assert "b" in TrainRunner(tmp_path / "ok").session.plan["parameters"]["fixed"]
    capsys.readouterr()
    assert main([*base, "-o", str(tmp_path / "bad"), "--frozen", "b,nope"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--frozen nope" in err[0]
    assert not (tmp_path / "bad").exists()
