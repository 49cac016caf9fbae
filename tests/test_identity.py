"""The build id: one function predicts it, the driver stamps the same, and it covers
the tuning database by content (a tuned build never shares an untuned build's id).
The content id (`id`) is another thing: it also covers the built files."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

from graphopt.compiler import compile_model
from graphopt.identity import predicted_id
from graphopt.kernels.tuning.db import Record, TuningDB
from graphopt.options import CompileOptions
from graphopt.train.models import mlp


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("identity") / "mlp.onnx"
    onnx.save(mlp(batch=4, hidden=(8,)), path)
    return path


def _db(path: Path, *knobs: int) -> Path:
    db = TuningDB.open(path, create=True)
    for i, value in enumerate(knobs):
        db.commit(Record(workload=f"w{i}", target="llvm -mcpu=test", rule="gemm", knobs={"rows": value}))
    return path


def test_the_tuning_db_content_enters_the_id(model_file: Path, tmp_path: Path) -> None:
    untuned = predicted_id(model_file, CompileOptions())
    empty = predicted_id(model_file, CompileOptions(tuning_db=_db(tmp_path / "empty")))
    one = predicted_id(model_file, CompileOptions(tuning_db=_db(tmp_path / "one", 4)))
    other = predicted_id(model_file, CompileOptions(tuning_db=_db(tmp_path / "other", 6)))
    same_content = predicted_id(model_file, CompileOptions(tuning_db=_db(tmp_path / "copy", 4)))
    assert len({untuned, empty, one, other}) == 4
    assert same_content == one  # the content, not the folder's path


def test_the_driver_stamps_the_predicted_id(model_file: Path, tmp_path: Path) -> None:
    options = CompileOptions(time_limit=1.0, tuning_db=_db(tmp_path / "db", 3))
    result = compile_model(model_file, tmp_path / "art", options)
    assert result.manifest["build_id"] == predicted_id(model_file, options)
    assert result.manifest["id"] != result.manifest["build_id"]  # the content id covers the files too


def test_the_tuner_and_the_pipeline_store_use_the_one_function(model_file: Path) -> None:
    from graphopt.pipelines.builtins import compile_options, predicted_artifact_id
    from graphopt.tune import trial

    assert trial.predicted_id is predicted_id  # the tuner keys its cache by the one function itself
    params = {"planner": "greedy_by_size"}
    assert predicted_artifact_id(model_file, params) == predicted_id(model_file, compile_options(params))
