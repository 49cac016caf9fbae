"""Artifacts move between nodes by content id through the study's RDB (graphopt.tune.artifact_table):
a node whose own cache lacks an artifact that another node built fetches it and compiles nothing;
a row changed in the database is refused; SQLite studies share their directory instead."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from optuna.trial import TrialState

from graphopt.artifact import load_manifest
from graphopt.cli import main
from graphopt.errors import ArtifactError
from graphopt.tune.artifact_table import ArtifactTable, artifact_table_for
from graphopt.tune.cache import ArtifactCache
from tests.tune.conftest import SMALL_SPACE, load, tune_args


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, dict]:
    """(artifact directory, manifest) of the tiny MLP, compiled once for this module."""
    import onnx

    from graphopt.compiler import CompileOptions, compile_model
    from graphopt.examples.models import EXAMPLES

    folder = tmp_path_factory.mktemp("built")
    onnx.save(EXAMPLES["mlp"](), folder / "mlp.onnx")
    result = compile_model(folder / "mlp.onnx", folder / "art", CompileOptions(time_limit=1.0))
    return folder / "art", result.manifest


def test_table_moves_an_artifact_by_content_id(tmp_path: Path, built) -> None:
    art, manifest = built
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    assert artifact_table_for(url) is None  # a SQLite study shares its directory, not a copy in the file
    table = ArtifactTable(url)
    build_id, content_id = manifest["build_id"], manifest["id"]
    assert table.lookup(build_id) is None
    assert table.publish(build_id, content_id, art, "node-a:1") is True
    assert table.publish(build_id, content_id, art, "node-b:2") is False  # the first node's row stays
    assert table.lookup(build_id) == content_id
    fetched = tmp_path / "node-b" / build_id
    fetched.parent.mkdir()
    table.fetch(content_id, build_id, fetched)
    assert load_manifest(fetched, expect_id=content_id)["id"] == content_id
    assert sorted(p.name for p in fetched.iterdir()) == sorted(p.name for p in art.iterdir())


def test_a_changed_row_is_refused_and_nothing_is_left(tmp_path: Path, built) -> None:
    import sqlalchemy as sa

    art, manifest = built
    table = ArtifactTable(f"sqlite:///{tmp_path / 'shared.db'}")
    table.publish(manifest["build_id"], manifest["id"], art, "node-a:1")
    with table.engine.begin() as conn:
        conn.execute(sa.update(table.files).where(table.files.c.name == "params.npz").values(data=b"forged"))
    node = tmp_path / "node-b"
    node.mkdir()
    with pytest.raises(ArtifactError, match=r"^shared artifact \w{12} in sqlite:///.* is refused: params\.npz is "
                                            r"corrupt \(sha-256 mismatch\)$") as caught:
        table.fetch(manifest["id"], manifest["build_id"], node / manifest["build_id"])
    assert "\n" not in str(caught.value)
    assert list(node.iterdir()) == []  # neither the artifact nor its temporary directory


def test_a_second_node_fetches_every_artifact_and_compiles_none(postgres_server, ray_cluster, tmp_path: Path,
                                                                 capsys) -> None:
    """Two nodes = two artifact caches that share nothing but the study's PostgreSQL database. Node A
    tunes the 4-configuration space; node B, on the 2 Ray workers, tunes it again in another study:
    every trial fetches A's artifact by content id, and B's compile log counts 0 builds."""
    import onnx

    from graphopt.examples.models import EXAMPLES

    model, space = tmp_path / "mlp.onnx", tmp_path / "space.yaml"
    onnx.save(EXAMPLES["mlp"](), model)
    space.write_text(SMALL_SPACE)
    url = postgres_server.url(postgres_server.new_database("share"))
    caches = {node: tmp_path / node / "artifacts" for node in ("a", "b")}
    for node, extra in (("a", []), ("b", ["--cluster", "ray", "--workers", "2"])):
        argv = tune_args(model, space, tmp_path / node, "--trials", "4", "--sampler", "random", "--storage", url,
                         "--study", node, "--cache", str(caches[node]), *extra)
        assert main(argv) == 0
    out = capsys.readouterr().out
    logs = {node: ArtifactCache(cache).compile_log() for node, cache in caches.items()}
    built = {node: [e for e in log if e["outcome"] == "built"] for node, log in logs.items()}
    fetched = [e for e in logs["b"] if e["outcome"] == "fetched"]
    with capsys.disabled():
        print(f"\ncompiles: node A {len(built['a'])}, node B {len(built['b'])}; node B fetched {len(fetched)}")
    assert len(built["a"]) == 4 and built["b"] == [] and len(fetched) == 4
    assert {(e["id"], e["content_id"]) for e in fetched} == {(e["id"], e["content_id"]) for e in built["a"]}
    trials = {node: load(tmp_path / node, node, url).get_trials() for node in ("a", "b")}
    assert all(t.state == TrialState.COMPLETE for t in trials["a"] + trials["b"])
    assert all(t.user_attrs.get("fetched") and not t.user_attrs["compiled"] for t in trials["b"])
    content = {t.user_attrs["artifact_id"]: t.user_attrs["content_id"] for t in trials["a"]}
    assert {t.user_attrs["artifact_id"]: t.user_attrs["content_id"] for t in trials["b"]} == content
    assert "fetched from another node 4" in out
    for t in trials["b"]:  # B measured the fetched artifacts itself: peaks are what their plans say
        plan = json.loads((caches["b"] / t.user_attrs["artifact_id"] / "plan.json").read_text())
        assert t.values[1] == plan["arena_bytes"]
