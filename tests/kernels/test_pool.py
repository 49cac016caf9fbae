"""The pooling rule (graphopt.kernels.schedules.pool): 2-D max and average pooling as depthwise windows
without weights, over a padded channel built in the channel loop. Which kernels it takes, the loops it
picks by default, that every knob setting computes the fallback's numbers, and ONNX Runtime's numbers
end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import tvm
import tvm_ffi
from onnx import TensorProto, helper

from graphopt.examples.models import IR_VERSION, OPSET
from tests.kernels.test_schedules import _lowered

SHAPE = [1, 8, 17, 17]
POOLS = {  # name: (op, attributes)
    "max 3x3": ("MaxPool", {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}),
    "max 3x3 stride 2 padded": ("MaxPool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}),
    "max 3x3 stride 2 ceil": ("MaxPool", {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}),
    "max 2x2 dilated": ("MaxPool", {"kernel_shape": [2, 2], "dilations": [2, 2], "pads": [1, 1, 1, 1]}),
    "average 3x3 without padding counted": ("AveragePool", {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}),
    "average 2x2 stride 2": ("AveragePool", {"kernel_shape": [2, 2], "strides": [2, 2]}),
}


def _model(nodes: list, out_shape: list) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "pools", [helper.make_tensor_value_info("x", TensorProto.FLOAT, SHAPE)],
                              [helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, out_shape)])
    return helper.make_model(graph, ir_version=IR_VERSION, opset_imports=[helper.make_opsetid("", OPSET)])


def _kernel(op: str, attrs: dict, shape: list | None = None) -> tvm.tirx.PrimFunc:
    """The one kernel of a one-node model, as legalized (graphopt's max pooling included), unscheduled."""
    from tvm import tirx

    node = helper.make_node(op, ["x"], ["y"], **attrs)
    funcs = [f for _, f in _lowered(_model([node], shape or [1, 8, None, None]), schedules=False).functions_items()
             if isinstance(f, tirx.PrimFunc)]
    assert len(funcs) == 1
    return funcs[0]


def _target():
    from graphopt.lowering.target import make_target

    return make_target("llvm")


@pytest.mark.parametrize("name", list(POOLS))
def test_the_rule_takes_two_axis_pooling_windows(name):
    from graphopt.kernels.schedules import schedule_kernel

    assert schedule_kernel(_kernel(*POOLS[name]), _target())[1] == "pool"


@pytest.mark.parametrize("op,attrs,shape", [
    ("MaxPool", {"kernel_shape": [3], "pads": [1, 1]}, [1, 8, None]),  # 1-D: parallel over one channel loop
    ("GlobalAveragePool", {}, [1, 8, 1, 1]),  # no window axes left in the output
    ("ReduceMax", {"keepdims": 0}, []),  # a reduction, no window
])
def test_the_rule_declines_other_reductions(op, attrs, shape):
    from graphopt.kernels.schedules.pool import Pool

    node_input = [1, 8, 17] if len(attrs.get("kernel_shape", [0, 0])) == 1 else SHAPE
    func = _kernel_on(op, attrs, node_input, shape)
    assert Pool().schedule(func, _target(), {}) is None


def _kernel_on(op: str, attrs: dict, in_shape: list, out_shape: list) -> tvm.tirx.PrimFunc:
    from tvm import tirx

    node = helper.make_node(op, ["x"], ["y"], **attrs)
    graph = helper.make_graph([node], "one", [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)])
    model = helper.make_model(graph, ir_version=IR_VERSION, opset_imports=[helper.make_opsetid("", OPSET)])
    funcs = [f for _, f in _lowered(model, schedules=False).functions_items() if isinstance(f, tirx.PrimFunc)]
    return funcs[0]


@pytest.mark.parametrize("name,window_rows", [
    ("max 3x3", True),  # stride 1: contiguous rows
    ("max 2x2 dilated", True),
    ("max 3x3 stride 2 padded", True),  # starts in padding: the fallback would check both bounds per tap
    ("average 3x3 without padding counted", True),
    ("max 3x3 stride 2 ceil", False),  # strided, no padding at the start: the fallback's loops
    ("average 2x2 stride 2", False),
])
def test_the_default_loops(name, window_rows):
    from graphopt.kernels.schedules.fallback import Fallback
    from graphopt.kernels.schedules.pool import Pool

    func, target = _kernel(*POOLS[name]), _target()
    default = Pool().schedule(func, target, {}).mod["main"]
    rows = Pool().schedule(func, target, {"window_rows": True}).mod["main"]
    fallback = Fallback().schedule(func, target, {}).mod["main"]
    assert tvm_ffi.structural_equal(default, rows) == window_rows
    assert tvm_ffi.structural_equal(default, fallback) == (not window_rows)


def test_the_padded_channel_is_built_in_the_channel_loop():
    """-inf padding is a stage of its own (no bounds check per tap) computed under the parallel channel loop."""
    from graphopt.kernels.schedules.pool import Pool

    script = Pool().schedule(_kernel(*POOLS["max 3x3"]), _target(), {}).mod["main"].script()
    assert "T.parallel" in script and 'T.sblock("pad_temp")' in script
    assert script.index("T.parallel") < script.index('T.sblock("pad_temp")')
    body = script[script.index('T.sblock("max_pool_update")'):]
    assert "if_then_else" not in body


@pytest.mark.parametrize("name", list(POOLS))
def test_every_knob_setting_computes_the_fallbacks_numbers(name):
    from graphopt.kernels.schedules import schedule_with
    from graphopt.kernels.schedules.fallback import Fallback
    from graphopt.kernels.tuning import measure, space

    func, target = _kernel(*POOLS[name]), _target()
    bench = measure.KernelBench(func, target)
    expected = bench.outputs(bench.build(Fallback().schedule(func, target, {}).mod["main"]))[-1]
    assert np.abs(expected).max() > 0
    for knobs in space.grid("pool", 32):
        actual = bench.outputs(bench.build(schedule_with(func, target, "pool", knobs).mod["main"]))[-1]
        np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-6, err_msg=str(knobs))


def pool_chain() -> onnx.ModelProto:
    """Every pooling of POOLS one after another where shapes allow, as a model."""
    names = ["max 3x3", "average 3x3 without padding counted", "max 2x2 dilated", "max 3x3 stride 2 padded",
             "average 2x2 stride 2"]
    nodes, previous = [], "x"
    for index, name in enumerate(names):
        op, attrs = POOLS[name]
        if op == "AveragePool" and "pads" in attrs:
            attrs = {**attrs, "count_include_pad": 0}
        nodes.append(helper.make_node(op, [previous], [f"p{index}"], **attrs))
        previous = f"p{index}"
    return _model(nodes, [1, 8, 4, 4])


def test_pools_compile_to_onnx_runtime_numbers(tmp_path: Path):
    from tests.conftest import compile_run_check

    compile_run_check(pool_chain(), tmp_path, stock_bound=False)


@pytest.mark.parametrize("size,padded", [(17, False), (16, True)])
def test_max_pooling_pads_only_where_a_window_leaves_the_data(size, padded):
    """3x3 stride 2, ceil mode: on 17 the last window ends on the last element (no -inf copy); on 16 it reaches one
    past it, which the padded copy covers."""
    func = _kernel_on("MaxPool", {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}, [1, 8, size, size],
                      [1, 8, 8, 8])
    assert ('T.sblock("pad_temp")' in func.script()) == padded
