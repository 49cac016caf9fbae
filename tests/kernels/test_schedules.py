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
    from graphopt.frontend import prepare
    from graphopt.frontend.importer import to_relax
    from graphopt.lowering.lower import lower_to_explicit_memory
    from graphopt.lowering.target import make_target

    target = make_target("llvm")
    imported = to_relax(prepare_model(model, prepare))
    return lower_to_explicit_memory(imported.mod, target, schedules=schedules)


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
    from graphopt.analysis.extract import extract

    with_rules = extract(_lowered(EXAMPLES[name](), schedules=True)["main"]).problem
    without = extract(_lowered(EXAMPLES[name](), schedules=False)["main"]).problem
    assert with_rules == without


def test_llvm_target_names_the_host_cpu():
    from graphopt.lowering.target import host_cpu, make_target

    target = make_target("llvm")
    cpu = host_cpu()
    assert cpu is None or str(target.attrs["mcpu"]) == cpu


def epilogue_zoo(seed: int = 0) -> onnx.ModelProto:
    """Epilogues that read the convolution's value twice (HardSwish, x * Sigmoid(x))
    after a dense, a grouped (17 channels per group: padded tiles) and a depthwise
    convolution, as in PP-OCR and ShuffleNet."""
    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    for name, x, c_in, c_out, k, group, act in (("a", "x", 8, 68, 3, 1, "hs"), ("b", "a_o", 68, 68, 1, 4, "sw"),
                                                ("c", "b_o", 68, 68, 3, 68, "hs"), ("d", "c_o", 68, 16, 1, 1, "sw")):
        node, params = _conv(rng, name, x, c_in, c_out, k, group)
        nodes.append(node)
        inits += params
        if act == "hs":
            nodes.append(helper.make_node("HardSwish", [name], [f"{name}_o"]))
        else:
            nodes += [helper.make_node("Sigmoid", [name], [f"{name}_s"]),
                      helper.make_node("Mul", [name, f"{name}_s"], [f"{name}_o"])]
    graph = helper.make_graph(
        nodes, "epilogue_zoo", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 12, 12])],
        [helper.make_tensor_value_info("d_o", TensorProto.FLOAT, [1, 16, 12, 12])], inits)
    return helper.make_model(graph, ir_version=IR_VERSION, opset_imports=[helper.make_opsetid("", OPSET)])


def test_epilogue_zoo_matches_onnx_runtime(tmp_path):
    compile_run_check(epilogue_zoo(), tmp_path)


def _taken_by(model: onnx.ModelProto) -> dict[str, str]:
    """{kernel: name of the first rule that schedules it} over the conv/matmul kernels."""
    from graphopt.kernels.schedules import cpu_rules
    from graphopt.lowering.target import make_target

    target = make_target("llvm")
    taken = {}
    with target:
        for gv, func in _lowered(model, schedules=False).functions_items():
            if hasattr(func, "body") and ("conv" in gv.name_hint or "matmul" in gv.name_hint):
                rule = next((r for r in cpu_rules() if r.apply(func, target, False) is not None), None)
                taken[gv.name_hint] = type(rule).__name__
    return taken


def test_rules_take_convolutions_and_matmuls_by_structure():
    """Dense and strided convs and matmuls go to GEMM; the grouped conv (im2col
    would copy its data once per output channel) to GroupedConv, as a GEMM per
    group; the depthwise conv (a 1-row GEMM tile is slower) to Depthwise."""
    taken = sorted(_taken_by(conv_zoo()).values())
    assert taken == ["Depthwise"] + ["GEMM"] * 5 + ["GroupedConv"], taken


def test_epilogues_reading_twice_stay_in_their_rule():
    """HardSwish and swish epilogues are folded into the kernel, not left to the
    fallback (they were: PP-OCR det/rec ran 5-18x slower than ONNX Runtime)."""
    assert sorted(_taken_by(epilogue_zoo()).values()) == ["Depthwise", "GEMM", "GEMM", "GroupedConv"]


def test_row_reductions_with_few_outputs_but_much_work_run_in_parallel():
    """A softmax over 4x128 rows of 128: its row maximum and row sum have 512 outputs but read
    65,536 elements; they ran serially (17% of the encoder's time) until the threshold counted
    the reduced elements too."""
    import tvm
    from tvm import relax

    from graphopt.kernels.schedules.fallback import MIN_PARALLEL_ELEMENTS, Fallback
    from graphopt.lowering.target import make_target

    builder = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType([1, 4, 128, 128], "float32"))
    with builder.function("main", [x]):
        with builder.dataflow():
            out = builder.emit_output(relax.op.nn.softmax(x, axis=-1))
        builder.emit_func_output(out)
    legalized = relax.transform.LegalizeOps()(builder.get())
    func = next(f for _, f in legalized.functions_items() if isinstance(f, tvm.tirx.PrimFunc))
    assert 4 * 128 < MIN_PARALLEL_ELEMENTS <= 4 * 128 * 128
    script = Fallback().schedule(func, make_target("llvm"), {}).mod.script()
    reductions = [b for b in script.split('T.sblock("')[1:] if b.startswith(("T_softmax_maxelem", "T_softmax_expsum"))]
    assert len(reductions) == 2
    assert script.count("T.parallel(") >= 3, script  # both reductions and the normalization


def conv_gemm_blocks(model: onnx.ModelProto):
    """(kernel name, block, iterator traits) of every GEMM-shaped block of the model's convolution kernels,
    unscheduled."""
    from tvm import s_tir, tirx

    from graphopt.kernels.schedules.gemm_match import iter_traits

    for gv, func in _lowered(model, schedules=False).functions_items():
        if not (isinstance(func, tirx.PrimFunc) and "conv" in gv.name_hint):
            continue
        sch = s_tir.Schedule(func)
        for block in sch.get_child_blocks(sch.get_sblock("root")):
            traits = iter_traits(sch.get(block))
            if traits is not None:
                yield gv.name_hint, sch.get(block), traits


def _direct_tiles(model: onnx.ModelProto) -> dict[str, tuple | None]:
    """{conv kernel: (rows, vectors) of its default direct-convolution tile, or None} (gemm_match.direct_tile)."""
    from graphopt.kernels.schedules.gemm_match import direct_tile
    from graphopt.lowering.target import make_target

    target, tiles = make_target("llvm"), {}
    for name, block, traits in conv_gemm_blocks(model):
        tile = direct_tile(block, traits[3], traits[2], target)
        tiles[name] = None if tile is None else (tile.rows, tile.vectors)
    return tiles


def test_windowed_convolutions_default_to_the_direct_form_where_a_tile_fits():
    """The 3x3 convolution to 16 channels on 14x14 (196 positions) gets the direct form's tile: 4 rows x 2
    vectors of 8 lanes (AVX2), 7 rows x 1 vector of 16 (AVX-512: 7 is the first one-vector row count that
    divides 196); the 1x1 convolution to 24 channels (no whole 2 vectors) keeps the contiguous-output default,
    and so does the strided 3x3 to 32 channels, whose 49 positions would pad by over 12.5% as the vector axis
    (its channels are the vector axis, the contiguous form) (test_conv_zoo_matches_onnx_runtime checks their
    outputs; tests/kernels/test_tiles_by_register_file.py checks both register files on explicit targets)."""
    from graphopt.kernels.schedules.common import vector_lanes
    from graphopt.lowering.target import make_target

    lanes = vector_lanes(make_target("llvm"))
    tiles = _direct_tiles(conv_zoo())
    direct = {name: tile for name, tile in tiles.items() if tile is not None}
    assert list(direct.values()) == [(7, 1) if lanes == 16 else (4, 2)], (lanes, tiles)
    assert sum(tile is None for tile in tiles.values()) >= 2, tiles
