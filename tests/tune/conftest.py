"""Fixtures for the tuner's tests: a tiny model, a 4-configuration space (compiles in about a second),
and the study storage: the test of sharing a study runs on SQLite and on a real PostgreSQL server
(tests/tune/postgres.py, started once per session); the others run on SQLite."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import onnx
import optuna
import pytest

from graphopt.examples.models import EXAMPLES
from graphopt.tune.storage import sqlalchemy_url
from tests.tune import postgres

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


@pytest.fixture(scope="session")
def postgres_server():
    """One PostgreSQL server for the session. No server binaries: the tests that use it fail;
    GRAPHOPT_TEST_NO_POSTGRES=1 skips them instead (a machine without PostgreSQL, on purpose)."""
    if os.environ.get(postgres.OPT_OUT) == "1":
        pytest.skip(f"{postgres.OPT_OUT}=1: the PostgreSQL storage tests are skipped")
    try:
        server = postgres.start()
    except postgres.NoServer as exc:
        missing = str(exc)
    else:
        yield server
        server.stop()
        return
    pytest.fail(missing, pytrace=False)


@dataclass(frozen=True)
class Storage:
    """Where a test's studies live: the default SQLite file of the study directory, or a fresh
    database of the PostgreSQL server (given to `tune` as --storage)."""

    kind: str
    pg_url: str | None = None

    def url(self, study_dir: Path) -> str:
        return self.pg_url or f"sqlite:///{study_dir / 'study.db'}"

    def args(self) -> list[str]:
        return ["--storage", self.pg_url] if self.pg_url else []


@pytest.fixture(params=["sqlite", "postgresql"])
def storage(request) -> Storage:
    if request.param == "sqlite":
        return Storage("sqlite")
    server = request.getfixturevalue("postgres_server")
    return Storage("postgresql", server.url(server.new_database(request.node.originalname[:40])))


@pytest.fixture
def sqlite_storage() -> Storage:
    """For tests whose subject is not where studies live (a training study's loss, pruning by memory):
    the storages' difference (sharing a study) is tested on both in test_study.py."""
    return Storage("sqlite")


def tune_args(model: Path, space: Path, study_dir: Path, *extra: str) -> list[str]:
    return ["tune", str(model), "--space", str(space), "--dir", str(study_dir), "--quiet", "--repeat", "3", *extra]


def load(study_dir: Path, name: str = "mlp", url: str | None = None) -> optuna.Study:
    """The study as Optuna reads it (`url`: a Storage's url; default: the study directory's SQLite file)."""
    return optuna.load_study(study_name=name, storage=sqlalchemy_url(url or f"sqlite:///{study_dir / 'study.db'}"))
