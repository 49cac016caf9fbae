"""Default CPU schedules: rules match by structure, keep numerics, and leave the
memory plan exactly as it is without them."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from graphopt.examples.models import EXAMPLES, IR_VERSION, OPSET
from tests.conftest import compile_run_check


def _conv(rng, name: str, x: str, c_in: int, c_out: int, k: int, group: int = 1, stride: int = 1):
    w = numpy_helper.from_array((rng.standard_normal((c_out, c_in // group, k, k)) * 0.2).astype(np.float32), f"{name}_w")
    b = numpy_helper.from_array((rng.standard_normal(c_out) * 0.1).astype(np.float32), f"{name}_b")
    node = helper.make_node("Conv", [x, w.name, b.name], [name], group=group, pads=[k // 2] * 4,
                            strides=[stride, stride])
    return node, [w, b]


def conv_zoo(seed: int = 0) -> onnx.ModelProto:
    """Every kernel family the rules distinguish, at awkward sizes: 3x3 and 1x1
    convolutions on 14x14 (196 positions: no whole vectors), a strided one,
    depthwise and grouped convolutions, both poolings, a residual add, a batched
    MatMul and a Gemm with 10 outputs (padded register tiles)."""
    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    for args in (("c1", "x", 8, 16, 3), ("c2", "r1", 16, 24, 1), ("dw", "r2", 24, 24, 3, 24),
                 ("g", "dw", 24, 24, 3, 2), ("s", "g", 24, 32, 3, 1, 2)):
        node, params = _conv(rng, *args)
        nodes.append(node)
        inits += params
        if args[0] in ("c1", "c2"):
            nodes.append(helper.make_node("Relu", [args[0]], ["r" + args[0][1]]))
    nodes += [helper.make_node("Add", ["s", "s"], ["sum"]),
              helper.make_node("MaxPool", ["sum"], ["mp"], kernel_shape=[2, 2], strides=[2, 2]),
              helper.make_node("GlobalAveragePool", ["mp"], ["gap"]),
              helper.make_node("Flatten", ["gap"], ["flat"])]
    fc_w = numpy_helper.from_array(rng.standard_normal((32, 10)).astype(np.float32) * 0.2, "fc_w")
    bmm_w = numpy_helper.from_array(rng.standard_normal((2, 7, 12)).astype(np.float32), "bmm_w")
    nodes += [helper.make_node("Gemm", ["flat", "fc_w"], ["y"]),
              helper.make_node("MatMul", ["a", "bmm_w"], ["z"])]
    inits += [fc_w, bmm_w]
    graph = helper.make_graph(
        nodes, "conv_zoo",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 14, 14]),
         helper.make_tensor_value_info("a", TensorProto.FLOAT, [2, 20, 7])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10]),
         helper.make_tensor_value_info("z", TensorProto.FLOAT, [2, 20, 12])], inits)
    return helper.make_model(graph, ir_version=IR_VERSION, opset_imports=[helper.make_opsetid("", OPSET)])


def _lowered(model: onnx.ModelProto, schedules: bool):
    from graphopt.build import pipeline
    from graphopt.frontend import prepare

    target = pipeline.make_target("llvm")
    imported = pipeline.import_model(prepare_model(model, prepare))
    return pipeline.lower_to_explicit_memory(imported.mod, target, schedules=schedules)


def prepare_model(model: onnx.ModelProto, prepare):
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.onnx"
        onnx.save(model, path)
        return prepare(path, {}).model


def _scheduled(mod) -> dict[str, bool]:
    import tvm

    return {gv.name_hint: bool(f.attrs and f.attrs.get("tirx.is_scheduled", False))
            for gv, f in mod.functions_items() if isinstance(f, tvm.tirx.PrimFunc)}


def test_conv_zoo_matches_onnx_runtime(tmp_path):
    compile_run_check(conv_zoo(), tmp_path)


def test_every_kernel_family_is_scheduled():
    scheduled = _scheduled(_lowered(conv_zoo(), schedules=True))
    assert scheduled and all(scheduled.values()), [k for k, v in scheduled.items() if not v]
    assert not any(_scheduled(_lowered(conv_zoo(), schedules=False)).values())


@pytest.mark.parametrize("name", ["mlp", "residual_branch_net", "softmax_transpose"])
def test_schedules_leave_the_memory_problem_unchanged(name):
    from graphopt.build.extract import extract

    with_rules = extract(_lowered(EXAMPLES[name](), schedules=True)["main"]).problem
    without = extract(_lowered(EXAMPLES[name](), schedules=False)["main"]).problem
    assert with_rules == without


def test_llvm_target_names_the_host_cpu():
    from graphopt.build.lower import host_cpu, make_target

    target = make_target("llvm")
    cpu = host_cpu()
    assert cpu is None or str(target.attrs["mcpu"]) == cpu


def test_gemm_rule_takes_convolutions_and_matmuls_by_structure():
    """Dense and strided convs and matmuls go to GEMM; the depthwise conv (a 1-row
    tile, slower than the fallback) and the grouped conv (im2col would copy its data
    once per output channel) fall through."""
    from graphopt.build.lower import make_target
    from graphopt.build.schedules import GEMM

    target = make_target("llvm")
    taken = {}
    with target:
        for gv, func in _lowered(conv_zoo(), schedules=False).functions_items():
            if hasattr(func, "body") and ("conv" in gv.name_hint or "matmul" in gv.name_hint):
                taken[gv.name_hint] = GEMM().apply(func, target, False) is not None
    assert sum(taken.values()) == len(taken) - 2, taken  # all but depthwise and grouped
