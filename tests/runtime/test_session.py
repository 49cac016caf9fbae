"""The Python API a service embeds: load once, run many times, outputs are the caller's."""

from __future__ import annotations

import json

import numpy as np
import pytest

import graphopt.runtime
from graphopt.artifact import MANIFEST, stamp_ids
from graphopt.errors import ArtifactError
from tests.conftest import compile_example, onnx_runtime_outputs, random_feeds, relative_error


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    work = tmp_path_factory.mktemp("session")
    return work, compile_example(work, "split_multi_output", time_limit=2.0)


def test_outputs_survive_later_runs_that_reuse_the_arena(artifact):
    work, model = artifact
    sess = graphopt.runtime.load(work / "art")
    first_feeds, second_feeds = random_feeds(model, seed=1), random_feeds(model, seed=2)
    first = sess.run(first_feeds)
    kept = {k: v.copy() for k, v in first.items()}
    second = sess.run(second_feeds)
    for name in first:
        np.testing.assert_array_equal(first[name], kept[name])
        assert not np.allclose(first[name], second[name])
    for name, expected in onnx_runtime_outputs(work / "m.onnx", second_feeds).items():
        assert relative_error(second[name], expected) < 1e-4


def test_session_describes_its_signature(artifact):
    work, model = artifact
    sess = graphopt.runtime.load(work / "art")
    assert [s["name"] for s in sess.inputs] == [i.name for i in model.graph.input]
    assert [s["name"] for s in sess.outputs] == [o.name for o in model.graph.output]
    assert len(sess.id) == 64


def test_artifact_from_another_tvm_is_refused(artifact, tmp_path):
    import shutil

    work, _ = artifact
    copy = tmp_path / "art"
    shutil.copytree(work / "art", copy)
    manifest = json.loads((copy / MANIFEST).read_text())
    manifest["versions"]["tvm"] = "0.1.0"
    manifest = stamp_ids(manifest)  # a consistent manifest (build id and content id), just foreign
    (copy / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="built with TVM 0.1.0"):
        graphopt.runtime.load(copy)
