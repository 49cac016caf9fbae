"""`graphopt pipeline ...` end to end on the toy pipeline; errors are one line, exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from graphopt.cli import main
from tests.pipelines.conftest import TOY, gp, one_line_error
from tests.pipelines.toy import write_data


def test_cli_flow_and_errors(tmp_path, capsys):
    r = tmp_path
    assert main(["pipeline", "init", str(r)]) == 0
    data = write_data(r / "data.npz")
    assert gp(r, "add-component", "data", "--kind", "dataset", "--file", str(data)) == 0
    assert gp(r, "add-component", "prep", "--kind", "python", "--ref", f"{TOY}:prep", "--input", "data") == 0
    assert gp(r, "add-component", "score", "--kind", "python", "--ref", f"{TOY}:score", "--input", "prep") == 0
    assert gp(r, "status") == 0 and "staged changes" in capsys.readouterr().out
    assert gp(r, "commit", "-m", "base", "--quiet") == 0
    assert gp(r, "branch", "dev") == 0 and gp(r, "checkout", "dev") == 0
    assert gp(r, "add-component", "score", "--kind", "python", "--ref", f"{TOY}:score", "--input", "prep",
              "--param", "bonus=2.5") == 0
    assert gp(r, "commit", "-m", "bonus", "--quiet") == 0
    assert gp(r, "checkout", "main") == 0
    assert gp(r, "add-component", "prep", "--kind", "python", "--ref", f"{TOY}:prep", "--input", "data",
              "--param", "factor=2") == 0
    assert gp(r, "commit", "-m", "factor", "--quiet") == 0
    capsys.readouterr()
    assert gp(r, "merge", "dev", "--metric", "score", "--maximize", "--quiet", "--json") == 0
    out = json.loads(capsys.readouterr().out)
    assert out["tree_leaves"] == 4 and out["best"]["metrics"]["score"] > 0
    assert gp(r, "log", "--json") == 0
    entries = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(entries[0]["parents"]) == 2 and len(entries) == 4
    assert gp(r, "diff", "dev") == 0 and "prep" in capsys.readouterr().out
    assert gp(r, "fsck") == 0 and "no problems" in capsys.readouterr().out
    assert gp(r, "gc") == 0

    assert gp(r, "checkout", "nope") == 2
    assert "unknown branch 'nope'" in one_line_error(capsys)
    assert gp(r, "add-component", "x", "--kind", "python", "--ref", f"{TOY}:score", "--input", "ghost") == 2
    assert "ghost" in one_line_error(capsys)
    assert gp(r, "merge", "dev", "--metric", "nosuch") == 2
    one_line_error(capsys)
    assert main(["pipeline", "log", "--repo", str(tmp_path.parent)]) == 2
    assert "no pipeline repository" in one_line_error(capsys)


def test_fsck_names_a_corrupt_object_and_exits_2(tmp_path, capsys):
    main(["pipeline", "init", str(tmp_path)])
    gp(tmp_path, "add-component", "data", "--kind", "dataset", "--file", str(write_data(tmp_path / "d.npz")))
    oid = next(p for p in (tmp_path / ".graphopt-pipeline" / "objects").rglob("*") if p.is_file())
    os.chmod(oid, 0o644)
    oid.write_bytes(b"garbage")
    capsys.readouterr()
    assert gp(tmp_path, "fsck") == 2
    captured = capsys.readouterr()
    assert oid.parent.name + oid.name in captured.out and "corrupt" in captured.out
    assert captured.err.startswith("error: fsck: 1 problem")


@pytest.mark.parametrize("sub", ["", "init", "add-component", "commit", "branch", "checkout", "log", "diff",
                                 "merge", "status", "gc", "fsck"])
def test_help_everywhere(sub):
    args = [sys.executable, "-m", "graphopt.cli", "pipeline", *([sub] if sub else []), "--help"]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0 and "usage:" in proc.stdout
