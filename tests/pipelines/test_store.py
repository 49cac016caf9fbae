"""Object store: dedup, read-only, verified reads; fsck names a corrupt object; gc."""

from __future__ import annotations

import os

import pytest

from graphopt.pipelines.errors import CorruptObjectError, MissingObjectError
from graphopt.pipelines.maintenance import fsck, gc
from graphopt.pipelines.objects import ObjectStore
from tests.pipelines.conftest import py


def test_equal_bytes_are_stored_once_read_only(tmp_path):
    store = ObjectStore(tmp_path)
    a, b = store.put_bytes(b"hello"), store.put_bytes(b"hello")
    assert a == b and len(list(store.ids())) == 1
    assert store.path(a).parent.name == a[:2] and store.path(a).name == a[2:]
    assert not os.stat(store.path(a)).st_mode & 0o222
    assert store.read_bytes(a) == b"hello" and not list(store.tmp.iterdir())


def test_tree_roundtrip_and_dedup_across_trees(tmp_path):
    store = ObjectStore(tmp_path / "s")
    src = tmp_path / "d"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("x" * 1000)
    (src / "sub" / "b.txt").write_text("x" * 1000)
    tree = store.put_dir(src)
    assert len(set(store.read_tree(tree).values())) == 1  # same content, one blob
    out = store.materialize(tree, tmp_path / "out")
    assert (out / "sub" / "b.txt").read_text() == "x" * 1000


def _corrupt(store: ObjectStore, oid: str) -> None:
    path = store.path(oid)
    os.chmod(path, 0o644)
    path.write_bytes(path.read_bytes()[:-1] + b"!")


def test_corrupt_and_missing_objects_are_refused_on_read(tmp_path):
    store = ObjectStore(tmp_path)
    oid = store.put_bytes(b"payload")
    _corrupt(store, oid)
    with pytest.raises(CorruptObjectError, match=oid):
        store.read_bytes(oid)
    with pytest.raises(MissingObjectError):
        store.read_bytes("0" * 64)


def test_fsck_is_clean_then_names_the_corrupt_object(toy_repo):
    assert fsck(toy_repo).clean
    oid = next(iter(toy_repo.store.ids()))
    _corrupt(toy_repo.store, oid)
    report = fsck(toy_repo)
    assert any(oid in p and "corrupt" in p for p in report.problems)


def test_commit_dedups_identical_outputs(toy_repo):
    before = len(list(toy_repo.store.ids()))
    py(toy_repo, "score", "score", ["fit"], bonus=1.0, unused="tag")  # new spec, same output bytes
    toy_repo.commit("same numbers")
    new = len(list(toy_repo.store.ids())) - before
    assert new == 0  # metrics.json and its tree already stored


def test_gc_removes_only_unreachable_objects(toy_repo):
    orphan = toy_repo.store.put_bytes(b"orphan")
    report = gc(toy_repo, grace=0)
    assert report.objects_removed == 1 and not toy_repo.store.has(orphan)
    assert fsck(toy_repo).clean
    py(toy_repo, "score", "score", ["fit"], bonus=5.0)
    toy_repo.executor().run_path(toy_repo.working("main"))  # a run no commit uses
    assert gc(toy_repo, prune_runs=True, grace=0).runs_removed == 1
    assert fsck(toy_repo).clean
