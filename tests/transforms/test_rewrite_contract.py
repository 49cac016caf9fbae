"""The RewriteResult contract of the four Relax rewrites (graphopt.transforms).

For each: (1) where it applies, `modified` and the structural change it promises;
(2) where it does not, `modified` False, `module` the input object itself, and the
input left as it was; (3) the rewritten program, built without the compile driver,
computes what ONNX Runtime computes. The compile-level tests (test_reorder.py,
test_concat_in_place.py, tests/train) go through the driver; these pin each
rewrite's own promise, so a change in one shows up here and not as a wrong number
three stages later.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import onnx
import pytest

from tests.transforms import programs
from tests.transforms.programs import Lowered

if TYPE_CHECKING:
    from graphopt.plan.placement import Placement
    from graphopt.plan.swap import Swap


# --- the rewrites as the tests call them ----------------------------------------------------


def _reorder(low: Lowered, mod):
    from graphopt.transforms.reorder import reorder_kernels

    return reorder_kernels(mod)


def _concat(low: Lowered, mod):
    from graphopt.transforms.concat_in_place import concat_in_place

    return concat_in_place(mod)


def _placement(low: Lowered, mod):
    from graphopt.transforms.apply_placement import apply_placement

    buffer_vars, placement = programs.plan_arena(mod)
    return apply_placement(mod, buffer_vars, placement)


def _no_swaps(low: Lowered, mod):
    from graphopt.analysis.extract import extract
    from graphopt.transforms.insert_swaps import insert_swaps

    return insert_swaps(mod, extract(mod["main"]).buffer_vars, [], {}, [], {})


@dataclass(frozen=True)
class SwapSetup:
    """One hand-made swap of a tiny inference program, its split problem and placement."""

    buffer: int
    swap: Swap
    buffer_vars: dict  # buffer id -> Relax var, as extraction found them
    segment_ids: dict  # (buffer, segment) -> id in the split problem
    placement: Placement  # of the split problem
    new_segment: int  # id of the swapped buffer's second resident segment


def _one_swap(mod) -> SwapSetup:
    """The first buffer idle for MIN_GAP steps goes to host over that gap; the schedule
    becomes segment ids and a placement as a training compile does it (graphopt.train.swapping
    and the driver's build stage): split_problem, a planner on the split problem, the validator."""
    from graphopt.analysis.extract import extract
    from graphopt.passes.registry import get_planner
    from graphopt.plan.swap import MIN_GAP, Swap, SwapProblem, split_problem
    from graphopt.plan.validator import validate

    extraction = extract(mod["main"])
    buffer, after, before = next((b, u, v) for b, steps in sorted(extraction.uses.items())
                                 for u, v in itertools.pairwise(steps) if v - u >= MIN_GAP)
    swap = Swap(buffer, after=after, free_at=after + 1, load_at=before - 1, before=before)
    assert swap.after < swap.free_at <= swap.load_at < swap.before
    problem = SwapProblem(extraction.problem, extraction.uses, (1.0,) * extraction.problem.num_steps,
                          budget=1 << 40, swappable=extraction.swappable)
    split, origin = split_problem(problem, [swap])
    placement = get_planner("greedy_by_size").plan(split)
    report = validate(split, placement)
    assert report.valid, report.errors
    segment_ids = {segment: bid for bid, segment in origin.items()}
    return SwapSetup(buffer, swap, extraction.buffer_vars, segment_ids, placement, segment_ids[(buffer, 1)])


def _swapped(mod, setup: SwapSetup):
    from graphopt.transforms.insert_swaps import insert_swaps

    return insert_swaps(mod, setup.buffer_vars, [setup.swap], setup.segment_ids, [], {})


# --- (1) where each rewrite applies ----------------------------------------------------------


def test_reorder_runs_a_branch_to_its_end_and_lowers_the_bound() -> None:
    """Breadth-first branches: the new order finishes branch a (3x3 then 1x1) before
    branch b's wide 3x3, so the two wide tensors are no longer live together."""
    from graphopt.transforms.reorder import reorder_kernels

    low = programs.lower(programs.breadth_first_branches())
    before = programs.kernel_order(low.mod)
    result = reorder_kernels(low.mod)
    assert result.modified and result.module is not low.mod
    after = programs.kernel_order(result.module)
    assert after != before and Counter(after) == Counter(before)
    assert [k.split("->")[0] for k in after[:2]] == ["fused_conv2d_relu", "conv2d1"], after
    assert result.record["method"] not in ("original", "skipped")
    assert result.record["lower_bound_after"] < result.record["lower_bound_before"]
    assert programs.kernel_order(low.mod) == before  # the input keeps TVM's order


def test_concat_in_place_drops_the_copy_and_makes_its_inputs_views() -> None:
    from graphopt.transforms.concat_in_place import concat_in_place

    low = programs.lower(programs.concat_then_conv())
    before = Counter(programs.main_calls(low.mod))
    result = concat_in_place(low.mod)
    assert result.modified
    assert {k: result.record[k] for k in ("elided", "concatenations")} == {"elided": 1, "concatenations": 1}
    after = Counter(programs.main_calls(result.module))
    assert before["concatenate"] == 1 and after["concatenate"] == 0
    # both inputs' allocations became views into the concatenation's buffer
    assert after["relax.memory.view"] == 2 and after["relax.memory.ensure_zero_offset"] == 2
    assert after["relax.builtin.alloc_tensor"] == before["relax.builtin.alloc_tensor"] - 2
    views = programs.calls_to(result.module, "relax.memory.view")
    assert views[0].args[0].same_as(views[1].args[0])  # one buffer...
    assert [int(v.args[3].value) for v in views] == [0, 8 * 8 * 8 * 4]  # ...a then b, back to back
    assert "concatenate" in programs.main_calls(low.mod)  # the input is untouched


def test_apply_placement_puts_every_planned_tensor_at_its_offset_in_one_arena() -> None:
    from tvm import relax

    from graphopt.transforms.apply_placement import ARENA_NAME, apply_placement

    low = programs.lower(programs.residual_chain())
    buffer_vars, placement = programs.plan_arena(low.mod)
    sizes = programs.buffer_sizes(low.mod)
    assert placement.arena_bytes < sum(sizes.values())  # the plan reuses memory: views overlap in time
    result = apply_placement(low.mod, buffer_vars, placement)
    assert result.modified
    assert result.record == {"arena_bytes": placement.arena_bytes, "tensors": len(buffer_vars), "arena_argument": False}
    before, after = Counter(programs.main_calls(low.mod)), Counter(programs.main_calls(result.module))
    assert after["relax.memory.alloc_storage"] == 1
    assert after["relax.memory.alloc_tensor"] == after["relax.memory.ensure_zero_offset"] == len(buffer_vars)
    # only the graph output keeps its own allocation
    assert after["relax.builtin.alloc_tensor"] == before["relax.builtin.alloc_tensor"] - len(buffer_vars) == 1
    bindings = {b.var.name: b.value for block in result.module["main"].body.blocks for b in block.bindings}
    storage = bindings[ARENA_NAME]
    assert int(storage.args[0].values[0]) == placement.arena_bytes
    for bid, var in buffer_vars.items():
        view = bindings[f"{var.name}_view"]
        assert isinstance(view, relax.Call) and view.op.name == "relax.memory.alloc_tensor"
        assert int(view.args[1].value) == placement.offsets[bid], var.name


def test_an_arena_argument_is_the_last_parameter_and_every_planned_tensor_a_view_of_it() -> None:
    """arena_argument (fixed-shape inference): no allocation of the arena in the program; the function takes a
    uint8 tensor of arena_bytes last (after the weights) and each planned tensor views it at its offset."""
    from tvm import relax

    from graphopt.transforms.apply_placement import ARENA_NAME, apply_placement

    low = programs.lower(programs.residual_chain())
    buffer_vars, placement = programs.plan_arena(low.mod)
    result = apply_placement(low.mod, buffer_vars, placement, arena_argument=True)
    assert result.record["arena_argument"] is True
    params = result.module["main"].params
    assert [p.name for p in params] == [p.name for p in low.mod["main"].params] + [ARENA_NAME]
    assert [int(d) for d in params[-1].ty.shape] == [placement.arena_bytes] and params[-1].ty.dtype == "uint8"
    after = Counter(programs.main_calls(result.module))
    assert after["relax.memory.alloc_storage"] == after["relax.memory.alloc_tensor"] == 0
    assert after["relax.memory.view"] == after["relax.memory.ensure_zero_offset"] == len(buffer_vars)
    bindings = {b.var.name: b.value for block in result.module["main"].body.blocks for b in block.bindings}
    for bid, var in buffer_vars.items():
        view = bindings[f"{var.name}_view"]
        assert isinstance(view, relax.Call) and view.op.name == "relax.memory.view"
        assert view.args[0].same_as(params[-1]) and int(view.args[3].value) == placement.offsets[bid], var.name


def test_insert_swaps_sends_the_idle_buffer_out_and_reads_the_copy_back() -> None:
    low = programs.lower(programs.residual_chain())
    setup = _one_swap(low.mod)
    assert (setup.swap.after, setup.swap.before) == (1, 4)  # conv0's output, read again by conv4 + add
    result = _swapped(low.mod, setup)
    assert result.modified
    assert (result.record["swaps"], result.record["recomputes"]) == (1, 0)
    k = [c for c in programs.main_calls(low.mod) if not c.startswith("relax.")]  # the five kernels
    calls = [c for c in programs.main_calls(result.module) if not c.startswith("relax.")]
    assert calls == [k[0], k[1], "graphopt.swap_out", "graphopt.swap_wait_out", k[2],  # out after step 1
                     "graphopt.swap_in", k[3], "graphopt.swap_wait_in", k[4]]  # in before step 3, ready at 4
    # the new segment is a fresh allocation, and the last kernel reads it, not the original
    new_vars = result.record["buffer_vars"]
    original, copy = setup.buffer_vars[setup.buffer], new_vars[setup.new_segment]
    assert {b: v for b, v in new_vars.items() if b != setup.new_segment} == setup.buffer_vars
    last = programs.kernel_calls(result.module)[-1]
    assert copy in list(last.args) and original not in list(last.args)


# --- (2) where it does not apply: the input itself, unchanged ---------------------------------


NO_OPS: dict[str, tuple[Callable[[], onnx.ModelProto], Callable, dict]] = {
    # one possible kernel order
    "reorder": (programs.linear_chain, _reorder, {"method": "original"}),
    # the only concatenation writes the graph output: it must stay a copy
    "concat_in_place": (programs.breadth_first_branches, _concat, {"elided": 0, "concatenations": 1}),
    # no intermediate tensor: an empty placement
    "apply_placement": (programs.single_kernel, _placement, {"arena_bytes": 0, "tensors": 0}),
    # an empty schedule
    "insert_swaps": (programs.residual_chain, _no_swaps, {"swaps": 0, "recomputes": 0}),
}


@pytest.mark.parametrize("name", list(NO_OPS))
def test_no_op_returns_the_input_module_unchanged(name: str) -> None:
    """Callers skip work on `modified` False and may keep using their module: it must
    be the very object passed in, not mutated in place."""
    build, rewrite, record = NO_OPS[name]
    low = programs.lower(build())
    text = low.mod.script()
    result = rewrite(low, low.mod)
    assert result.modified is False
    assert result.module is low.mod
    assert low.mod.script() == text
    assert {k: result.record[k] for k in record} == record


def test_insert_swaps_without_events_hands_back_the_buffer_vars() -> None:
    """apply_placement takes record["buffer_vars"] next whatever happened."""
    from graphopt.analysis.extract import extract
    from graphopt.transforms.insert_swaps import insert_swaps

    low = programs.lower(programs.residual_chain())
    buffer_vars = extract(low.mod["main"]).buffer_vars
    result = insert_swaps(low.mod, buffer_vars, [], {})
    assert not result.modified and result.record["buffer_vars"] == buffer_vars


# --- (3) the rewritten program computes what ONNX Runtime computes -----------------------------


def _run_reorder(low: Lowered, workdir: Path) -> None:
    result = _reorder(low, low.mod)
    assert result.modified
    programs.assert_matches_onnx_runtime(low, programs.build_stock(low, result.module), workdir)


def _run_concat(low: Lowered, workdir: Path) -> None:
    """Built as the driver builds it: the views then go into the arena."""
    result = _concat(low, low.mod)
    assert result.modified
    buffer_vars, placement = programs.plan_arena(result.module)
    programs.assert_matches_onnx_runtime(low, programs.build_arena(low, result.module, buffer_vars, placement),
                                         workdir)


def _run_placement(low: Lowered, workdir: Path) -> None:
    buffer_vars, placement = programs.plan_arena(low.mod)
    programs.assert_matches_onnx_runtime(low, programs.build_arena(low, low.mod, buffer_vars, placement), workdir)


def _run_swaps(low: Lowered, workdir: Path) -> None:
    """The CPU swap functions (graphopt.runtime.swap) copy for real and poison the device
    tensor after its copy-out: a kernel that read it instead of the copy would see NaN.
    The placement also gives the swapped-out range to another tensor meanwhile."""
    import graphopt.runtime.swap as swap_runtime

    setup = _one_swap(low.mod)
    result = _swapped(low.mod, setup)
    assert result.modified
    executable = programs.build_arena(low, result.module, result.record["buffer_vars"], setup.placement)
    swap_runtime.reset()
    swap_runtime.poison(True)
    try:
        programs.assert_matches_onnx_runtime(low, executable, workdir)
    finally:
        swap_runtime.poison(False)
    size = programs.buffer_sizes(low.mod)[setup.buffer]
    assert swap_runtime.stats()["bytes_out"] == swap_runtime.stats()["bytes_in"] == size


AGREEMENT: dict[str, tuple[Callable[[], onnx.ModelProto], Callable[[Lowered, Path], None]]] = {
    "reorder": (programs.breadth_first_branches, _run_reorder),
    "concat_in_place": (programs.concat_then_conv, _run_concat),
    "apply_placement": (programs.residual_chain, _run_placement),
    "insert_swaps": (programs.residual_chain, _run_swaps),
}


@pytest.mark.parametrize("name", list(AGREEMENT))
def test_rewritten_program_matches_onnx_runtime(name: str, tmp_path: Path) -> None:
    build, check = AGREEMENT[name]
    check(programs.lower(build()), tmp_path)
