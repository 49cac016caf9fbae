"""Fixtures: a toy repository (dataset -> prep -> fit -> score) built through the library API."""

from __future__ import annotations

from pathlib import Path

import pytest

from graphopt.pipelines import init
from graphopt.pipelines.components import make_spec
from tests.pipelines.toy import write_data

TOY = "tests.pipelines.toy"


def stage(repo, name: str, kind: str, **kw) -> dict:
    spec = make_spec(kind, repo.store, **kw)
    repo.stage(name, spec)
    return spec


def py(repo, name: str, fn: str, inputs: list[str], **params) -> dict:
    return stage(repo, name, "python", ref=f"{TOY}:{fn}", inputs=inputs, params=params)


def build_base(root: Path):
    repo = init(root)
    stage(repo, "data", "dataset", files=[write_data(root / "files" / "data.npz")])
    py(repo, "prep", "prep", ["data"], factor=1.0)
    py(repo, "fit", "fit", ["prep"], width=4)
    py(repo, "score", "score", ["fit"])
    repo.commit("base")
    return repo


@pytest.fixture
def toy_repo(tmp_path):
    repo = build_base(tmp_path)
    yield repo
    repo.close()
