"""Fixtures for the tuner's tests: a tiny model and a 4-configuration space (compiles in about a second)."""

from __future__ import annotations

from pathlib import Path

import onnx
import optuna
import pytest

from graphopt.examples.models import EXAMPLES

SMALL_SPACE = """\
planner: [greedy_by_size, smartpool]
schedules: [true, false]
reorder: true
time_limit: 1.0
"""


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "mlp.onnx"
    onnx.save(EXAMPLES["mlp"](), path)
    return path


@pytest.fixture(scope="module")
def space_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("space") / "space.yaml"
    path.write_text(SMALL_SPACE)
    return path


def tune_args(model: Path, space: Path, study_dir: Path, *extra: str) -> list[str]:
    return ["tune", str(model), "--space", str(space), "--dir", str(study_dir), "--quiet", "--repeat", "3", *extra]


def load(study_dir: Path, name: str = "mlp") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{study_dir / 'study.db'}")
