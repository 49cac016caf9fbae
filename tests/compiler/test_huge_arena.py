"""A compile that cannot fit the memory that would run it is refused unless --allow-huge-arena.

Physical memory is patched to a known size, so every case means the same on any machine.
"""

from __future__ import annotations

import gc
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from graphopt.cli import main
from graphopt.compiler import CompileOptions, compile_model
from graphopt.errors import MemoryLimitError
from graphopt.identity import predicted_id
from graphopt.plan import memory_limit
from graphopt.plan.memory_limit import MemoryLimit, check_fits, fmt_bytes, host_limit

GIB = 2**30


def _huge_input() -> onnx.ModelProto:
    """x (1x3x100000x100000 float32, 111.8 GiB) -> Relu -> y: the example from the issue."""
    shape = [1, 3, 100_000, 100_000]
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)])
    return helper.make_model(graph, ir_version=10, opset_imports=[helper.make_opsetid("", 17)])


def _two_matmuls() -> onnx.ModelProto:
    """x[1,64] -> MatMul -> Relu -> MatMul -> y: 32 KiB of weights, 256 B in and out, and an
    intermediate that must live in the arena (two matmuls do not fuse)."""
    rng = np.random.default_rng(0)
    weights = [numpy_helper.from_array(rng.standard_normal((64, 64)).astype(np.float32), f"w{i}") for i in (1, 2)]
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["t"]), helper.make_node("Relu", ["t"], ["r"]),
             helper.make_node("MatMul", ["r", "w2"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])], weights)
    return helper.make_model(graph, ir_version=10, opset_imports=[helper.make_opsetid("", 17)])


RESIDENT = 2 * 64 * 64 * 4 + 2 * 64 * 4  # _two_matmuls' weights + input + output: what prepare sees


def _memory(monkeypatch, size: int) -> None:
    monkeypatch.setattr(memory_limit, "physical_memory", lambda: size)


def _one_error_line(capfd) -> str:
    gc.collect()
    err = [ln for ln in capfd.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


@pytest.mark.parametrize("target", ["llvm", "cuda"])
def test_a_huge_input_is_refused_before_tvm(monkeypatch, tmp_path: Path, target: str) -> None:
    """The ONNX shapes already prove it: no TVM stage runs. On CUDA too, since the input
    passes whole through host memory."""
    _memory(monkeypatch, 16 * GIB)
    stages: list[str] = []
    with pytest.raises(MemoryLimitError, match=r"^from the ONNX shapes: tensor x alone needs 111\.8 GiB, more "
                                               r"than physical memory \(16\.0 GiB\); pass --allow-huge-arena"):
        compile_model(_huge_input(), tmp_path / "art", CompileOptions(target=target), progress=stages.append)
    assert stages == ["prepare"]


def test_cli_refuses_a_huge_input_in_one_line(monkeypatch, tmp_path: Path, capfd) -> None:
    _memory(monkeypatch, 16 * GIB)
    path = tmp_path / "m.onnx"
    onnx.save(_huge_input(), path)
    assert main(["compile", str(path), "-o", str(tmp_path / "art"), "--quiet"]) == 2
    line = _one_error_line(capfd)
    assert "111.8 GiB" in line and "16.0 GiB" in line and "--allow-huge-arena" in line
    assert not (tmp_path / "art").exists()


def test_the_plan_stage_refuses_an_arena_that_does_not_fit(monkeypatch, tmp_path: Path) -> None:
    """Weights, input and output fit exactly, so only the planned arena tips it over."""
    _memory(monkeypatch, RESIDENT)
    stages: list[str] = []
    with pytest.raises(MemoryLimitError, match=r"^after planning: the model needs .* \(arena \d+ B \+ weights "
                                               r"32\.0 KiB \+ inputs 256 B \+ outputs 256 B\), more than physical "
                                               r"memory \(32\.5 KiB\); pass --allow-huge-arena"):
        compile_model(_two_matmuls(), tmp_path / "art", CompileOptions(time_limit=1.0), progress=stages.append)
    assert stages[-1] == "plan"


def test_the_flag_compiles_it_anyway(monkeypatch, tmp_path: Path, capfd) -> None:
    _memory(monkeypatch, RESIDENT // 2)  # below both checks
    path = tmp_path / "m.onnx"
    onnx.save(_two_matmuls(), path)
    args = ["compile", str(path), "-o", str(tmp_path / "art"), "--time-limit", "1", "--quiet"]
    assert main(args) == 2
    assert "from the ONNX shapes" in _one_error_line(capfd)
    assert main([*args, "--allow-huge-arena"]) == 0
    assert (tmp_path / "art" / "manifest.json").is_file()


def test_the_flag_is_not_part_of_the_artifact_id() -> None:
    """It changes whether a compile goes on, never what it writes."""
    model, options = _two_matmuls(), CompileOptions()
    assert predicted_id(model, options) == predicted_id(model, replace(options, allow_huge_arena=True))
    assert "allow_huge_arena" not in options.as_manifest()


def test_cuda_sums_are_not_held_against_host_memory(monkeypatch) -> None:
    """Device memory is unknown at compile time: only each tensor alone must fit the host."""
    _memory(monkeypatch, 1000)
    assert host_limit("cuda") == MemoryLimit(None, 1000, "physical memory")
    assert host_limit("llvm") == MemoryLimit(1000, 1000, "physical memory")
    check_fits({"weights": 900, "inputs": 900}, {"w": 900, "x": 900}, host_limit("cuda"), "test")
    with pytest.raises(MemoryLimitError, match=r"test: the model needs 1.8 KiB \(weights 900 B \+ inputs 900 B\)"):
        check_fits({"weights": 900, "inputs": 900}, {"w": 900, "x": 900}, host_limit("llvm"), "test")


def test_cuda_without_a_visible_gpu_leaves_the_arena_unchecked() -> None:
    import tvm

    if tvm.cuda(0).exist:
        pytest.skip("a GPU is visible: its memory is the limit")
    assert memory_limit.device_limit("cuda").total is None


@pytest.mark.parametrize("size, text", [(0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"),
                                        (3 * 100_000 * 100_000 * 4, "111.8 GiB"), (4 * 2**40, "4.0 TiB")])
def test_sizes_read_in_one_unit(size: int, text: str) -> None:
    assert fmt_bytes(size) == text
