"""The artifact format: a directory a runtime can load without the compiler.

    ART/manifest.json   id, source hash, options, target, versions, signatures,
                        sha-256 of every other file
    ART/plan.json       the memory plan and its statistics
    ART/model.so        the TVM-exported library (kernels + VM bytecode)
    ART/params.npz      parameters in the order the program takes them

The id is the sha-256 of the canonical JSON of what determines the build (source
model hash, options, target, versions), so equal builds have equal ids and the
versioning store doubles as a compile cache. Loading re-hashes every file and
recomputes the id: a corrupt or foreign artifact is refused with one clear line.
Writing goes to a temporary sibling directory that is renamed into place, so an
interrupted compile never leaves a half-written artifact where a good one was.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from graphopt.errors import ArtifactError

FORMAT = "graphopt-artifact"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
PLAN = "plan.json"
LIBRARY = "model.so"
PARAMS = "params.npz"
ID_FIELDS = ("source_sha256", "options", "target", "versions")


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def content_id(manifest: dict) -> str:
    """Hash of what determines the build; file hashes are checked separately."""
    core = {k: manifest[k] for k in ID_FIELDS}
    return hashlib.sha256(canonical_json(core).encode()).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_artifact(out_dir: Path, manifest: dict, plan: dict, write_payload: Callable[[Path], None]) -> dict:
    """Writes manifest + plan + payload files atomically; returns the final manifest.

    `write_payload(tmp_dir)` writes the library and params into the temp dir.
    An existing directory is replaced only if it is itself an artifact (or empty):
    graphopt never deletes a directory it did not write.
    """
    out_dir = Path(out_dir)
    refuse_foreign_target(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        write_payload(tmp)
        (tmp / PLAN).write_text(json.dumps(plan, indent=1))
        files = {p.name: sha256_file(p) for p in sorted(tmp.iterdir()) if p.is_file()}
        full = {"format": FORMAT, "format_version": FORMAT_VERSION, **manifest, "files": files}
        full["id"] = content_id(full)
        (tmp / MANIFEST).write_text(json.dumps(full, indent=1, sort_keys=True))
        swap_into_place(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return full


def refuse_foreign_target(out_dir: Path, marker: str = MANIFEST, what: str = "artifact",
                          error: type[Exception] = ArtifactError) -> None:
    """Raises unless out_dir is absent, empty, or a graphopt `what` (holding `marker`), which may be replaced."""
    if out_dir.exists() and not out_dir.is_dir():
        raise error(f"{out_dir} exists and is not a directory; refusing to overwrite it")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / marker).is_file():
        raise error(f"{out_dir} is a non-empty directory that is not a graphopt {what}; refusing to overwrite it")


def swap_into_place(tmp: Path, out_dir: Path) -> None:
    """Replaces `out_dir` by the finished `tmp` with renames: a reader sees the old
    directory or the new one, never a half-written one."""
    old = None
    if out_dir.exists():
        old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
        os.rename(out_dir, old)
    os.rename(tmp, out_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def load_manifest(art_dir: Path, verify: bool = True) -> dict:
    """Reads and checks a manifest; every failure is an ArtifactError of one line."""
    art_dir = Path(art_dir)
    path = art_dir / MANIFEST
    if not art_dir.is_dir():
        raise ArtifactError(f"{art_dir}: no such artifact directory")
    if not path.is_file():
        raise ArtifactError(f"{art_dir}: not a graphopt artifact (no {MANIFEST})")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path}: corrupt manifest ({exc.msg if hasattr(exc, 'msg') else exc})") from None
    _check_format(manifest, path)
    if verify:
        _check_hashes(manifest, art_dir)
    return manifest


def _check_format(manifest: Any, path: Path) -> None:
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ArtifactError(f"{path}: not a graphopt artifact manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(
            f"{path}: artifact format {manifest.get('format_version')} is not supported (expected {FORMAT_VERSION}); recompile"
        )
    missing = [k for k in (*ID_FIELDS, "id", "files", "inputs", "outputs") if k not in manifest]
    if missing:
        raise ArtifactError(f"{path}: manifest lacks {', '.join(missing)}")
    if content_id(manifest) != manifest["id"]:
        raise ArtifactError(f"{path}: manifest id does not match its contents (edited or corrupt)")


def _check_hashes(manifest: dict, art_dir: Path) -> None:
    for name, expected in manifest["files"].items():
        file = art_dir / name
        if not file.is_file():
            raise ArtifactError(f"{art_dir}: missing file {name}")
        if sha256_file(file) != expected:
            raise ArtifactError(f"{art_dir}: {name} is corrupt (sha-256 mismatch)")


def load_plan(art_dir: Path) -> dict:
    """The plan as stored; call load_manifest first to have its hash checked."""
    try:
        return json.loads((Path(art_dir) / PLAN).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{art_dir}: cannot read {PLAN} ({exc})") from None
