"""--cluster on every command that takes it: a bad value is one `error:` line, exit 2, before any work."""

from __future__ import annotations

from pathlib import Path

import pytest

from graphopt.cli import main


@pytest.mark.parametrize("command", [
    ["tune-kernels", "m.onnx", "--trials", "1", "--db", "DB"],
    ["pipeline", "merge", "other", "--repo", "REPO"],
])
def test_bad_cluster_is_refused_first(tmp_path: Path, capsys, command: list[str]) -> None:
    argv = [a.replace("DB", str(tmp_path / "db")).replace("REPO", str(tmp_path)) for a in command]
    if command[0] == "pipeline":
        from graphopt.pipelines import init

        init(tmp_path).close()
    assert main([*argv, "--cluster", "ray://nohost"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: bad --cluster 'ray://nohost'") and "\n" not in err
    assert not (tmp_path / "db").exists()


def test_export_needs_a_model_or_export(capsys) -> None:
    assert main(["tune-kernels", "--db", "sqlite:///x.db"]) == 2
    assert capsys.readouterr().err.strip() == "error: tune-kernels needs MODEL.onnx (or --db URL --export DIR)"
