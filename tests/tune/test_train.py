"""Tuning training-step compiles: the loss objective comes from real steps on --data (SQLite, PostgreSQL)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from optuna.trial import TrialState

from graphopt.artifact import load_manifest
from graphopt.cli import main
from tests.tune.conftest import Storage, load

TRAIN_SPACE = "planner: greedy_by_size\nreorder: true\nmemory_budget: null\noptimizer: [sgd, adam]\nlr: 0.05\n"


def test_train_study_measures_loss_on_the_data(tmp_path: Path, model: Path, sqlite_storage: Storage) -> None:
    storage = sqlite_storage
    rng = np.random.default_rng(0)
    data = tmp_path / "data.npz"
    np.savez(data, x=rng.standard_normal((4, 4, 64)).astype(np.float32),
             target=rng.integers(0, 10, size=(4, 4)).astype(np.int64))
    space = tmp_path / "space.yaml"
    space.write_text(TRAIN_SPACE)
    study_dir = tmp_path / "train"
    argv = ["tune", str(model), "--train", "--data", str(data), "--objectives", "latency,peak_memory,loss",
            "--space", str(space), "--trials", "2", "--steps", "3", "--dir", str(study_dir), "--quiet", *storage.args()]
    assert main(argv) == 0
    trials = load(study_dir, url=storage.url(study_dir)).get_trials()
    assert len(trials) == 2 and all(t.state == TrialState.COMPLETE for t in trials)
    assert {t.params["optimizer"] for t in trials} == {"sgd", "adam"}
    for t in trials:
        assert len(t.values) == 3 and math.isfinite(t.values[2]) and t.values[2] > 0
        manifest = load_manifest(study_dir / "artifacts" / t.user_attrs["artifact_id"])
        assert manifest["train"]["optimizer"].startswith(t.params["optimizer"])
