"""The artifact format: a directory a runtime can load without the compiler.

    ART/manifest.json   id, build_id, source hash, options, target, versions,
                        signatures, sha-256 of every other file
    ART/plan.json       the memory plan and its statistics
    ART/model.so        the TVM-exported library (kernels + VM bytecode)
    ART/params.npz      parameters in the order the program takes them
    ART/signature.json  optional: Ed25519 signatures over `id` (graphopt.signing)

Two ids, for two jobs:

- `build_id` is the sha-256 of the canonical JSON of what determines the build
  (BUILD_FIELDS: source model hash, options, target, versions). It is known
  before building (graphopt.identity.predicted_id), so equal builds share it and
  the tuner's cache and the pipeline store key their compile caches by it. It
  says nothing about the bytes in the folder.
- `id` (the content id) is the sha-256 of the canonical JSON of the whole
  manifest except `id` itself: build_id and its fields, `files` (the sha-256 of
  every other file: library, params, plan), the signature (inputs/outputs),
  param keys and names, the training section, everything the runtime trusts. A
  changed byte anywhere in the artifact changes it. It is what a caller pins
  (`graphopt.runtime.load(ART, expect_id=...)`, `graphopt run ART@ID`) and what
  `graphopt sign` signs; signature.json is outside the manifest, so signing does
  not change the id it signs.

Loading checks the format, recomputes both ids, compares the id with a pin
(when given) and the signatures with the trusted keys (when configured), then
re-hashes every file, all before the library is loaded: a corrupt or foreign
artifact is refused with one clear line. With a pin or a key, the runtime then
loads from a private copy hashed as it is made (`private_copy`), so a file
swapped between the check and the load is refused too.

Threat model. Without a pin or a trusted key these checks catch corruption and
mix-ups, not an attacker: whoever can write the folder can also rewrite the
manifest and recompute both ids, and the runtime will load their code. With a
pin (an id obtained from a trusted place: the compile's output, a deploy config)
or a trusted key (the operator's `graphopt sign`), a changed artifact is refused.
A short pin is only as strong as its length: 12 hex digits (48 bits) stop
mistakes; a forger can grind a 48-bit prefix, so pin the full id against one.
Neither protects against someone who can change the pin, the trusted key list,
the signing key, or graphopt and TVM themselves.

Writing goes to a temporary sibling directory that is renamed into place, so an
interrupted compile never leaves a half-written artifact where a good one was.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from graphopt.errors import ArtifactError

FORMAT = "graphopt-artifact"
FORMAT_VERSION = 2  # 2: `id` covers the content, `build_id` is the predictable cache key
MANIFEST = "manifest.json"
PLAN = "plan.json"
LIBRARY = "model.so"
PARAMS = "params.npz"
# The program's last parameter when plan.json has `arena_is_argument` (graphopt.transforms.apply_placement)
ARENA_PARAM = "graphopt_arena"
FALLBACK = "fallback.npz"  # only when nodes run as onnxruntime kernels: their one-node models
SIGNATURE = "signature.json"
BUILD_FIELDS = ("source_sha256", "options", "target", "versions")
ID_FIELDS = BUILD_FIELDS  # the former name: what the build id hashes
REQUIRED_FILES = (PLAN, LIBRARY, PARAMS)  # what the runtime reads: each must be hashed in `files`
OPTIONAL_FILES = (FALLBACK,)  # read by the runtime when `files` lists them (then hashed like the others)
PIN_MIN_HEX = 12  # shortest id prefix a pin may use (48 bits: against mix-ups; pin all 64 against attackers)
_HEX64 = re.compile(r"[0-9a-f]{64}")
_PIN = re.compile(r"[0-9a-fA-F]+")


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def build_id(fields: dict) -> str:
    """Hash of what determines the build (BUILD_FIELDS); known before building: the cache key."""
    core = {k: fields[k] for k in BUILD_FIELDS}
    return hashlib.sha256(canonical_json(core).encode()).hexdigest()


def content_id(manifest: dict) -> str:
    """Hash of the whole manifest but `id`: the build's fields and every file's sha-256."""
    core = {k: v for k, v in manifest.items() if k != "id"}
    return hashlib.sha256(canonical_json(core).encode()).hexdigest()


def stamp_ids(manifest: dict) -> dict:
    """The manifest with `build_id` and `id` (re)computed from the rest."""
    stamped = {k: v for k, v in manifest.items() if k != "id"}
    stamped["build_id"] = build_id(stamped)
    stamped["id"] = content_id(stamped)
    return stamped


def normalize_pin(pin: str) -> str:
    """A pinned id or id prefix in lower case; InputError unless 12 to 64 hex digits."""
    from graphopt.errors import InputError

    text = str(pin).strip()
    if not _PIN.fullmatch(text) or not PIN_MIN_HEX <= len(text) <= 64:
        raise InputError(f"a pinned artifact id must be {PIN_MIN_HEX} to 64 hex digits, got {text!r}")
    return text.lower()


def split_pin(text: str) -> tuple[str, str | None]:
    """`ART@ID` -> (ART, ID); `ART` -> (ART, None). The text after the last `@` is a pin
    when it is all hex digits (a folder whose name ends so is written with a trailing /)."""
    path, at, tail = str(text).rpartition("@")
    if not at or not path or not _PIN.fullmatch(tail):
        return str(text), None
    return path, normalize_pin(tail)


def check_pin(manifest: dict, expect_id: str | None, where: Path | str) -> None:
    """ArtifactError unless the manifest's (verified) id is `expect_id` or starts with it."""
    if expect_id is None:
        return
    pin = normalize_pin(expect_id)
    if not manifest["id"].startswith(pin):
        raise ArtifactError(f"{where}: content id {manifest['id'][:16]} is not the pinned {pin[:16]}"
                            f"{'...' if len(pin) > 16 else ''} (the artifact was changed or is another build); "
                            "refusing to load it")


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
        full = stamp_ids({"format": FORMAT, "format_version": FORMAT_VERSION, **manifest, "files": files})
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


def load_manifest(art_dir: Path, verify: bool = True, expect_id: str | None = None,
                  trusted_keys: list | tuple = ()) -> dict:
    """Reads and checks a manifest; every failure is an ArtifactError of one line.

    `expect_id`: the content id (or a prefix of 12+ hex digits) the caller trusts;
    `trusted_keys`: public key files one of which must have signed the content id
    (graphopt.signing; the runtime adds GRAPHOPT_TRUSTED_KEYS). Both are checked
    on the manifest before the files are re-hashed (`verify`).
    """
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
    check_pin(manifest, expect_id, art_dir)
    if trusted_keys:
        from graphopt.signing import verify_signature

        verify_signature(art_dir, manifest, trusted_keys)
    if verify:
        _check_hashes(manifest, art_dir)
    return manifest


def check_manifest(manifest: Any, where: Path | str) -> None:
    """The checks a loaded manifest passes (format, fields, `files`, both ids), for a
    manifest read from elsewhere (the pipeline store's objects)."""
    _check_format(manifest, Path(where))


def _check_format(manifest: Any, path: Path) -> None:
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ArtifactError(f"{path}: not a graphopt artifact manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(
            f"{path}: artifact format {manifest.get('format_version')} is not supported (expected {FORMAT_VERSION}); recompile"
        )
    missing = [k for k in (*BUILD_FIELDS, "build_id", "id", "files", "inputs", "outputs") if k not in manifest]
    if missing:
        raise ArtifactError(f"{path}: manifest lacks {', '.join(missing)}")
    _check_files_field(manifest["files"], path)
    _check_signature_fields(manifest, path)
    if build_id(manifest) != manifest["build_id"]:
        raise ArtifactError(f"{path}: manifest build_id does not match its fields (edited or corrupt)")
    if content_id(manifest) != manifest["id"]:
        raise ArtifactError(f"{path}: manifest id does not match its contents (edited or corrupt)")


def _check_files_field(files: Any, path: Path) -> None:
    """`files` must hash every file the runtime reads, each a plain name in the folder."""
    if not isinstance(files, dict):
        raise ArtifactError(f"{path}: manifest `files` is not a mapping")
    for name, digest in files.items():
        if (not isinstance(name, str) or name in ("", ".", "..", MANIFEST, SIGNATURE) or "/" in name
                or "\\" in name or not isinstance(digest, str) or not _HEX64.fullmatch(digest)):
            raise ArtifactError(f"{path}: manifest `files` has a bad entry {str(name)[:60]!r}")
    unlisted = [n for n in REQUIRED_FILES if n not in files]
    if unlisted:
        raise ArtifactError(f"{path}: manifest `files` does not hash {', '.join(unlisted)}")


def _check_signature_fields(manifest: dict, path: Path) -> None:
    """What the runtime reads besides the files: each input/output as {name, shape, dtype} and the
    parameters' keys in params.npz. A manifest rewritten without them is refused here, in one line,
    rather than failing inside the runtime (found by tests/test_fuzz.py)."""
    for key in ("inputs", "outputs"):
        sigs = manifest[key]
        if not isinstance(sigs, list) or not all(_is_tensor_signature(s) for s in sigs):
            raise ArtifactError(f"{path}: manifest `{key}` is not a list of {{name, shape, dtype}} entries")
    keys = manifest.get("param_keys")
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise ArtifactError(f"{path}: manifest `param_keys` is missing or not a list of names")


def _is_tensor_signature(sig: Any) -> bool:
    return (isinstance(sig, dict) and isinstance(sig.get("name"), str) and isinstance(sig.get("dtype"), str)
            and isinstance(sig.get("shape"), list)
            and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in sig["shape"]))


def _check_hashes(manifest: dict, art_dir: Path) -> None:
    for name, expected in manifest["files"].items():
        file = art_dir / name
        if not file.is_file():
            raise ArtifactError(f"{art_dir}: missing file {name}")
        if sha256_file(file) != expected:
            raise ArtifactError(f"{art_dir}: {name} is corrupt (sha-256 mismatch)")


def private_copy(art_dir: Path, manifest: dict) -> tempfile.TemporaryDirectory:
    """A private copy (a fresh 0700 temporary folder) of the files the runtime reads, each
    hashed from the bytes copied: what is then loaded from it is what the manifest hashes,
    even if the artifact folder is changed after it was checked. `.cleanup()` once loaded
    (a loaded library stays mapped). Honours TMPDIR (it must allow executing a library)."""
    art_dir = Path(art_dir)
    tmp = tempfile.TemporaryDirectory(prefix="graphopt-verified-")
    try:
        for name in REQUIRED_FILES + tuple(n for n in OPTIONAL_FILES if n in manifest["files"]):
            digest = hashlib.sha256()
            with open(art_dir / name, "rb") as src, open(Path(tmp.name) / name, "wb") as dst:
                for chunk in iter(lambda: src.read(1 << 20), b""):
                    digest.update(chunk)
                    dst.write(chunk)
            if digest.hexdigest() != manifest["files"][name]:
                raise ArtifactError(f"{art_dir}: {name} changed after it was verified; refusing to load it")
    except OSError as exc:
        tmp.cleanup()
        raise ArtifactError(f"{art_dir}: cannot copy the verified files ({exc.strerror or exc})") from None
    except BaseException:
        tmp.cleanup()
        raise
    return tmp


def load_plan(art_dir: Path) -> dict:
    """The plan as stored; call load_manifest first to have its hash checked."""
    try:
        plan = json.loads((Path(art_dir) / PLAN).read_text())
    except (OSError, ValueError) as exc:  # ValueError: bad JSON, and bytes that are not UTF-8 (tests/test_fuzz.py)
        raise ArtifactError(f"{art_dir}: cannot read {PLAN} ({exc})") from None
    if not isinstance(plan, dict):
        raise ArtifactError(f"{art_dir}: {PLAN} is not a JSON object")
    return plan
