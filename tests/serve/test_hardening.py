"""Hostile and careless clients against a real `graphopt serve` (a subprocess on a free loopback
port, small limits): JSON nested 100,000 deep is a 400, a client that sends its request head
slowly (or nothing at all) is cut off at the header deadline, one that hangs up mid-body costs
one log line (no traceback, no 500) and the server answers the next request. Every test is
bounded: raw sockets with timeouts, the server stopped by the fixture."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from graphopt.cli import main
from graphopt.serve.app import Limits, create_app
from graphopt.serve.service import Service
from graphopt.serve.variants import VariantSpec, load_variants

HEADER_TIMEOUT_S = 2.0
MARGIN_S = 1.5
ROW = [0.25] * 64
DEEP = 100_000


@dataclass
class Server:
    url: str
    host: str
    port: int
    log: Path
    seen: int = 0  # how much of the log earlier tests have read

    def new_log(self) -> str:
        text = self.log.read_text()
        fresh, self.seen = text[self.seen:], len(text)
        return fresh


@pytest.fixture(scope="module")
def server(mlp_variants, tmp_path_factory):
    log = tmp_path_factory.mktemp("serve-hardening") / "stderr.log"
    command = [sys.executable, "-m", "graphopt.cli", "serve", "--variant", f"w8={mlp_variants['w8']}:0.5",
               "--variant", f"w32={mlp_variants['w32']}:0.9", "--port", "0",
               "--header-timeout", f"{HEADER_TIMEOUT_S:g}", "--slo-ms", "10000"]  # a slow body counts against the SLO
    with log.open("w") as err:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err, text=True)
    try:
        url = None
        deadline = time.monotonic() + 60
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line, log.read_text()
            if line.startswith("serving"):
                url = line.split(" on ")[1].split()[0]
        assert url is not None, "the server did not start within 60 s"
        host, port = url.removeprefix("http://").rsplit(":", 1)
        yield Server(url, host, int(port), log)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _head(length: int) -> bytes:
    return (f"POST /infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\n\r\n").encode()


def _body() -> bytes:
    return b'{"input": [' + ", ".join([str(ROW)] * 2).encode() + b"]}"


def _exchange(sock: socket.socket, request: bytes) -> tuple[int, bytes]:
    """Sends `request` and reads one response (Content-Length framed): status and body."""
    if request:
        sock.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before a response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = next(int(v) for k, _, v in (ln.partition(":") for ln in lines[1:]) if k.lower() == "content-length")
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed mid-response"
        body += chunk
    return int(lines[0].split()[1]), body


def _assert_quiet(log: str) -> None:
    assert "Traceback" not in log and "inference failed" not in log and "Exception in ASGI" not in log, log


# --- (a) deeply nested JSON --------------------------------------------------------------------
def test_json_nested_100000_deep_is_a_400_not_a_500(server) -> None:
    server.new_log()
    for body in (b'{"input": ' + b"[" * DEEP + b"]" * DEEP + b"}",
                 b'{"input": ' + b'{"a": ' * DEEP + b"1" + b"}" * DEEP + b"}",
                 b"[" * DEEP + b"]" * DEEP):
        reply = httpx.post(f"{server.url}/infer", content=body, headers={"content-type": "application/json"},
                           timeout=10)
        assert reply.status_code == 400, reply.text
        error = reply.json()["error"]
        assert "nested too deeply" in error and len(error) < 200, error
    assert httpx.post(f"{server.url}/infer", json={"input": [ROW]}, timeout=10).status_code == 200
    time.sleep(0.2)
    _assert_quiet(server.new_log())


def test_the_body_limit_applies_before_json_is_parsed(mlp_variants) -> None:
    service = Service(load_variants([VariantSpec("w8", mlp_variants["w8"], 0.5)]), 0.2)
    deep = b'{"input": ' + b"[" * DEEP + b"]" * DEEP + b"}"
    with TestClient(create_app(service, None, Limits(max_body_bytes=len(deep) - 1))) as client:
        reply = client.post("/infer", content=deep, headers={"content-type": "application/json"})
        assert reply.status_code == 413 and "limit of" in reply.json()["error"]
    with TestClient(create_app(service, None, Limits(max_body_bytes=len(deep)))) as client:
        reply = client.post("/infer", content=deep, headers={"content-type": "application/json"})
        assert reply.status_code == 400 and "nested too deeply" in reply.json()["error"]


# --- (b) slow request heads ----------------------------------------------------------------------
@pytest.mark.parametrize("trickle", [b"", b"POST /infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"],
                         ids=["silent", "one-byte-per-half-second"])
def test_a_slow_request_head_is_cut_off_at_the_header_deadline(server, trickle) -> None:
    """Each byte arrives well within any idle timeout; the head as a whole misses the deadline."""
    reply, closed_after = b"", None
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        sock.settimeout(0.5)
        began = time.monotonic()
        sent = 0
        while closed_after is None and time.monotonic() - began < HEADER_TIMEOUT_S + MARGIN_S:
            try:
                if trickle:
                    sock.sendall(trickle[sent % len(trickle):][:1])
                    sent += 1
                chunk = sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:  # reset by the server
                closed_after = time.monotonic() - began
                break
            reply += chunk
            if not chunk:
                closed_after = time.monotonic() - began
    assert closed_after is not None, f"still open after {HEADER_TIMEOUT_S + MARGIN_S:g} s"
    assert HEADER_TIMEOUT_S - 0.5 <= closed_after <= HEADER_TIMEOUT_S + MARGIN_S, closed_after
    if trickle:
        assert reply.startswith(b"HTTP/1.1 408 "), reply
    else:
        assert reply == b""


def test_normal_clients_are_not_hurried_by_the_header_deadline(server) -> None:
    """One keep-alive connection lives longer than the deadline, and a body may take longer than
    it (the body has its own timeout): the deadline covers each request head only."""
    body = _body()
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        for i in range(3):
            if i:
                time.sleep(0.9 * HEADER_TIMEOUT_S / 2)
            status, reply = _exchange(sock, _head(len(body)) + body)
            assert status == 200, reply
        sock.sendall(_head(len(body)))
        for start in range(0, len(body), len(body) // 3 + 1):
            time.sleep(HEADER_TIMEOUT_S / 2.5)
            sock.sendall(body[start:start + len(body) // 3 + 1])
        status, reply = _exchange(sock, b"")
        assert status == 200, reply


# --- (c) a client that hangs up mid-body ------------------------------------------------------------
def test_a_client_gone_mid_body_is_one_log_line_and_the_server_goes_on(server) -> None:
    server.new_log()
    body = _body()
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        sock.sendall(_head(len(body)) + body[: len(body) // 2])
        time.sleep(0.2)
    log = ""
    deadline = time.monotonic() + 5
    while "disconnected" not in log and time.monotonic() < deadline:
        time.sleep(0.05)
        log += server.new_log()
    assert "disconnected" in log, log
    assert len(log.strip().splitlines()) == 1, log
    _assert_quiet(log)
    reply = httpx.post(f"{server.url}/infer", json={"input": [ROW, ROW]}, timeout=10)
    assert reply.status_code == 200 and len(reply.json()["outputs"]["logits"]) == 2
    metrics = httpx.get(f"{server.url}/metrics", timeout=10).text
    assert 'code="500"' not in metrics and 'code="499"} 1' in metrics, metrics
    time.sleep(0.2)
    _assert_quiet(server.new_log())


@pytest.mark.parametrize("flag, value", [("--header-timeout", "0"), ("--header-timeout", "nan"),
                                         ("--body-timeout", "-1"), ("--body-timeout", "inf")])
def test_timeouts_must_be_positive_seconds(capsys, flag, value) -> None:
    assert main(["serve", "--variant", "a=x", flag, value]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and f"{flag} must be a positive" in err[0], err
