"""`graphopt inspect` shows the validator's verdict on the plan it displays, not the
`valid` flag stored in plan.json: offsets edited to overlap are reported invalid."""

from __future__ import annotations

import json

import onnx
import pytest

from graphopt.cli import main
from graphopt.compiler import CompileOptions, compile_model
from graphopt.examples.models import EXAMPLES
from graphopt.plan.record import revalidate
from tests.artifact_edit import edited_copy


@pytest.fixture(scope="module")
def art(tmp_path_factory):
    work = tmp_path_factory.mktemp("inspect")
    onnx.save(EXAMPLES["residual_branch_net"](), work / "m.onnx")
    compile_model(work / "m.onnx", work / "art", CompileOptions(time_limit=1.0))
    return work / "art"


def _overlap(plan: dict) -> None:
    """Moves a buffer onto another one live at the same time; keeps arena_bytes and the stored
    `valid: true` consistent-looking, so only the overlap is wrong."""
    bufs = plan["buffers"]
    a, b = next((a, b) for a in bufs for b in bufs
                if a["id"] < b["id"] and a["start"] < b["end"] and b["start"] < a["end"] and a["offset"] != b["offset"])
    b["offset"] = a["offset"]
    plan["arena_bytes"] = max(x["offset"] + x["size"] for x in bufs)
    assert plan["valid"] is True


def test_inspect_reports_overlapping_offsets_as_invalid(art, tmp_path, capsys):
    bad = edited_copy(art, tmp_path / "bad", plan=_overlap)
    assert main(["inspect", str(bad), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["valid"] is False and "overlap" in data["validation_error"]
    assert main(["inspect", str(bad)]) == 0
    out = capsys.readouterr().out
    assert "valid: False" in out and "overlap" in out


def test_inspect_of_a_good_plan_is_valid_with_no_error(art, capsys):
    assert main(["inspect", str(art), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["valid"] is True and data["validation_error"] is None


def test_a_malformed_plan_record_is_invalid_not_a_crash(art):
    plan = json.loads((art / "plan.json").read_text())
    assert revalidate(plan).valid
    del plan["buffers"][0]["size"]
    report = revalidate(plan)
    assert not report.valid and "size" in report.errors[0]
    plan["buffers"][0]["size"] = 0
    assert "size must be positive" in revalidate(plan).errors[0]
