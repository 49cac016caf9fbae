"""A fixed-shape inference program takes its arena as its last argument (graphopt.transforms.apply_placement),
which the session allocates once: in its host slab from 4 MiB up (graphopt.runtime.host_slab), so activations
get 2 MiB pages too. Training steps keep the program's own arena. A plan.json that disagrees with the library
about it is refused in one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from graphopt.errors import ArtifactError
from graphopt.examples.models import IR_VERSION, OPSET
from tests.artifact_edit import edited_copy
from tests.conftest import compile_run_check


def _chain(shape: list) -> onnx.ModelProto:
    """Two 1x1 convolutions with a Relu between: the first's output is an intermediate in the arena."""
    channels = shape[1]
    rng = np.random.default_rng(0)
    weights = [numpy_helper.from_array(rng.standard_normal((channels, channels, 1, 1)).astype(np.float32), f"w{i}")
               for i in range(2)]
    node = helper.make_node
    graph = helper.make_graph([node("Conv", ["x", "w0"], ["a"]), node("Relu", ["a"], ["b"]),
                               node("Conv", ["b", "w1"], ["y"])],
                              "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)], weights)
    return helper.make_model(graph, ir_version=IR_VERSION, opset_imports=[helper.make_opsetid("", OPSET)])


@pytest.mark.parametrize("shape,in_slab", [([2, 3, 8, 8], False), ([1, 4, 512, 512], True)])  # 4 MiB a tensor
def test_the_session_passes_the_arena_and_the_numbers_are_onnx_runtimes(tmp_path: Path, shape, in_slab):
    from graphopt.runtime import load

    plan = compile_run_check(_chain(shape), tmp_path, stock_bound=False)
    assert plan["arena_is_argument"] is True and plan["arena_bytes"] > 0
    session = load(tmp_path / "art")
    arena = np.from_dlpack(session.arena)
    assert arena.dtype == np.uint8 and arena.nbytes == plan["arena_bytes"]
    assert (session.arena_slab is not None) == in_slab
    if in_slab:
        assert session.arena_slab.holds(arena)


@pytest.mark.parametrize("edit", ["says not", "no size"])
def test_a_plan_that_disagrees_with_the_library_is_refused(tmp_path: Path, edit):
    from graphopt.runtime import load

    compile_run_check(_chain([2, 3, 8, 8]), tmp_path, stock_bound=False)

    def change(plan: dict) -> None:
        if edit == "says not":
            plan.pop("arena_is_argument")
        else:
            plan.pop("arena_bytes")

    edited = edited_copy(tmp_path / "art", tmp_path / "edited", plan=change)
    with pytest.raises(ArtifactError, match="arena"):
        load(edited)
