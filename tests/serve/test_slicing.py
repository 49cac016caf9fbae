"""Width slicing: the masked network equals its sliced export, one training run on digits
gives every width a usable model, and every width's params are slices of ONE weights file."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import onnxruntime as ort
import pytest

from graphopt.errors import InputError
from graphopt.serve.make_slices import make_slices
from graphopt.serve.slicing import (
    SliceSpec,
    export_width,
    initial_weights,
    load_weights,
    sliced_weights,
    training_model,
    width_mask,
    width_schedule,
)


def _ort(model, feeds: dict) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)[0]


def test_masked_network_equals_the_sliced_export() -> None:
    spec = SliceSpec(hidden=24, widths=(4, 12, 24))
    weights = {k: v + np.float32(0.05) for k, v in initial_weights(spec).items()}  # non-zero biases too
    x = np.random.default_rng(0).random((5, 64)).astype(np.float32)
    masked = training_model(spec, 5, weights)
    for width in spec.widths:
        full = _ort(masked, {"x": x, "mask": width_mask(spec.hidden, width)})
        np.testing.assert_allclose(_ort(export_width(weights, width, 5), {"x": x}), full, rtol=1e-5, atol=1e-5)
    assert not np.allclose(_ort(export_width(weights, 4, 5), {"x": x}), _ort(export_width(weights, 24, 5), {"x": x}))


def test_width_schedule_and_spec_checks() -> None:
    schedule = width_schedule((8, 16, 32), steps=40, seed=0)
    assert schedule[0] == 32 and schedule[4] == 8 and set(schedule) == {8, 16, 32}
    for bad in ((16, 8, 32), (8, 16), ()):
        with pytest.raises(InputError):
            SliceSpec(hidden=32, widths=bad)
    with pytest.raises(InputError):
        export_width(initial_weights(SliceSpec(hidden=32, widths=(32,))), 33, 1)


def test_one_training_run_serves_every_width(tmp_path) -> None:
    record = make_slices(tmp_path, SliceSpec(hidden=32, widths=(8, 32)), steps=200, serve_batch=16, lr=3e-3,
                         say=lambda _m: None)
    assert record["train"]["last_loss"] < 0.5 * record["train"]["first_loss"]
    accuracy = {int(w): v["accuracy"] for w, v in record["widths"].items()}
    assert accuracy[32] > 0.8 and accuracy[8] > 0.5  # chance is 0.1 (540 held-out digits)
    weights_file = tmp_path / "weights.npz"
    assert hashlib.sha256(weights_file.read_bytes()).hexdigest() == record["weights_sha256"]
    assert json.loads((tmp_path / "slicing.json").read_text()) == json.loads(json.dumps(record))
    shared = load_weights(weights_file)
    sizes = {}
    for width in (8, 32):
        art = tmp_path / f"w{width}"
        manifest = json.loads((art / "manifest.json").read_text())
        with np.load(art / "params.npz") as params:
            stored = [params[k] for k in manifest["param_keys"]]
        expected = sliced_weights(shared, width)  # compile renames weights and stores MatMul's transposed
        assert len(stored) == len(expected)
        for name, value in expected.items():
            assert any(np.array_equal(s, v) for s in stored for v in (value, value.T) if s.shape == v.shape), name
        sizes[width] = sum(v.size for v in stored)
    assert sizes[8] * 3 < sizes[32]  # the narrow artifact really holds (and computes with) less
