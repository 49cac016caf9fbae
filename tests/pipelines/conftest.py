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


def gp(repo, *args) -> int:
    """`graphopt pipeline ARGS[0] --repo REPO ARGS[1:]` in process."""
    from graphopt.cli import main

    return main(["pipeline", args[0], "--repo", str(repo), *args[1:]])


def one_line_error(capsys) -> str:
    """The CLI's error contract: exactly one `error: ...` line, no traceback."""
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """The toy repository built once per module; tests copy it."""
    root = tmp_path_factory.mktemp("template") / "r"
    build_base(root).close()
    return root
