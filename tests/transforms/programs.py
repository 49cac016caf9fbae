"""Small programs for the rewrite contract tests, and the steps that build and run them.

Shared by tests/frontend/test_rewrite_contract.py (the ONNX rewrites) and
tests/transforms/test_rewrite_contract.py (the Relax rewrites). The Relax side is
built from public functions, without the compile driver: prepare -> import ->
lower -> rewrite -> finalize -> build -> run in the VM, so a failure points at a
rewrite rather than at the driver. TVM is imported lazily: the ONNX tests never load it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tests.conftest import onnx_runtime_outputs, random_feeds, relative_error

if TYPE_CHECKING:
    import tvm

    from graphopt.plan.placement import Placement

IR_VERSION = 10  # stamped explicitly: onnx 1.23's defaults are newer than ONNX Runtime accepts
OPSET = 17
TOLERANCE = 1e-4


# --- ONNX models -----------------------------------------------------------------------------


def make_model(nodes: list, inputs: list, outputs: list, inits: list, name: str) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, name, inputs, outputs, inits)
    model = helper.make_model(graph, ir_version=IR_VERSION, opset_imports=[helper.make_opsetid("", OPSET)])
    onnx.checker.check_model(model)
    return model


def tensor(name: str, shape: list[int]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def weight(name: str, shape: tuple[int, ...], seed: int = 0) -> onnx.TensorProto:
    """He-scaled random weights: activations stay O(1) through a few layers."""
    rng = np.random.default_rng(seed)
    fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    return numpy_helper.from_array((rng.standard_normal(shape) * np.sqrt(2 / fan_in)).astype(np.float32), name)


def conv(x: str, w: str, y: str, pad: bool = True) -> onnx.NodeProto:
    return helper.make_node("Conv", [x, w], [y], pads=[1, 1, 1, 1] if pad else [0, 0, 0, 0])


def sums() -> onnx.ModelProto:
    """A 3-input Sum with broadcasting (an initializer among its operands) and a 1-input Sum."""
    nodes = [helper.make_node("Sum", ["a", "row", "b"], ["s"], name="sum3"),
             helper.make_node("Relu", ["s"], ["r"]),
             helper.make_node("Sum", ["r"], ["y"], name="sum1")]
    return make_model(nodes, [tensor("a", [3, 5]), tensor("b", [1, 5])], [tensor("y", [3, 5])],
                      [weight("row", (5,), seed=1)], "sums")


def adds() -> onnx.ModelProto:
    """Add and Relu only: nothing for sums_to_adds."""
    nodes = [helper.make_node("Add", ["a", "b"], ["s"]), helper.make_node("Relu", ["s"], ["y"])]
    return make_model(nodes, [tensor("a", [3, 5]), tensor("b", [1, 5])], [tensor("y", [3, 5])], [], "adds")


def batchnorm(statistics_as_inputs: bool = False) -> onnx.ModelProto:
    """x -> BatchNormalization -> Relu. With `statistics_as_inputs` the mean is fed at run
    time (not an initializer), which makes the node ineligible for folding."""
    rng = np.random.default_rng(2)
    c = 6
    stats = {"scale": rng.uniform(0.5, 2.0, c), "bias": rng.standard_normal(c),
             "mean": rng.standard_normal(c), "var": rng.uniform(0.1, 3.0, c)}
    inputs = [tensor("x", [2, c, 4, 4])]
    if statistics_as_inputs:
        del stats["mean"]
        inputs.append(tensor("mean", [c]))
    inits = [numpy_helper.from_array(v.astype(np.float32), k) for k, v in stats.items()]
    nodes = [helper.make_node("BatchNormalization", ["x", "scale", "bias", "mean", "var"], ["bn"],
                              epsilon=1e-3, name="bn0"),
             helper.make_node("Relu", ["bn"], ["y"])]
    return make_model(nodes, inputs, [tensor("y", [2, c, 4, 4])], inits, "batchnorm")


def breadth_first_branches() -> onnx.ModelProto:
    """Two branches (wide 3x3 conv + Relu, then a narrow 1x1 conv) listed breadth-first and
    concatenated into the graph output: both wide tensors are live at once until reordered.
    The concatenation writes a graph output, so concat_in_place must leave it a copy."""
    c = 32
    nodes = [conv("x", "wa1", "a1"), conv("x", "wb1", "b1"),
             helper.make_node("Relu", ["a1"], ["a1r"]), helper.make_node("Relu", ["b1"], ["b1r"]),
             conv("a1r", "wa2", "a2", pad=False), conv("b1r", "wb2", "b2", pad=False),
             helper.make_node("Concat", ["a2", "b2"], ["y"], axis=1)]
    inits = [weight("wa1", (c, 4, 3, 3), 1), weight("wb1", (c, 4, 3, 3), 2),
             weight("wa2", (4, c, 1, 1), 3), weight("wb2", (4, c, 1, 1), 4)]
    return make_model(nodes, [tensor("x", [1, 4, 8, 8])], [tensor("y", [1, 8, 8, 8])], inits, "breadth_first")


def concat_then_conv() -> onnx.ModelProto:
    """Two conv + Relu branches concatenated on channels, then a 1x1 conv: the concatenation
    is a kernel of its own whose inputs can be written in place."""
    nodes = [conv("x", "wa", "a0"), helper.make_node("Relu", ["a0"], ["a"]),
             conv("x", "wb", "b0"), helper.make_node("Relu", ["b0"], ["b"]),
             helper.make_node("Concat", ["a", "b"], ["c"], axis=1), conv("c", "wy", "y", pad=False)]
    inits = [weight("wa", (8, 3, 3, 3), 1), weight("wb", (8, 3, 3, 3), 2), weight("wy", (4, 16, 1, 1), 3)]
    return make_model(nodes, [tensor("x", [1, 3, 8, 8])], [tensor("y", [1, 4, 8, 8])], inits, "concat_then_conv")


def residual_chain() -> onnx.ModelProto:
    """conv0 -> conv1 -> conv2 -> conv3 -> conv4 + conv0's output: the first tensor is
    idle from step 1 to step 4, a gap long enough for a swap (plan.swap.MIN_GAP)."""
    nodes = [conv("x", "w0", "c0")] + [conv(f"c{i}", f"w{i + 1}", f"c{i + 1}") for i in range(4)]
    nodes.append(helper.make_node("Add", ["c4", "c0"], ["y"]))
    inits = [weight(f"w{i}", (4, 4, 3, 3), i) for i in range(5)]
    return make_model(nodes, [tensor("x", [1, 4, 8, 8])], [tensor("y", [1, 4, 8, 8])], inits, "residual_chain")


def linear_chain() -> onnx.ModelProto:
    """conv -> Relu -> conv: one possible kernel order, no concatenation."""
    nodes = [conv("x", "w0", "a"), helper.make_node("Relu", ["a"], ["r"]), conv("r", "w1", "y")]
    inits = [weight("w0", (4, 4, 3, 3), 1), weight("w1", (4, 4, 3, 3), 2)]
    return make_model(nodes, [tensor("x", [1, 4, 8, 8])], [tensor("y", [1, 4, 8, 8])], inits, "linear_chain")


def single_kernel() -> onnx.ModelProto:
    """One Relu: its only tensor is the graph output, so nothing goes into an arena."""
    return make_model([helper.make_node("Relu", ["x"], ["y"])], [tensor("x", [1, 4, 8, 8])],
                      [tensor("y", [1, 4, 8, 8])], [], "single_kernel")


# --- ONNX Runtime ------------------------------------------------------------------------------


def assert_same_outputs(actual: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    """Same names, shapes and (to TOLERANCE, relative to the largest value) numbers."""
    assert set(actual) == set(expected)
    for name, value in expected.items():
        assert actual[name].shape == value.shape, name
        error = relative_error(actual[name], value)
        assert error < TOLERANCE, (name, error)


def ort_outputs(model: onnx.ModelProto, feeds: dict[str, np.ndarray], workdir: Path) -> dict[str, np.ndarray]:
    """What ONNX Runtime (CPUExecutionProvider) computes for `model` on `feeds`."""
    path = workdir / f"{model.graph.name}_{len(list(workdir.iterdir()))}.onnx"
    onnx.save(model, path)
    return onnx_runtime_outputs(path, feeds)


# --- Relax programs -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Lowered:
    """A model lowered to explicit allocations, with what running it needs."""

    model: onnx.ModelProto  # the model as given (ONNX Runtime's reference)
    mod: Any  # tvm.IRModule: every intermediate an R.builtin.alloc_tensor
    params: list[np.ndarray]
    input_names: list[str]
    target: Any  # tvm.target.Target


def lower(model: onnx.ModelProto) -> Lowered:
    from graphopt.frontend import prepare_model
    from graphopt.frontend.importer import to_relax
    from graphopt.lowering.lower import lower_to_explicit_memory
    from graphopt.lowering.target import make_target

    prepared = prepare_model(model)
    mod, params, input_names, _ = to_relax(prepared.model)
    target = make_target("llvm")
    return Lowered(model, lower_to_explicit_memory(mod, target), list(params), list(input_names), target)


def _call_name(call) -> str:
    import tvm
    from tvm import relax

    op = call.op
    if isinstance(op, tvm.ir.GlobalVar):
        return op.name_hint
    if isinstance(op, relax.ExternFunc):
        return str(op.global_symbol)
    return str(op.name)


def main_calls(mod: tvm.IRModule) -> list[str]:
    """Names of the functions `main` calls, in binding order (kernels, packed functions, ops)."""
    from tvm import relax

    return [_call_name(b.value) for block in mod["main"].body.blocks for b in block.bindings
            if isinstance(b.value, relax.Call)]


def calls_to(mod: tvm.IRModule, name: str) -> list:
    """The calls of `main` to `name` (as main_calls names it), in binding order."""
    from tvm import relax

    return [b.value for block in mod["main"].body.blocks for b in block.bindings
            if isinstance(b.value, relax.Call) and _call_name(b.value) == name]


def kernel_calls(mod: tvm.IRModule) -> list:
    """The kernel (PrimFunc) calls of `main`, in execution order."""
    import tvm
    from tvm import relax

    return [b.value for block in mod["main"].body.blocks for b in block.bindings
            if isinstance(b.value, relax.Call) and isinstance(b.value.op, tvm.ir.GlobalVar)]


def kernel_order(mod: tvm.IRModule) -> list[str]:
    """The kernels of `main` in execution order, each named with the tensor it writes,
    so two calls of one PrimFunc tell apart."""
    return [f"{call.op.name_hint}->{call.args[-1].name}" for call in kernel_calls(mod)]


def buffer_sizes(mod: tvm.IRModule) -> dict[int, int]:
    """Extraction's planned tensors: buffer id -> bytes."""
    from graphopt.analysis.extract import extract

    return {b.id: b.size for b in extract(mod["main"]).problem.buffers}


def plan_arena(mod: tvm.IRModule) -> tuple[dict, Placement]:
    """Extraction's buffer vars and a greedy placement the validator accepts."""
    from graphopt.analysis.extract import extract
    from graphopt.passes.registry import get_planner
    from graphopt.plan.validator import validate

    extraction = extract(mod["main"])
    placement = get_planner("greedy_by_size").plan(extraction.problem)
    report = validate(extraction.problem, placement)
    assert report.valid, report.errors
    return extraction.buffer_vars, placement


def build_stock(low: Lowered, mod: tvm.IRModule):
    """`mod` with TVM's own memory plan (StaticPlanBlockMemory): for programs without an arena."""
    from graphopt.lowering.codegen import build, finalize

    return build(finalize(mod, low.target, stock=True), low.target)


def build_arena(low: Lowered, mod: tvm.IRModule, buffer_vars: dict, placement: Placement):
    """`mod` with its planned tensors in one arena, as the compile driver builds it."""
    from graphopt.lowering.codegen import build, finalize
    from graphopt.transforms.apply_placement import apply_placement

    planned = apply_placement(mod, buffer_vars, placement)
    assert planned.modified
    return build(finalize(planned.module, low.target, stock=False), low.target)


def run(low: Lowered, executable, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The VM's outputs by ONNX output name: inputs, then weights, positionally."""
    import tvm

    vm = tvm.relax.VirtualMachine(executable, tvm.cpu())
    args = [tvm.runtime.tensor(feeds[name]) for name in low.input_names]
    args += [tvm.runtime.tensor(p) for p in low.params]
    result = vm["main"](*args)
    values = [result] if hasattr(result, "numpy") else list(result)
    names = [o.name for o in low.model.graph.output]
    assert len(values) == len(names)
    return {name: value.numpy() for name, value in zip(names, values)}


def assert_matches_onnx_runtime(low: Lowered, executable, workdir: Path) -> None:
    """The built program computes what ONNX Runtime computes, on random non-zero inputs."""
    feeds = random_feeds(low.model, seed=3)
    assert_same_outputs(run(low, executable, feeds), ort_outputs(low.model, feeds, workdir))
