"""A compile output in the object store, checked as an artifact without copying it out.

The store names every blob by the sha-256 of its bytes, the same hash an artifact's
manifest lists in `files`. So a stored tree can be judged from the store alone: its
manifest (a verified object) must pass the loader's checks, every file the manifest
hashes must be in the tree under that very id, and the content id must be the one
expected. The executor checks a cached compile output this way before reusing it
(it must be the build its key predicts), and pins the content id of every artifact
an evaluate step reads, so the runtime refuses the copy it loads if anything in
between changed it.
"""

from __future__ import annotations

import json

from graphopt.artifact import FORMAT_VERSION, MANIFEST, check_manifest, check_pin
from graphopt.errors import ArtifactError
from graphopt.pipelines.objects import ObjectStore


def holds_artifact(store: ObjectStore, tree: str) -> bool:
    return MANIFEST in store.read_tree(tree)


def older_format(store: ObjectStore, tree: str) -> bool:
    """Whether `tree` holds an artifact of an older format (the store may reuse it as no cache hit)."""
    files = store.read_tree(tree)
    try:
        manifest = json.loads(store.read_bytes(files[MANIFEST])) if MANIFEST in files else None
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False
    version = manifest.get("format_version") if isinstance(manifest, dict) else None
    return isinstance(version, int) and version < FORMAT_VERSION


def check_tree(store: ObjectStore, tree: str, build_id: str | None = None, expect_id: str | None = None) -> dict:
    """The manifest of the artifact stored as `tree`; ArtifactError (one line) unless it is
    sound, its files are the tree's blobs, and it has the given build id / content id."""
    where = f"stored artifact {tree[:12]}"
    files = store.read_tree(tree)
    if MANIFEST not in files:
        raise ArtifactError(f"{where}: not a graphopt artifact (no {MANIFEST})")
    try:
        manifest = json.loads(store.read_bytes(files[MANIFEST]))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ArtifactError(f"{where}: corrupt manifest") from None
    check_manifest(manifest, where)
    check_pin(manifest, expect_id, where)
    if build_id is not None and manifest["build_id"] != build_id:
        raise ArtifactError(f"{where}: holds build {manifest['build_id'][:12]}, recorded as build {build_id[:12]}; "
                            "refusing to reuse it (run `graphopt pipeline fsck`)")
    for name, digest in manifest["files"].items():
        if files.get(name) != digest:
            raise ArtifactError(f"{where}: {name} is not the file its manifest hashes; refusing to use it")
    return manifest
