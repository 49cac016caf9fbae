"""The HTTP layer on real (tiny) artifacts: answers match the runtime, 400/401/413/503 paths,
resolution variants, Prometheus text; and a tampered artifact is never loaded."""

from __future__ import annotations

import io
import re
import shutil
import time

import numpy as np
import pytest
from starlette.testclient import TestClient

from graphopt.errors import ArtifactError
from graphopt.runtime import load
from graphopt.serve.app import Limits, create_app
from graphopt.serve.service import Service
from graphopt.serve.variants import VariantSpec, load_variants, resize_rows

SLO_MS = 200


def _service(arts: dict, qualities: dict, slo_s: float = SLO_MS / 1e3, **kw) -> Service:
    specs = [VariantSpec(n, p, qualities[n]) for n, p in arts.items()]
    return Service(load_variants(specs), slo_s, **kw)


def _client(service: Service, token: str | None = None, limits: Limits | None = None) -> TestClient:
    return TestClient(create_app(service, token, limits or Limits()))


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _expected(art, rows: np.ndarray) -> np.ndarray:
    session = load(art)
    padded = np.zeros(session.inputs[0]["shape"], np.float32)
    padded[:len(rows)] = rows
    return session.run({"x": padded})["logits"][:len(rows)]


def test_json_and_npy_answers_match_the_runtime(mlp_variants) -> None:
    rows = np.random.default_rng(0).random((3, 64)).astype(np.float32)
    with _client(_service(mlp_variants, {"w8": 0.5, "w32": 0.9})) as client:
        reply = client.post("/infer", json={"inputs": {"x": rows.tolist()}})
        assert reply.status_code == 200, reply.text
        doc = reply.json()
        assert doc["variant"] == "w32" and doc["quality"] == 0.9  # idle: the better one
        np.testing.assert_allclose(doc["outputs"]["logits"], _expected(mlp_variants["w32"], rows), rtol=1e-5)
        reply = client.post("/infer?variant=w8", content=_npy(rows),
                            headers={"content-type": "application/x-npy", "accept": "application/x-npy"})
        assert reply.status_code == 200 and reply.headers["x-variant"] == "w8"
        np.testing.assert_allclose(np.load(io.BytesIO(reply.content)), _expected(mlp_variants["w8"], rows),
                                   rtol=1e-5)
        health = client.get("/health").json()
        assert health["status"] == "ok" and {v["name"] for v in health["variants"]} == {"w8", "w32"}


@pytest.mark.parametrize("body, kind, reason", [
    (b"", "application/json", "empty body"),
    (b"{not json", "application/json", "not JSON"),
    (b'{"rows": [1]}', "application/json", "must be"),
    (b'{"inputs": {"y": [[0]]}}', "application/json", "unknown input 'y'"),
    (b'{"input": [[1, 2]]}', "application/json", "expected Nx64"),
    (b'{"input": [["a"]]}', "application/json", "numbers"),
    (b'{"input": [[1], [1, 2]]}', "application/json", "rectangular"),
    (b"\x93NUMPY garbage", "application/x-npy", "not a .npy"),
    (b'{"input": ' + str([[0.0] * 64] * 5).encode() + b"}", "application/json", "1 to 4 rows"),
])
def test_bad_bodies_get_400_with_the_reason(mlp_variants, body, kind, reason) -> None:
    with _client(_service(mlp_variants, {"w8": 0.5, "w32": 0.9})) as client:
        reply = client.post("/infer", content=body, headers={"content-type": kind})
        assert reply.status_code == 400
        assert reason in reply.json()["error"]


def test_other_request_errors(mlp_variants) -> None:
    with _client(_service(mlp_variants, {"w8": 0.5, "w32": 0.9}), limits=Limits(max_body_bytes=1000)) as client:
        assert client.post("/infer?variant=nope", json={"input": [[0.0] * 64]}).status_code == 400
        big = client.post("/infer", json={"input": [[0.5] * 64] * 4})
        assert big.status_code == 413 and "limit of 1000 bytes" in big.json()["error"]
        ints = client.post("/infer", content=_npy(np.ones((1, 64), np.complex64)),
                           headers={"content-type": "application/x-npy"})
        assert ints.status_code == 400 and "cannot be cast" in ints.json()["error"]
        assert client.get("/infer").status_code == 405


def test_bearer_token_guards_infer_and_metrics(mlp_variants) -> None:
    body = {"input": [[0.0] * 64]}
    with _client(_service(mlp_variants, {"w8": 0.5, "w32": 0.9}), token="s3cret") as client:
        assert client.post("/infer", json=body).status_code == 401
        assert client.post("/infer", json=body, headers={"authorization": "Bearer wrong"}).status_code == 401
        assert client.get("/metrics").status_code == 401
        assert client.get("/health").status_code == 200
        ok = client.post("/infer", json=body, headers={"authorization": "Bearer s3cret"})
        assert ok.status_code == 200


def test_overload_gets_503_not_a_wait(mlp_variants) -> None:
    """An SLO below any variant's service time: refused at once with the prediction."""
    with _client(_service(mlp_variants, {"w8": 0.5, "w32": 0.9}, slo_s=1e-7)) as client:
        began = time.perf_counter()
        reply = client.post("/infer", json={"input": [[0.0] * 64]})
        assert reply.status_code == 503 and "overloaded" in reply.json()["error"]
        assert reply.headers["retry-after"] == "1" and time.perf_counter() - began < 1.0


def test_a_stuck_run_times_out_with_503(mlp_variants) -> None:
    service = _service(mlp_variants, {"w8": 0.5, "w32": 0.9}, timeout_s=0.3)
    for variant in service.variants.values():
        variant.run = lambda rows: time.sleep(1.0)  # a batch that takes far longer than predicted
    with _client(service) as client:
        began = time.perf_counter()
        reply = client.post("/infer", json={"input": [[0.0] * 64]})
        assert reply.status_code == 503 and "timed out" in reply.json()["error"]
        assert time.perf_counter() - began < 0.9


def test_metrics_are_prometheus_text(mlp_variants) -> None:
    with _client(_service(mlp_variants, {"w8": 0.5, "w32": 0.9})) as client:
        for _ in range(3):
            client.post("/infer", json={"input": [[0.0] * 64]})
        client.post("/infer", content=b"{")
        text = client.get("/metrics").text
    sample = re.compile(r'^[a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? [0-9.e+-]+$')
    for line in text.splitlines():
        assert line.startswith("# ") or sample.match(line), line
    assert 'graphopt_serve_responses_total{variant="w32",code="200"} 3' in text
    assert 'graphopt_serve_responses_total{variant="-",code="400"} 1' in text
    assert "graphopt_serve_latency_seconds_count 3" in text


def test_resolution_variants_answer_the_same_request(cnn_variants) -> None:
    """The 4x4 variant gets the 8x8 rows area-averaged; its answer is the 4x4 artifact's."""
    rows = np.random.default_rng(1).random((2, 3, 8, 8)).astype(np.float32)
    with _client(_service(cnn_variants, {"r8": 0.9, "r4": 0.7})) as client:
        assert client.get("/health").json()["variants"][1]["input_shape"] == [2, 3, 4, 4]
        low = client.post("/infer?variant=r4", json={"input": rows.tolist()}).json()
        high = client.post("/infer?variant=r8", json={"input": rows.tolist()}).json()
    small = rows.reshape(2, 3, 4, 2, 4, 2).mean(axis=(3, 5))
    np.testing.assert_allclose(resize_rows(rows, (3, 4, 4)), small, rtol=1e-6)
    np.testing.assert_allclose(low["outputs"]["logits"], load(cnn_variants["r4"]).run({"x": small})["logits"],
                               rtol=1e-5)
    np.testing.assert_allclose(high["outputs"]["logits"], load(cnn_variants["r8"]).run({"x": rows})["logits"],
                               rtol=1e-5)


@pytest.mark.parametrize("victim", ["model.so", "params.npz"])
def test_tampered_artifact_is_refused(mlp_variants, tmp_path, victim) -> None:
    copy = tmp_path / "art"
    shutil.copytree(mlp_variants["w8"], copy)
    data = bytearray((copy / victim).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / victim).write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="sha-256 mismatch"):
        load_variants([VariantSpec("w8", copy)])


def test_variants_must_take_the_same_input(mlp_variants, cnn_variants) -> None:
    with pytest.raises(ArtifactError, match="take different inputs"):
        load_variants([VariantSpec("m", mlp_variants["w8"]), VariantSpec("c", cnn_variants["r8"])])
