"""The process-memory benchmark's core measurement on one tiny model: every field real and sane."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from benchmarks import process_memory
from benchmarks.artifact_size import excess_tensors
from benchmarks.process_report import markdown, meta

MODEL = "example:mlp"


@pytest.fixture(scope="module")
def row(tmp_path_factory) -> tuple[dict, Path]:
    work = tmp_path_factory.mktemp("process-memory")
    return process_memory.bench_model(MODEL, work, ["graphopt", "onnxruntime"]), work


def test_each_engine_peaks_at_or_above_its_import(row):
    result, _work = row
    for engine in ("graphopt", "onnxruntime"):
        got = result["rss"][engine]
        assert "error" not in got, got
        assert 0 < got["import_MB"] <= got["peak_MB"]


def test_sizes_and_ratio_come_from_the_files(row):
    result, work = row
    model_path = work / f"{MODEL.removeprefix('example:')}.onnx"
    weights = sum(numpy_helper.to_array(t).nbytes for t in onnx.load(str(model_path)).graph.initializer)
    with np.load(work / "art" / "params.npz") as params:
        stored = sum(params[k].nbytes for k in params.files)
    assert result["onnx_file_bytes"] == model_path.stat().st_size
    assert result["onnx_weight_bytes"] == weights > 0
    assert result["stored_params_bytes"] == stored > 0
    assert result["params_ratio"] == pytest.approx(stored / weights)
    assert result["params_file_bytes"] >= stored  # the archive holds the data plus headers
    with zipfile.ZipFile(work / "art" / "params.npz") as archive:
        assert result["stored_params"] == len(archive.namelist())


def test_every_default_on_option_is_turned_off_once(row):
    result, _work = row
    assert list(result["arena_off"]) == process_memory.arena_toggles()
    assert "reorder" in result["arena_off"] and "concat_in_place" in result["arena_off"]
    assert result["arena_default"] >= result["lower_bound"] > 0
    raised = [opt for opt, off in result["arena_off"].items() if isinstance(off, int) and result["arena_default"] > off]
    assert result["raised_by"] == raised


def test_the_report_has_the_row_and_the_targets(row):
    result, _work = row
    text = markdown([result], meta("benchmarks.memory process", ["--models", MODEL]))
    assert f"| {MODEL} |" in text
    assert "graphopt's peak RSS <= ONNX Runtime's" in text


def test_a_missing_engine_gets_a_note_and_no_column(monkeypatch, capsys):
    real = process_memory.importlib.util.find_spec
    monkeypatch.setattr(process_memory.importlib.util, "find_spec",
                        lambda name: None if name == "openvino" else real(name))
    assert "openvino" not in process_memory.available_engines()
    assert "openvino is not installed" in capsys.readouterr().err


def test_excess_lists_only_stored_tensors_without_a_same_size_weight():
    stored = [("w", (4, 4), 64), ("packed", (2, 8), 64), ("folded", (3,), 12)]
    assert [t["name"] for t in excess_tensors(stored, [64, 64, 100])] == ["folded"]
    assert excess_tensors(stored, [64, 64, 12]) == []


def test_split_runs_merge_into_one_result_first_row_wins(tmp_path):
    first = {"meta": {"command": "python -m benchmarks.memory process --models a,b", "date": "d"},
             "rows": [{"model": "a", "n": 1}, {"model": "b", "n": 1}]}
    (tmp_path / "one.json").write_text(json.dumps(first))
    log = '[b] compiling and measuring...\n{"model": "b", "n": 2}\n{"model": "c", "n": 2}\n'
    (tmp_path / "two.err").write_text(log)
    rows, run_meta = process_memory.merged([tmp_path / "one.json", tmp_path / "two.err"], ["--merge", "x"])
    assert [(r["model"], r["n"]) for r in rows] == [("a", 1), ("b", 1), ("c", 2)]
    commands = run_meta["command"].splitlines()
    assert commands[0] == first["meta"]["command"] and "two.err" in commands[1] and "--merge" in commands[2]
