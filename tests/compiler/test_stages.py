"""The one compile driver: the stages it runs, for inference and training, and that no
option is silently ignored in either mode (each works there or is refused in one line)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from graphopt.cli import main
from graphopt.compiler import STAGES, compile_model, stage_names
from graphopt.errors import InputError
from graphopt.options import CompileOptions, TrainOptions
from graphopt.train.models import mlp

INFERENCE = ["prepare", "import", "lower", "reorder", "concat", "extract", "plan", "verify", "stock", "build", "write"]


@pytest.fixture(scope="module")
def small_mlp(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("driver") / "mlp.onnx"
    onnx.save(mlp(batch=8, hidden=(16,)), path)
    return path


def test_one_list_serves_both_modes() -> None:
    assert stage_names(CompileOptions()) == INFERENCE
    assert stage_names(CompileOptions(reorder=False, concat_in_place=False)) == [
        s for s in INFERENCE if s not in ("reorder", "concat")]
    training = stage_names(TrainOptions())
    assert training == ["prepare", "import", "gradient", "lower", "reorder", "extract", "plan", "swap", "verify",
                        "stock", "build", "write"]
    measured = stage_names(TrainOptions(memory_budget="80%", step_costs="measured"))
    assert measured[measured.index("plan") + 1:measured.index("verify")] == ["profile", "swap"]
    assert [s.name for s in STAGES] == sorted({s.name for s in STAGES}, key=[s.name for s in STAGES].index)


def test_progress_reports_exactly_the_stages_run(small_mlp: Path, tmp_path: Path) -> None:
    said: list[str] = []
    options = CompileOptions(time_limit=1.0)
    result = compile_model(small_mlp, tmp_path / "art", options, progress=said.append)
    assert said == stage_names(options)
    assert list(result.plan["stage_seconds"]) == said[:-1]  # plan.json is written by the last stage


@pytest.mark.parametrize("flag", [["--memory-budget", "50%"], ["--loss", "mse"], ["--optimizer", "adam:lr=1e-3"],
                                  ["--swap-planner", "capuchin"], ["--step-costs", "measured"],
                                  ["--link-bandwidth", "1e9"], ["--link-latency", "1e-5"], ["--frozen", "w"]])
def test_training_knobs_without_train_are_refused(small_mlp: Path, tmp_path: Path, capsys, flag: list[str]) -> None:
    code = main(["compile", str(small_mlp), "--quiet", "-o", str(tmp_path / "art"), *flag])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and flag[0] in err[0] and "--train" in err[0]
    assert not (tmp_path / "art").exists()


def test_training_refuses_what_it_cannot_honour(small_mlp: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="concatenation in place"):
        compile_model(small_mlp, tmp_path / "a", TrainOptions(concat_in_place=True))
    with pytest.raises(InputError, match="tuning db"):
        compile_model(small_mlp, tmp_path / "b", TrainOptions(schedules=False, tuning_db=tmp_path))
    with pytest.raises(InputError, match="step-costs"):
        compile_model(small_mlp, tmp_path / "c", TrainOptions(step_costs="guessed"))
    assert not any((tmp_path / name).exists() for name in "abc")


def test_training_honours_no_schedules(small_mlp: Path, tmp_path: Path, capsys) -> None:
    """--no-schedules used to be dropped by the training compile; now its kernels are TVM's."""
    plans = {}
    for name, extra in (("ours", []), ("stock", ["--no-schedules"])):
        art = tmp_path / name
        assert main(["compile", str(small_mlp), "--train", "--quiet", "--time-limit", "1", "-o", str(art), *extra]) == 0
        plans[name] = _plan(art)
    ours, stock = plans["ours"]["schedules"]["by_rule"], plans["stock"]["schedules"]["by_rule"]
    assert set(stock) <= {"unscheduled", "scheduled elsewhere"}
    assert set(ours) - {"unscheduled", "scheduled elsewhere"}, ours
    assert plans["ours"]["arena_bytes"] == plans["stock"]["arena_bytes"]  # kernels never change the plan
    capsys.readouterr()


def test_training_applies_a_tuning_db(small_mlp: Path, tmp_path: Path) -> None:
    """--tuning-db used to be dropped by the training compile: now it is applied and enters the id."""
    from graphopt.kernels.tuning.db import TuningDB

    TuningDB.open(tmp_path / "db", create=True)
    plain = compile_model(small_mlp, tmp_path / "plain", TrainOptions(time_limit=1.0))
    tuned = compile_model(small_mlp, tmp_path / "tuned", TrainOptions(time_limit=1.0, tuning_db=tmp_path / "db"))
    assert tuned.manifest["options"]["tuning_db_sha256"] is not None
    assert plain.manifest["options"]["tuning_db_sha256"] is None
    assert tuned.manifest["id"] != plain.manifest["id"]
    assert np.isfinite(tuned.plan["arena_bytes"]) and tuned.plan["arena_bytes"] == plain.plan["arena_bytes"]


def _plan(art: Path) -> dict:
    from graphopt.artifact import load_plan

    return load_plan(art)
