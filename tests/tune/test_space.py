"""Search spaces: the default, YAML overrides, and every bad file as a one-line error."""

from __future__ import annotations

from pathlib import Path

import pytest

from graphopt.cli import main
from graphopt.tune.errors import SpaceError
from graphopt.tune.space import default_space, load_space


def test_default_space_is_a_finite_grid() -> None:
    grid = default_space(train=False).grid()
    assert grid is not None and len(grid) == 6 * 2 * 2 * 2
    assert len({tuple(sorted(c.items())) for c in grid}) == len(grid)
    train = default_space(train=True)
    assert {"lr", "optimizer", "memory_budget"} <= set(train.distributions())


def test_file_overrides_knob_by_knob(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("planner: [greedy_by_size, cpsat]\nreorder: false\ntime_limit: {low: 0.5, high: 2.0}\n")
    space = load_space(path, train=False)
    assert space.fixed_values()["reorder"] is False
    assert set(space.distributions()) == {"planner", "time_limit", "schedules"}
    assert space.grid() is None  # a range: not enumerable


def test_swap_model_and_kernel_library_reach_the_compile_options(tmp_path: Path, model: Path) -> None:
    from graphopt.tune.options import options_for

    path = tmp_path / "s.yaml"
    path.write_text("swap_model: [rich, plain]\nmemory_budget: 60%\n")
    assert load_space(path, train=True).distributions()["swap_model"].choices == ("rich", "plain")
    assert options_for(model, {"swap_model": "plain", "memory_budget": "60%"}, train=True).swap_model == "plain"
    assert options_for(model, {}, train=True).swap_model == "rich"
    assert options_for(model, {"kernel_library": "tvm"}, train=False).kernel_library == "tvm"
    path.write_text("swap_model: [exact]\n")
    with pytest.raises(SpaceError, match="unknown swap model 'exact'; choose rich, plain"):
        load_space(path, train=True)


@pytest.mark.parametrize("text, fragment", [
    ("planner: [nope]\n", "unknown planner 'nope'"),
    ("kernel_library: [tvm, mkl]\n", "unknown kernel library 'mkl'; choose auto, tvm, onednn"),
    ("swap_model: [rich]\n", "training compiles only"),
    ("colour: [red]\n", "unknown knob 'colour'"),
    ("lr: [0.1]\n", "training compiles only"),
    ("reorder: [1, 0]\n", "is not bool"),
    ("planner: []\n", "empty list"),
    ("time_limit: {low: 2, high: 1}\n", "low < high"),
    ("planner: [cpsat\n", "not valid YAML"),
    ("- a\n- b\n", "must be a mapping"),
])
def test_bad_space_files(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(SpaceError, match=fragment.replace("(", r"\(")):
        load_space(path, train=False)


def _one_line_error(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_cli_bad_space_file_exits_2(tmp_path: Path, model: Path, capsys) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("planner: [nope]\n")
    line = _one_line_error(capsys, ["tune", str(model), "--space", str(bad), "--dir", str(tmp_path / "s")])
    assert "unknown planner 'nope'" in line
    assert not (tmp_path / "s" / "study.db").exists()  # refused before any storage was created
    line = _one_line_error(capsys, ["tune", str(model), "--space", str(tmp_path / "missing.yaml")])
    assert "cannot read space file" in line


@pytest.mark.parametrize("url, fragment", [
    ("redis://host/0", "bad --storage"),
    ("sqlite:////no/such/dir/x.db", "does not exist"),
    ("journal:/no/such/dir/x.journal", "does not exist"),
    ("postgresql://u:secret@127.0.0.1:1/db", "cannot open"),
])
def test_cli_bad_storage_url_exits_2(tmp_path: Path, model: Path, capsys, url: str, fragment: str) -> None:
    line = _one_line_error(capsys, ["tune", str(model), "--storage", url, "--dir", str(tmp_path / "s")])
    assert fragment in line and "secret" not in line


def test_cli_loss_needs_train(tmp_path: Path, model: Path, capsys) -> None:
    line = _one_line_error(capsys, ["tune", str(model), "--objectives", "latency,loss", "--dir", str(tmp_path)])
    assert "needs --train" in line


def test_cli_join_needs_an_existing_study(tmp_path: Path, capsys) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    line = _one_line_error(capsys, ["tune", "--join", "--storage", url, "--study", "nothing"])
    assert "no study 'nothing'" in line
