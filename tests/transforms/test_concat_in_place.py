"""Concatenation in place (graphopt.transforms.concat_in_place): which copies go, which
must stay, and that every compiled model still matches ONNX Runtime with a plan
the validator accepts (compile_run_check)."""

from __future__ import annotations

import shutil

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tests.conftest import compile_run_check, revalidate

RNG = np.random.default_rng(0)


def _weight(name: str, shape: list[int]) -> onnx.TensorProto:
    return numpy_helper.from_array((RNG.standard_normal(shape) * 0.2).astype(np.float32), name)


def _model(nodes, inputs, outputs, weights) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "concat_test", inputs, outputs, weights)
    model = helper.make_model(graph, ir_version=10, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model


def _tensor(name: str, shape: list[int]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def _conv(x: str, w: str, y: str) -> onnx.NodeProto:
    return helper.make_node("Conv", [x, w], [y], pads=[1, 1, 1, 1])


def dense_block(batch: int = 1) -> onnx.ModelProto:
    """DenseNet's pattern: each layer's output appended to everything before it."""
    nodes = [_conv("x", "w0", "a"), helper.make_node("Relu", ["a"], ["r"]), _conv("r", "w1", "b"),
             helper.make_node("Concat", ["r", "b"], ["c1"], axis=1), _conv("c1", "w2", "d"),
             helper.make_node("Concat", ["c1", "d"], ["c2"], axis=1), helper.make_node("Conv", ["c2", "w3"], ["y"])]
    weights = [_weight("w0", [8, 3, 3, 3]), _weight("w1", [8, 8, 3, 3]), _weight("w2", [8, 16, 3, 3]),
               _weight("w3", [4, 24, 1, 1])]
    return _model(nodes, [_tensor("x", [batch, 3, 8, 8])], [_tensor("y", [batch, 4, 8, 8])], weights)


def _two_branches(concat: onnx.NodeProto, concat_shape: list[int], extra_outputs=(), in_shape=(1, 3, 8, 8),
                  channels: int = 8) -> onnx.ModelProto:
    """x -> conv + Relu a, conv + Relu b -> `concat` -> 1x1 conv -> y. The conv after
    the concatenation keeps it a kernel of its own (an elementwise consumer would be
    fused with it, and a fused kernel is not a pure concatenation)."""
    n, c, h, w = concat_shape
    nodes = [_conv("x", "wa", "a0"), helper.make_node("Relu", ["a0"], ["a"]), _conv("x", "wb", "b0"),
             helper.make_node("Relu", ["b0"], ["b"]), concat, helper.make_node("Conv", [concat.output[0], "wy"], ["y"])]
    weights = [_weight("wa", [channels, in_shape[1], 3, 3]), _weight("wb", [channels, in_shape[1], 3, 3]),
               _weight("wy", [4, c, 1, 1])]
    outputs = [_tensor("y", [n, 4, h, w])] + [_tensor(name, shape) for name, shape in extra_outputs]
    return _model(nodes, [_tensor("x", list(in_shape))], outputs, weights)


def _check(model: onnx.ModelProto, tmp_path, concat_in_place: bool = True, stock_bound: bool = True) -> dict:
    return compile_run_check(model, tmp_path, concat_in_place=concat_in_place, stock_bound=stock_bound)


def test_dense_block_chain_is_one_buffer(tmp_path):
    plan = _check(dense_block(), tmp_path / "on")
    copies = _check(dense_block(), tmp_path / "off", concat_in_place=False)
    assert plan["concat_in_place"] == {"elided": 2, "concatenations": 2}
    assert copies["concat_in_place"]["elided"] == 0
    # the two concatenation kernels are gone, and a, b, c1, d, c2 are one buffer
    assert plan["num_steps"] == copies["num_steps"] - 2
    assert plan["num_tensors"] < copies["num_tensors"]
    assert plan["arena_bytes"] <= copies["arena_bytes"]


@pytest.mark.parametrize("why, model", [
    ("a graph input is not ours to place", _model(
        [_conv("x", "w", "a"), helper.make_node("Concat", ["x", "a"], ["c"], axis=1),
         helper.make_node("Conv", ["c", "wy"], ["y"])],
        [_tensor("x", [1, 8, 8, 8])], [_tensor("y", [1, 4, 8, 8])],
        [_weight("w", [8, 8, 3, 3]), _weight("wy", [4, 16, 1, 1])])),
    ("axis 2 of NCHW is not one contiguous range per input",
     _two_branches(helper.make_node("Concat", ["a", "b"], ["c"], axis=2), [1, 8, 16, 8])),
    ("batch 2: each input is two ranges", _two_branches(
        helper.make_node("Concat", ["a", "b"], ["c"], axis=1), [2, 16, 8, 8], in_shape=(2, 3, 8, 8))),
    ("the same tensor twice", _two_branches(helper.make_node("Concat", ["a", "a"], ["c"], axis=1), [1, 16, 8, 8])),
    ("an input of 25x25 floats (2500 bytes) would put the next one off 64-byte alignment", _two_branches(
        helper.make_node("Concat", ["a", "b"], ["c"], axis=1), [1, 2, 25, 25], in_shape=(1, 3, 25, 25), channels=1)),
    ("an input that is also a graph output", _two_branches(
        helper.make_node("Concat", ["a", "b"], ["c"], axis=1), [1, 16, 8, 8], extra_outputs=[("a", [1, 8, 8, 8])])),
])
def test_copies_that_must_stay(why, model, tmp_path):
    # 2500-byte tensors: padded to 64 bytes in one arena, not in TVM's separate storages
    plan = _check(model, tmp_path, stock_bound="64-byte" not in why)
    # the kernel is there and recognized as a concatenation: only the rule keeps the copy
    assert plan["concat_in_place"] == {"elided": 0, "concatenations": 1}, why


def test_concatenated_output_that_is_a_graph_output_stays_a_copy(tmp_path):
    concat = helper.make_node("Concat", ["a", "b"], ["c"], axis=1)
    model = _two_branches(concat, [1, 16, 8, 8], extra_outputs=[("c", [1, 16, 8, 8])])
    plan = _check(model, tmp_path)
    assert plan["concat_in_place"] == {"elided": 0, "concatenations": 1}


def test_eligible_twin_of_the_refused_cases_is_elided(tmp_path):
    """The control for test_copies_that_must_stay: the same model shape, eligible."""
    plan = _check(_two_branches(helper.make_node("Concat", ["a", "b"], ["c"], axis=1), [1, 16, 8, 8]), tmp_path)
    assert plan["concat_in_place"] == {"elided": 1, "concatenations": 1}


def test_an_input_shared_by_two_concatenations_goes_into_one(tmp_path):
    nodes = [_conv("x", "wa", "a0"), helper.make_node("Relu", ["a0"], ["a"]), _conv("x", "wb", "b"),
             _conv("x", "wc", "c"), helper.make_node("Concat", ["a", "b"], ["ab"], axis=1),
             helper.make_node("Concat", ["a", "c"], ["ac"], axis=1), helper.make_node("Conv", ["ab", "wy"], ["p"]),
             helper.make_node("Conv", ["ac", "wy"], ["q"]), helper.make_node("Add", ["p", "q"], ["y"])]
    weights = [_weight(n, [8, 3, 3, 3]) for n in ("wa", "wb", "wc")] + [_weight("wy", [4, 16, 1, 1])]
    model = _model(nodes, [_tensor("x", [1, 3, 8, 8])], [_tensor("y", [1, 4, 8, 8])], weights)
    plan = _check(model, tmp_path)
    record = plan["concat_in_place"]
    # exactly one of the two is eligible; in place it would raise the peak here, so it stays a copy
    assert record["concatenations"] == 2 and record["elided"] + record.get("kept_for_memory", 0) == 1


def test_concat_axis_recognizes_only_pure_concatenations():
    import tvm

    from graphopt.frontend.importer import to_relax
    from graphopt.lowering.lower import lower_to_explicit_memory
    from graphopt.lowering.target import make_target
    from graphopt.transforms.concat_in_place import concat_axis

    mod, *_ = to_relax(dense_block())
    lowered = lower_to_explicit_memory(mod, make_target("llvm"))
    axes = {gv.name_hint: concat_axis(f) for gv, f in lowered.functions.items() if isinstance(f, tvm.tirx.PrimFunc)}
    assert sorted(a for a in axes.values() if a is not None) == [1, 1]
    assert all(axis is None for name, axis in axes.items() if "concatenate" not in name)


def test_cli_switch_keeps_the_copies_and_says_so(tmp_path, capsys):
    import json

    from graphopt.cli import main

    onnx.save(dense_block(), tmp_path / "m.onnx")
    for flag, art in ((["--no-concat-in-place"], "off"), ([], "on")):
        assert main(["compile", str(tmp_path / "m.onnx"), "-o", str(tmp_path / art), "--quiet", *flag]) == 0
    shown = capsys.readouterr().out
    assert "copies kept (--no-concat-in-place)" in shown and "2 of 2 concatenations in place" in shown
    plans = {art: json.loads((tmp_path / art / "plan.json").read_text()) for art in ("off", "on")}
    assert plans["off"]["concat_in_place"]["elided"] == 0 and plans["on"]["concat_in_place"]["elided"] == 2
    manifests = {art: json.loads((tmp_path / art / "manifest.json").read_text()) for art in ("off", "on")}
    assert manifests["off"]["id"] != manifests["on"]["id"]


def test_fused_kernel_ending_in_a_concatenation_block_is_no_concatenation(tmp_path):
    """split -> gate, add, relu -> concat fuses into one kernel whose only block is
    named T_concat, but it computes: it must stay (found by the arena-reuse test)."""
    from graphopt.examples.models import EXAMPLES

    plan = _check(EXAMPLES["split_multi_output"](), tmp_path)
    assert plan["concat_in_place"] == {"elided": 0, "concatenations": 0}


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not installed")
def test_cuda_build_keeps_the_views(tmp_path):
    """The views and ensure_zero_offset lower for CUDA too (it runs only on a GPU machine)."""
    from graphopt.artifact import load_plan
    from graphopt.cli import main

    onnx.save(dense_block(), tmp_path / "m.onnx")
    assert main(["compile", str(tmp_path / "m.onnx"), "-o", str(tmp_path / "art"), "--target", "cuda",
                 "--quiet", "--time-limit", "2"]) == 0
    plan = load_plan(tmp_path / "art")
    assert plan["concat_in_place"]["elided"] == 2
    assert revalidate(plan).valid
