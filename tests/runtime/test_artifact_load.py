"""Artifacts whose manifest was rewritten to match edited content (no pin, no key): what the
runtime reads must still be checked, and every failure is one line with exit 2, never an internal
error (regressions found by tests/test_fuzz.py; tests/artifact_edit.py keeps the manifest
self-consistent, so only the check under test is left to refuse them)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from graphopt.artifact import MANIFEST, PARAMS, PLAN, load_manifest, load_plan
from graphopt.cli import main
from graphopt.compiler import CompileOptions, compile_model
from graphopt.errors import ArtifactError
from tests.artifact_edit import edited_copy, restamp


@pytest.fixture(scope="module")
def art(tmp_path_factory) -> tuple[Path, Path]:
    """(artifact, an input .npy) of x[1,8] -> MatMul -> Add -> Relu -> y[1,4]."""
    work = tmp_path_factory.mktemp("artifact-load")
    rng = np.random.default_rng(0)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Add", ["h", "b"], ["a"]),
         helper.make_node("Relu", ["a"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        [numpy_helper.from_array(rng.standard_normal((8, 4)).astype(np.float32), "W"),
         numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "b")])
    onnx.save(helper.make_model(graph, ir_version=10, opset_imports=[helper.make_opsetid("", 17)]), work / "m.onnx")
    compile_model(work / "m.onnx", work / "art", CompileOptions(time_limit=1.0))
    np.save(work / "x.npy", rng.standard_normal((1, 8)).astype(np.float32))
    return work / "art", work / "x.npy"


def _run_refused(capsys, art_dir: Path, x: Path) -> str:
    assert main(["run", str(art_dir), "--input", f"x={x}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "internal error" not in err[0], err
    return err[0]


def _drop(*path):
    def edit(manifest: dict) -> None:
        parent = manifest
        for step in path[:-1]:
            parent = parent[step]
        del parent[path[-1]]
    return edit


def _set(value, *path):
    def edit(manifest: dict) -> None:
        parent = manifest
        for step in path[:-1]:
            parent = parent[step]
        parent[path[-1]] = value
    return edit


@pytest.mark.parametrize("edit, fragment", [
    (_drop("inputs", 0, "shape"), "`inputs` is not a list of {name, shape, dtype}"),
    (_drop("inputs", 0, "name"), "`inputs` is not a list"),
    (_drop("outputs", 0, "dtype"), "`outputs` is not a list"),
    (_set("1x8", "inputs", 0, "shape"), "`inputs` is not a list"),
    (_set([1, -8], "inputs", 0, "shape"), "`inputs` is not a list"),
    (_set({"name": "y"}, "outputs"), "`outputs` is not a list"),
    (_drop("param_keys"), "`param_keys` is missing"),
    (_set("p00000", "param_keys"), "`param_keys` is missing or not a list"),
], ids=["input-shape", "input-name", "output-dtype", "shape-text", "shape-negative", "outputs-dict",
        "param-keys", "param-keys-text"])
def test_a_rewritten_manifest_without_what_the_runtime_reads_is_one_line(art, tmp_path, capsys, edit, fragment):
    art_dir, x = art
    copy = edited_copy(art_dir, tmp_path / "art", manifest=edit)
    with pytest.raises(ArtifactError, match=fragment.replace("{", r"\{").replace("}", r"\}")):
        load_manifest(copy)
    assert fragment in _run_refused(capsys, copy, x)


def test_a_plan_that_is_not_utf8_is_one_line(art, tmp_path, capsys):
    art_dir, x = art
    copy = tmp_path / "art"
    shutil.copytree(art_dir, copy)
    data = bytearray((copy / PLAN).read_bytes())
    data[10] = 0x9b  # not valid UTF-8 anywhere
    (copy / PLAN).write_bytes(bytes(data))
    restamp(copy)
    with pytest.raises(ArtifactError, match="cannot read plan.json"):
        load_plan(copy)
    assert "cannot read plan.json" in _run_refused(capsys, copy, x)


def test_a_plan_that_is_not_an_object_is_one_line(art, tmp_path, capsys):
    art_dir, x = art
    copy = tmp_path / "art"
    shutil.copytree(art_dir, copy)
    (copy / PLAN).write_text("[]")
    restamp(copy)
    assert "plan.json is not a JSON object" in _run_refused(capsys, copy, x)


@pytest.mark.parametrize("damage", ["truncated", "crc"])
def test_a_params_file_that_is_no_readable_zip_is_one_line(art, tmp_path, capsys, damage):
    art_dir, x = art
    copy = tmp_path / "art"
    shutil.copytree(art_dir, copy)
    data = bytearray((copy / PARAMS).read_bytes())
    if damage == "truncated":
        data = data[: len(data) // 2]
    else:  # a byte of the first array's data: the zip's CRC-32 no longer matches
        data[len(data) // 4] ^= 0x04
    (copy / PARAMS).write_bytes(bytes(data))
    restamp(copy)
    _run_refused(capsys, copy, x)


def test_the_unedited_artifact_runs(art, tmp_path, capsys):
    """The control: the same copy-and-restamp with no edit loads and runs."""
    art_dir, x = art
    copy = edited_copy(art_dir, tmp_path / "art", manifest=lambda m: None)
    assert json.loads((copy / MANIFEST).read_text())["id"] == json.loads((art_dir / MANIFEST).read_text())["id"]
    assert main(["run", str(copy), "--input", f"x={x}"]) == 0
