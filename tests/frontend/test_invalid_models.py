"""Invalid models that pass onnx.checker and strict shape inference: refused in exactly one line
(regressions found by tests/test_fuzz.py)."""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from graphopt.cli import main
from graphopt.errors import ModelLoadError
from graphopt.frontend import prepare


def _transpose_reshape(path: Path, x_shape: list[int], perm: list[int] | None) -> Path:
    """x -> Transpose(perm) -> Reshape to [1, 6] -> y; `perm=None` leaves the attribute out."""
    transpose = helper.make_node("Transpose", ["x"], ["t"], name="t")
    if perm is not None:
        transpose.attribute.append(helper.make_attribute("perm", perm, attr_type=onnx.AttributeProto.INTS))
    graph = helper.make_graph(
        [transpose, helper.make_node("Reshape", ["t", "shape"], ["y"])],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 6])],
        [numpy_helper.from_array(np.array([1, 6], dtype=np.int64), "shape")])
    onnx.save(helper.make_model(graph, ir_version=10, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def _one_error_line(capfd) -> str:
    gc.collect()  # whatever the failed compile left to the collector speaks now, inside the capture
    err = [ln for ln in capfd.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


@pytest.mark.parametrize("perm", [[0, 2], []])
def test_a_short_transpose_perm_is_refused(tmp_path: Path, perm: list[int], capfd) -> None:
    """ONNX's shape inference accepts these (it infers some shape from the short perm) and TVM then
    compiled an arbitrary transposition; ONNX Runtime refuses the model."""
    path = _transpose_reshape(tmp_path / "m.onnx", [1, 2, 3], perm)
    with pytest.raises(ModelLoadError, match=r"Transpose node 't' has perm .* not a permutation of its input's 3 axes"):
        prepare(path)
    assert main(["compile", str(path), "-o", str(tmp_path / "art"), "--quiet"]) == 2
    assert "not a permutation" in _one_error_line(capfd)
    assert not (tmp_path / "art").exists()


@pytest.mark.parametrize("perm", [[0, 1, 1], [0, 1, 3]])
def test_a_full_length_bad_perm_is_refused_by_shape_inference(tmp_path: Path, perm: list[int], capfd) -> None:
    path = _transpose_reshape(tmp_path / "m.onnx", [1, 2, 3], perm)
    assert main(["compile", str(path), "-o", str(tmp_path / "art"), "--quiet"]) == 2
    assert "perm" in _one_error_line(capfd)


def test_transpose_without_perm_and_with_a_full_perm_still_compile(tmp_path: Path) -> None:
    for i, perm in enumerate((None, [2, 1, 0], [0, 2, 1])):
        prepare(_transpose_reshape(tmp_path / f"m{i}.onnx", [1, 2, 3], perm))


def _unsorted_topk(path: Path) -> Path:
    """A TopK with sorted=0, which TVM's converter raises on."""
    k = numpy_helper.from_array(np.array([2], np.int64), "k")
    graph = helper.make_graph([helper.make_node("TopK", ["x", "k"], ["v", "i"], axis=-1, sorted=0)], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 4])],
                              [helper.make_tensor_value_info("v", TensorProto.FLOAT, [3, 2])], [k])
    onnx.save(helper.make_model(graph, ir_version=10, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_a_failed_tvm_import_prints_one_line_only(tmp_path: Path, capfd) -> None:
    """TVM's importer fails on this TopK (sorted=0) and, with --no-fallback, nothing rescues it; its
    half-built BlockBuilder then logged a C++ warning on stderr after the error."""
    path = _unsorted_topk(tmp_path / "m.onnx")
    assert main(["compile", str(path), "-o", str(tmp_path / "art"), "--quiet", "--no-fallback"]) == 2
    line = _one_error_line(capfd)
    assert line.startswith("error: TVM's ONNX importer failed on TopK"), line
