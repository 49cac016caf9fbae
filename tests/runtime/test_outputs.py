"""The runtime checks every output against the manifest's signature: an artifact whose
manifest promises another shape or dtype is refused by name, never returned as if fine."""

from __future__ import annotations

import numpy as np
import pytest

import graphopt.runtime
from graphopt.cli import main
from graphopt.errors import ArtifactError
from graphopt.runtime.outputs import check_outputs
from tests.artifact_edit import edited_copy
from tests.conftest import compile_example, random_feeds


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    work = tmp_path_factory.mktemp("outputs")
    return work, compile_example(work, "split_multi_output")


def _edit_output(index: int, **change):
    def edit(manifest: dict) -> None:
        manifest["outputs"][index].update(change)
    return edit


def test_check_outputs_names_the_output_that_differs():
    sig = [{"name": "a", "shape": [2, 3], "dtype": "float32"}, {"name": "b", "shape": [4], "dtype": "int64"}]
    good = [np.zeros((2, 3), np.float32), np.zeros(4, np.int64)]
    assert list(check_outputs(sig, good)) == ["a", "b"]
    with pytest.raises(ArtifactError, match="output b has shape 5, manifest says 4"):
        check_outputs(sig, [good[0], np.zeros(5, np.int64)])
    with pytest.raises(ArtifactError, match="output a has dtype float64, manifest says float32"):
        check_outputs(sig, [good[0].astype(np.float64), good[1]])
    with pytest.raises(ArtifactError, match="returned 1 outputs, manifest lists 2"):
        check_outputs(sig, good[:1])


def test_an_edited_output_shape_is_refused_at_run(built, tmp_path, capsys):
    work, model = built
    original = graphopt.runtime.load(work / "art").outputs
    last = len(original) - 1
    wrong = [d + 1 for d in original[last]["shape"]]
    art = edited_copy(work / "art", tmp_path / "shape", manifest=_edit_output(last, shape=wrong))
    feeds = random_feeds(model)
    name = original[last]["name"]
    with pytest.raises(ArtifactError, match=f"output {name} has shape"):
        graphopt.runtime.load(art).run(feeds)
    args = ["run", str(art)]
    for key, value in feeds.items():
        np.save(tmp_path / f"{key}.npy", value)
        args += ["--input", f"{key}={tmp_path / f'{key}.npy'}"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and f"output {name}" in err[0], err


def test_an_edited_output_dtype_is_refused_at_run(built, tmp_path):
    work, model = built
    art = edited_copy(work / "art", tmp_path / "dtype", manifest=_edit_output(0, dtype="float16"))
    name = graphopt.runtime.load(art).outputs[0]["name"]
    with pytest.raises(ArtifactError, match=f"output {name} has dtype float32, manifest says float16"):
        graphopt.runtime.load(art).run(random_feeds(model))
