"""The GEMM rule's `read_v` knob: a convolution's data read in place as the vector operand (vectors over output
positions, weights broadcast) from its padded copy, not packed into an im2col matrix per run
(graphopt.kernels.schedules.gemm_stages.read_vector_operand_in_place). Schedules are checked on explicit
targets (whatever this host is); results on this host, against the default schedule and ONNX Runtime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import tvm
from onnx import TensorProto, helper

from graphopt.examples.models import IR_VERSION, OPSET
from tests.kernels.test_schedules import _conv, _lowered
from tests.kernels.test_tiles_by_register_file import AVX2, AVX512

READ_V = {"rows": 12, "vectors": 2, "block_bytes": 1 << 18, "swap_axes": False, "pack_u": True,
          "pack_in_tile": False, "pad_copy": False, "read_v": True}


def narrow_zoo(seed: int = 0) -> onnx.ModelProto:
    """Convolutions to 24 channels (not whole 16-lane vectors) on a 32-wide map: a 3x3 one (read in place), a
    strided 3x3 one and a 1x1 one (neither: a stride gathers, a 1x1 convolution has nothing to unpack)."""
    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    for args in (("w3", "x", 16, 24, 3), ("s3", "w3", 24, 24, 3, 1, 2), ("p1", "s3", 24, 24, 1)):
        node, params = _conv(rng, *args)
        nodes.append(node)
        inits += params
    graph = helper.make_graph(nodes, "narrow_zoo",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 32, 32])],
                              [helper.make_tensor_value_info("p1", TensorProto.FLOAT, [1, 24, 16, 16])], inits)
    return helper.make_model(graph, ir_version=IR_VERSION, opset_imports=[helper.make_opsetid("", OPSET)])


def _kernels() -> dict[str, tvm.tirx.PrimFunc]:
    """narrow_zoo's convolution kernels, unscheduled: "3x3", "3x3 stride 2", "1x1"."""
    from tvm import tirx

    funcs = [f for gv, f in _lowered(narrow_zoo(), schedules=False).functions_items()
             if isinstance(f, tirx.PrimFunc) and "conv" in gv.name_hint]
    keyed = {}
    for func in funcs:
        out_width = int(func.params[-1].ty.shape[-1])
        window = int([p for p in func.params if len(p.ty.shape) == 4][1].ty.shape[-1])
        keyed[f"{window}x{window}" + (" stride 2" if window == 3 and out_width == 16 else "")] = func
    return keyed


def _reads_in_place(func, target: dict, knobs: dict | None = None) -> bool:
    """Whether the kernel's schedule reads the data from its padded copy with no im2col stage (weights and the
    register tile aside) as the vector operand: the register tile's vectors run over the output's positions
    (the accumulator's innermost axis is H x W; a direct convolution's is its channels)."""
    from graphopt.kernels.schedules import schedule_kernel, schedule_with

    target = tvm.target.Target(target)
    sch = schedule_with(func, target, "gemm", knobs) if knobs is not None else schedule_kernel(func, target)[0]
    allocated = [line for line in sch.mod["main"].script().splitlines() if "alloc_buffer" in line]
    _, _, height, width = (int(d) for d in func.params[-1].ty.shape)
    tile = [line for line in allocated if 'scope="local"' in line]
    return (any("pad_temp" in line for line in allocated)
            and not any("reindex" in line and "local" not in line and "_w" not in line for line in allocated)
            and len(tile) == 1 and f"T.int64({height * width}))" in tile[0])


@pytest.mark.parametrize("target", [AVX2, AVX512])
def test_the_data_is_read_from_its_padded_copy_without_an_im2col_stage(target):
    assert _reads_in_place(_kernels()["3x3"], target, READ_V)
    other = {**READ_V, "rows": 8, "read_v": False, "swap_axes": True, "pack_u": False, "pad_copy": True}
    assert not _reads_in_place(_kernels()["3x3"], target, other)  # the direct form over channels


def test_the_default_reads_a_narrow_windowed_convolution_in_place():
    """24 output channels fill no whole 16-lane vector (AVX-512): the default schedule is read_v; a strided one
    keeps the old one. With 8 lanes (AVX2) they fill three: the direct form over channels stays."""
    assert _reads_in_place(_kernels()["3x3"], AVX512)
    assert not _reads_in_place(_kernels()["3x3 stride 2"], AVX512)
    assert not _reads_in_place(_kernels()["3x3"], AVX2)


def test_the_default_keeps_the_direct_form_where_channels_fill_vectors():
    from tvm import tirx

    from tests.kernels.test_tiles_by_register_file import pointwise_zoo

    funcs = [f for gv, f in _lowered(pointwise_zoo(), schedules=False).functions_items()
             if isinstance(f, tirx.PrimFunc) and "conv" in gv.name_hint
             and int([p for p in f.params if len(p.ty.shape) == 4][1].ty.shape[-1]) == 3]
    assert len(funcs) == 1  # 3x3 64 -> 64 on 14x14
    assert not _reads_in_place(funcs[0], AVX512)


def test_the_default_compiles_to_onnx_runtime_numbers(tmp_path: Path):
    from tests.conftest import compile_run_check

    compile_run_check(narrow_zoo(), tmp_path)


@pytest.mark.parametrize("kernel", ["3x3 stride 2", "1x1"])
def test_refused_where_a_tile_would_gather_or_nothing_is_packed(kernel):
    from graphopt.kernels.schedules import schedule_with

    assert schedule_with(_kernels()[kernel], tvm.target.Target(AVX512), "gemm", READ_V) is None
    assert schedule_with(_kernels()[kernel], tvm.target.Target(AVX512), "gemm", {}) is not None


def test_a_tile_that_crosses_an_output_row_is_refused():
    """Four 16-lane vectors (64 positions) span two rows of the 32-wide output: their loads would gather."""
    from graphopt.kernels.schedules import schedule_with

    knobs = {**READ_V, "rows": 4, "vectors": 4}
    assert schedule_with(_kernels()["3x3"], tvm.target.Target(AVX512), "gemm", knobs) is None


def test_host_results_equal_the_im2col_schedule():
    """Read in place or packed as an im2col matrix (the rule's form without read_v), the same numbers."""
    from graphopt.kernels.schedules import schedule_with
    from graphopt.kernels.tuning import measure
    from graphopt.lowering.target import make_target

    target = make_target("llvm")
    func = _kernels()["3x3"]
    default = schedule_with(func, target, "gemm", {"read_v": False}).mod["main"]
    read_v = schedule_with(func, target, "gemm", READ_V).mod["main"]
    bench = measure.KernelBench(func, target)
    expected, actual = (bench.outputs(bench.build(f)) for f in (default, read_v))
    assert np.abs(actual[-1]).max() > 0
    np.testing.assert_allclose(actual[-1], expected[-1], rtol=1e-5, atol=1e-5)


def test_a_recorded_read_v_choice_compiles_to_onnx_runtime_numbers(tmp_path: Path):
    """A tuning record with read_v for the 3x3 kernel is applied by compile, plan unchanged, numbers ORT's."""
    from graphopt.compiler import CompileOptions, compile_model
    from graphopt.frontend import prepare
    from graphopt.frontend.importer import to_relax
    from graphopt.kernels.tuning.db import Record, TuningDB
    from graphopt.kernels.tuning.search import tasks_of
    from graphopt.kernels.tuning.workload import target_key
    from graphopt.lowering import prepack
    from graphopt.lowering.lower import legalize
    from graphopt.lowering.target import make_target
    from graphopt.runtime import load
    from tests.conftest import onnx_runtime_outputs, random_feeds, relative_error
    from tests.kernels.test_schedules import prepare_model

    target = make_target("llvm")
    mod = prepack.mark_weights()(legalize(to_relax(prepare_model(narrow_zoo(), prepare)).mod, target))
    three = [t for t in tasks_of(mod) if t.func.params[-1].ty.shape[-1] == 32]
    assert len(three) == 1
    db = TuningDB.open(tmp_path / "db", create=True)
    db.commit(Record(three[0].workload, target_key(target), "gemm", READ_V))
    model = tmp_path / "m.onnx"
    onnx.save(narrow_zoo(), model)
    plain = compile_model(model, tmp_path / "plain", CompileOptions(time_limit=2.0))
    tuned = compile_model(model, tmp_path / "tuned", CompileOptions(time_limit=2.0, tuning_db=tmp_path / "db"))
    assert tuned.plan["schedules"]["tuned"] == 1
    assert tuned.plan["arena_bytes"] == plain.plan["arena_bytes"]
    feeds = random_feeds(narrow_zoo())
    expected = onnx_runtime_outputs(model, feeds)
    actual = load(tmp_path / "tuned").run(feeds)
    for name, value in expected.items():
        assert relative_error(actual[name], value) < 1e-4, name


def test_read_v_seeds_come_first_and_are_grid_points():
    from graphopt.kernels.tuning import space

    for registers in (16, 32):
        sampler = space.Sampler("gemm", registers, "k", explore=2)
        seeds = space.read_in_place_seeds(registers)
        assert seeds and all(s["read_v"] and s["vectors"] == 2 and 2 * s["rows"] + 3 <= registers for s in seeds)
        assert [sampler.next() for _ in seeds] == seeds
        assert all(seed in sampler.points for seed in space.gemm_seeds(registers))
