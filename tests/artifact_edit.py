"""Test helper: edit a compiled artifact and keep its manifest self-consistent.

What an artifact's ids hash is graphopt.artifact's business (and may change), so the
ids are recomputed with its own functions: `stamp_ids` when it exists, else
`content_id`. The edited artifact passes every consistency check; what is left to
refuse it is the check under test.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

from graphopt import artifact


def restamp(art_dir: Path) -> dict:
    """Re-hashes every file the manifest lists and recomputes its ids; returns the manifest."""
    path = Path(art_dir) / artifact.MANIFEST
    manifest = json.loads(path.read_text())
    manifest["files"] = {name: artifact.sha256_file(Path(art_dir) / name) for name in manifest["files"]}
    if hasattr(artifact, "stamp_ids"):
        manifest = artifact.stamp_ids(manifest)
    else:
        manifest["id"] = artifact.content_id(manifest)
    path.write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return manifest


def edited_copy(src: Path, dst: Path, manifest: Callable[[dict], None] | None = None,
                plan: Callable[[dict], None] | None = None) -> Path:
    """A copy of artifact `src` at `dst` with its manifest and/or plan.json edited in place
    by the given functions, then restamped."""
    shutil.copytree(src, dst)
    for name, edit in ((artifact.MANIFEST, manifest), (artifact.PLAN, plan)):
        if edit is not None:
            data = json.loads((dst / name).read_text())
            edit(data)
            (dst / name).write_text(json.dumps(data, indent=1))
    restamp(dst)
    return dst
