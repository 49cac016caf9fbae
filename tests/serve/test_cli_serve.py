"""`graphopt serve` on the command line: bad arguments are one line and exit 2; a real
loopback server answers, guards with its token, and binds 127.0.0.1 by default."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time

import httpx
import pytest

from graphopt.cli import main


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


@pytest.mark.parametrize("argv, says", [
    (["serve"], "at least one --variant"),
    (["serve", "--variant", "nameonly"], "NAME=ART"),
    (["serve", "--variant", "a=/no/such/artifact"], "no such artifact"),
    (["serve", "--variant", "a=x", "--slo-ms", "0"], "--slo-ms must be positive"),
    (["serve", "--variant", "a=x", "--port", "70000"], "--port must be"),
    (["serve", "--variant", "a=x", "--max-batch", "0"], "--max-batch"),
    (["serve", "--variant", "a=x", "--batch-buckets", "1,four"], "--batch-buckets expects sizes"),
    (["serve", "--variant", "a=x", "--batch-buckets", "0,4"], "--batch-buckets sizes must be at least 1"),
    (["serve", "--variant", "a=x", "--token-file", "/no/such/token"], "cannot read --token-file"),
])
def test_bad_arguments_are_one_line_and_exit_2(capsys, argv, says) -> None:
    assert main(argv) == 2
    assert says in _one_error_line(capsys)


def test_argparse_errors_are_one_line_too(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--variant", "a=x", "--slo-ms", "fast"])
    assert exit_info.value.code == 2
    assert "--slo-ms" in _one_error_line(capsys)


def test_tampered_artifact_is_refused_by_the_cli(mlp_variants, tmp_path, capsys) -> None:
    copy = tmp_path / "art"
    shutil.copytree(mlp_variants["w8"], copy)
    data = bytearray((copy / "params.npz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / "params.npz").write_bytes(bytes(data))
    assert main(["serve", "--variant", f"w8={copy}:0.5"]) == 2
    assert "sha-256 mismatch" in _one_error_line(capsys)


def test_loopback_server_answers_and_checks_its_token(mlp_variants, tmp_path) -> None:
    token = tmp_path / "token"
    token.write_text("tok-123\n")
    command = [sys.executable, "-m", "graphopt.cli", "serve", "--variant", f"w8={mlp_variants['w8']}:0.5",
               "--variant", f"w32={mlp_variants['w32']}:0.9", "--port", "0", "--token-file", str(token)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = None
        deadline = time.monotonic() + 60
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            if line.startswith("serving"):
                url = line.split(" on ")[1].split()[0]
        assert url.startswith("http://127.0.0.1:")  # loopback unless --host says otherwise
        body = {"input": [[0.25] * 64, [0.5] * 64]}
        assert httpx.post(f"{url}/infer", json=body, timeout=10).status_code == 401
        reply = httpx.post(f"{url}/infer", json=body, headers={"Authorization": "Bearer tok-123"}, timeout=10)
        assert reply.status_code == 200 and len(reply.json()["outputs"]["logits"]) == 2
        assert httpx.get(f"{url}/health", timeout=10).json()["status"] == "ok"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
