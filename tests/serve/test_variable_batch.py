"""A range artifact (batch 1..8) served with a variable batch: requests arriving singly and in
bursts run in batches of the size queued (or the bucket holding it), every request's answer
matches ONNX Runtime, the per-size table fills, and bad requests get one-line 400s."""

from __future__ import annotations

import asyncio
from collections import Counter
from types import SimpleNamespace

import numpy as np
import onnxruntime as ort
import pytest
from starlette.testclient import TestClient

from graphopt.errors import ArtifactError
from graphopt.serve.app import create_app
from graphopt.serve.service import Service
from graphopt.serve.variants import VariantSpec, batch_range, load_variants

SLO_S = 1.0  # generous: these tests are about batch composition and answers, not timing


def _service(art, buckets: tuple[int, ...] | None = None) -> Service:
    return Service(load_variants([VariantSpec("var", art)], buckets=buckets), SLO_S)


def _rows(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.standard_normal((n, 64)).astype(np.float32)


async def _serve(service: Service, waves: list[list[np.ndarray]]) -> list:
    """Each wave's requests are submitted together (a burst: admitted before the worker wakes);
    the next wave waits for the previous one's answers."""
    await service.start()
    try:
        served = []
        for wave in waves:
            served += await asyncio.gather(*(service.infer(rows) for rows in wave))
        return served
    finally:
        await service.stop()


def _check_against_ort(model, waves: list[list[np.ndarray]], served: list) -> None:
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    for rows, answer in zip([r for wave in waves for r in wave], served):
        np.testing.assert_allclose(answer.outputs["y"], session.run(None, {"x": rows})[0], rtol=1e-4, atol=1e-5)


def test_singles_and_bursts_run_at_the_queued_size_and_match_ort(range_mlp) -> None:
    model, art = range_mlp
    rng = np.random.default_rng(0)
    singles = [[_rows(rng, 1)], [_rows(rng, 2)], [_rows(rng, 1)]]
    bursts = [[_rows(rng, 1) for _ in range(5)], [_rows(rng, n) for n in (2, 3, 1)],
              [_rows(rng, 1) for _ in range(11)]]  # 11 rows > capacity 8: a batch of 8, then one of 3
    service = _service(art)
    assert service.variants["var"].variable and service.variants["var"].run_sizes == list(range(1, 9))
    served = asyncio.run(_serve(service, singles + bursts))
    _check_against_ort(model, singles + bursts, served)
    assert service.metrics.batch_sizes == Counter({("var", 1): 2, ("var", 2): 1, ("var", 5): 1, ("var", 6): 1,
                                                   ("var", 8): 1, ("var", 3): 1})
    assert service.controller.variants["var"].table.observed() == {1: 2, 2: 1, 3: 1, 5: 1, 6: 1, 8: 1}
    assert sorted(service.probes["var"]) == [1, 2, 4, 8]  # start-up measured these sizes, the rest interpolated


def test_buckets_pad_a_batch_to_the_smallest_bucket_holding_it(range_mlp) -> None:
    model, art = range_mlp
    rng = np.random.default_rng(1)
    waves = [[_rows(rng, 1)], [_rows(rng, 1) for _ in range(3)], [_rows(rng, 5)]]
    service = _service(art, buckets=(1, 4))
    assert service.variants["var"].run_sizes == [1, 4, 8]
    served = asyncio.run(_serve(service, waves))
    _check_against_ort(model, waves, served)
    assert service.metrics.batch_sizes == Counter({("var", 1): 1, ("var", 4): 1, ("var", 8): 1})
    assert [len(s.outputs["y"]) for s in served] == [1, 1, 1, 1, 5]  # padding never reaches an answer


def test_bad_requests_get_one_line_errors_and_the_service_goes_on(range_mlp) -> None:
    _, art = range_mlp
    with TestClient(create_app(_service(art))) as client:
        health = client.get("/health").json()["variants"][0]
        assert health["batch_range"] == [1, 8] and health["run_sizes"] == list(range(1, 9))
        for body, words in [({"input": [[0.5] * 65]}, "expected Nx64"),
                            ({"input": [["a"] * 64]}, "array of numbers"),
                            ({"input": [[0.5] * 64] * 9}, "1 to 8 rows"),
                            ({"input": [0.5] * 64}, "expected Nx64")]:
            reply = client.post("/infer", json=body)
            assert reply.status_code == 400 and words in reply.json()["error"], reply.text
            assert "\n" not in reply.json()["error"]
        reply = client.post("/infer", json={"input": [[0.5] * 64] * 3})
        assert reply.status_code == 200 and np.asarray(reply.json()["outputs"]["y"]).shape == (3, 10)
        metrics = client.get("/metrics").text
        assert 'graphopt_serve_batch_size_total{variant="var",size="3"} 1' in metrics
        assert 'graphopt_serve_size_service_seconds{variant="var",size="3"}' in metrics


def test_fixed_artifacts_keep_their_padded_batch(mlp_variants) -> None:
    service = Service(load_variants([VariantSpec("w8", mlp_variants["w8"])]), SLO_S)
    variant = service.variants["w8"]
    assert not variant.variable and variant.run_sizes == [4] and service.controller.variants["w8"].table is None
    rows = np.random.default_rng(2).random((1, 64)).astype(np.float32)
    served = asyncio.run(_serve(service, [[rows], [rows, rows]]))
    assert [len(s.outputs["logits"]) for s in served] == [1, 1, 1]
    assert service.metrics.batch_sizes == Counter({("w8", 4): 2})


def _session(dims: list, outputs: list, symbols: dict) -> SimpleNamespace:
    return SimpleNamespace(symbols=symbols, inputs=[{"name": "x", "shape": [8, 16, 4], "dims": dims}],
                           outputs=[{"name": "y", "shape": [8, 4], "dims": outputs}])


def test_only_a_batch_axis_range_is_served() -> None:
    symbols = {"batch": [1, 8], "seq": [4, 16]}
    assert batch_range("a", _session(["batch", 16, 4], ["batch", 4], symbols)) == (1, 8)
    with pytest.raises(ArtifactError, match="batch axis only; input x also ranges over seq"):
        batch_range("a", _session(["batch", "seq", 4], ["batch", 4], symbols))
    with pytest.raises(ArtifactError, match="does not carry the batch symbol batch first"):
        batch_range("a", _session(["batch", 16, 4], [4, "batch"], symbols))
