"""`graphopt plan`: one JSON object, a valid placed CSV, user errors as InputError."""

from __future__ import annotations

import argparse
import json

import pytest

from graphopt.cli import plan as cli_plan
from graphopt.errors import InputError
from graphopt.plan.csv_io import read_solution
from graphopt.plan.validator import assert_valid


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="graphopt")
    cli_plan.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_plan_json_and_out(alloc_dir, tmp_path, capsys):
    out = tmp_path / "placed.csv"
    args = parse(["plan", str(alloc_dir / "C.1048576.csv"), "--time-limit", "5", "--json", "--out", str(out)])
    assert cli_plan.run(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {"height", "lower_bound", "seconds", "valid", "optimal", "planner"}
    assert result["valid"] and result["optimal"] and result["height"] == result["lower_bound"] == 1039360
    problem, placement = read_solution(out)
    assert_valid(problem, placement)
    assert placement.arena_bytes == result["height"]


def test_plan_text_summary(alloc_dir, capsys):
    args = parse(["plan", str(alloc_dir / "input.12.csv"), "--time-limit", "1"])
    assert cli_plan.run(args) == 0
    assert "height 12 B" in capsys.readouterr().out


def test_plan_missing_file_is_a_user_error(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        cli_plan.run(parse(["plan", str(tmp_path / "nope.csv")]))
