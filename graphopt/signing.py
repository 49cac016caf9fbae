"""Signing artifacts: an operator's Ed25519 signature over the content id, checked before loading.

    graphopt keygen --out ops              ops.key (private, mode 0600) + ops.pub
    graphopt sign ART --key ops.key        ART/signature.json
    graphopt run ART --trusted-key ops.pub ...   (or GRAPHOPT_TRUSTED_KEYS=ops.pub)

What is signed is the artifact's content id (graphopt.artifact): the sha-256 of
the whole manifest but `id`, which holds the sha-256 of every other file. So one
signature covers the library, the parameters, the plan and every manifest field;
the loader recomputes the id and re-hashes each file before the library is
loaded. The message is `DOMAIN + id`, so a graphopt signature cannot be replayed
as a signature of anything else made with the same key.

signature.json sits beside the manifest, outside `files` (signing does not change
the id it signs) and may hold several signatures (one per key). When any trusted
key is configured (`trusted_keys=` / `--trusted-key` / GRAPHOPT_TRUSTED_KEYS, a
list of public key files separated by os.pathsep), an artifact is loaded only if
a trusted key signed exactly its id: unsigned, signed for another id, signed by
other keys only, or a signature that does not verify are each one-line refusals.

Keys are PEM (PKCS#8 private, SubjectPublicKeyInfo public; what keygen writes) or
OpenSSH ed25519 files (`ssh-keygen -t ed25519 -N ''`); passphrase-protected
private keys are refused. The `cryptography` package does the Ed25519 work; this
module imports it only when a key is used, so the runtime's import stays light.
A runtime-only bundle does not carry it: there, verifying needs `cryptography`
installed for the Python that runs the bundle, and without it a configured key
makes every load fail with a line saying so. Never is a check silently skipped.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

from graphopt.artifact import SIGNATURE, load_manifest
from graphopt.errors import ArtifactError, InputError

ENV = "GRAPHOPT_TRUSTED_KEYS"
FORMAT = "graphopt-signature"
FORMAT_VERSION = 1
ALGORITHM = "ed25519"
DOMAIN = b"graphopt-artifact-content-id-v1:"
MAX_FILE_BYTES = 1 << 20  # a key or signature file is a few hundred bytes


def configured_keys(explicit: Iterable[str | os.PathLike] | None = None) -> list[Path]:
    """The trusted public key files: those given, plus every one in GRAPHOPT_TRUSTED_KEYS."""
    keys = [Path(k) for k in (explicit or ())]
    keys += [Path(p) for p in os.environ.get(ENV, "").split(os.pathsep) if p.strip()]
    return list(dict.fromkeys(keys))


def _crypto(error: type[Exception], why: str):
    """The cryptography package's Ed25519 and serialization modules, or a one-line error."""
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:
        raise error(f"{why} needs the Python package 'cryptography', which this Python cannot import "
                    "(a runtime-only bundle does not include it): install it (pip install cryptography)") from None
    return ed25519, serialization


def _read(path: Path, what: str, error: type[Exception]) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise error(f"cannot read {what} {path} ({exc.strerror or exc})") from None
    if len(data) > MAX_FILE_BYTES:
        raise error(f"{what} {path} is too large to be a key")
    return data


def key_id(public_key) -> str:
    """16 hex digits naming a public key: the start of the sha-256 of its 32 raw bytes."""
    _ed, serialization = _crypto(ArtifactError, "naming a key")
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def load_public_key(path: str | os.PathLike, error: type[Exception] = ArtifactError):
    """An Ed25519 public key from a PEM or OpenSSH file."""
    ed25519, serialization = _crypto(error, "checking artifact signatures")
    path = Path(path)
    data = _read(path, "trusted key", error)
    try:
        if data.lstrip().startswith(b"ssh-"):
            key = serialization.load_ssh_public_key(data.strip())
        else:
            key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise error(f"trusted key {path} is not a PEM or OpenSSH public key ({exc})") from None
    except Exception as exc:  # noqa: BLE001  (cryptography raises its own UnsupportedAlgorithm)
        raise error(f"trusted key {path} cannot be read ({type(exc).__name__}: {exc})") from None
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise error(f"trusted key {path} is not an Ed25519 key")
    return key


def load_private_key(path: str | os.PathLike):
    """An Ed25519 private key from a PEM (PKCS#8) or OpenSSH file without passphrase."""
    ed25519, serialization = _crypto(InputError, "signing")
    path = Path(path)
    data = _read(path, "signing key", InputError)
    try:
        if b"OPENSSH PRIVATE KEY" in data:
            key = serialization.load_ssh_private_key(data, password=None)
        else:
            key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise InputError(f"signing key {path} is protected by a passphrase; graphopt needs an unencrypted key "
                         "file (keep it readable by its owner only)") from None
    except ValueError as exc:
        raise InputError(f"signing key {path} is not a PEM or OpenSSH private key ({exc})") from None
    except Exception as exc:  # noqa: BLE001
        raise InputError(f"signing key {path} cannot be read ({type(exc).__name__}: {exc})") from None
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise InputError(f"signing key {path} is not an Ed25519 key")
    return key


def generate_keypair(prefix: str | os.PathLike) -> tuple[Path, Path, str]:
    """Writes PREFIX.key (private, mode 0600) and PREFIX.pub; returns both paths and the key id.
    Refuses to overwrite either file."""
    ed25519, serialization = _crypto(InputError, "making a key")
    private, public = Path(f"{prefix}.key"), Path(f"{prefix}.pub")
    for path in (private, public):
        if path.exists():
            raise InputError(f"{path} exists; refusing to overwrite a key file")
    if not private.parent.is_dir():
        raise InputError(f"{private.parent}: no such directory")
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    pub = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.write(fd, pem)
    finally:
        os.close(fd)
    fd = os.open(public, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, pub)
    finally:
        os.close(fd)
    return private, public, key_id(key.public_key())


def _message(content_id: str) -> bytes:
    return DOMAIN + content_id.encode("ascii")


def _read_signatures(art_dir: Path) -> dict | None:
    path = art_dir / SIGNATURE
    if not path.is_file():
        return None
    try:
        data = json.loads(_read(path, "signature file", ArtifactError))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ArtifactError(f"{path}: corrupt signature file") from None
    if (not isinstance(data, dict) or data.get("format") != FORMAT or data.get("format_version") != FORMAT_VERSION
            or not isinstance(data.get("id"), str) or not isinstance(data.get("signatures"), list)
            or not all(isinstance(e, dict) for e in data["signatures"])):
        raise ArtifactError(f"{path}: not a graphopt signature file (format {FORMAT} {FORMAT_VERSION})")
    return data


def sign_artifact(art_dir: str | os.PathLike, key_path: str | os.PathLike, expect_id: str | None = None) -> dict:
    """Verifies the artifact (every file's hash; the pin if given), signs its content id with
    the private key and writes ART/signature.json (keeping other keys' signatures of the same id)."""
    art_dir = Path(art_dir)
    key = load_private_key(key_path)
    manifest = load_manifest(art_dir, expect_id=expect_id)
    ident = manifest["id"]
    kid = key_id(key.public_key())
    try:
        existing = _read_signatures(art_dir)
    except ArtifactError:
        existing = None  # replaced below by a sound file
    kept = [e for e in (existing or {}).get("signatures", [])
            if existing["id"] == ident and e.get("key_id") != kid]
    entry = {"algorithm": ALGORITHM, "key_id": kid,
             "signature": base64.b64encode(key.sign(_message(ident))).decode("ascii")}
    record = {"format": FORMAT, "format_version": FORMAT_VERSION, "id": ident, "signatures": [*kept, entry]}
    final = art_dir / SIGNATURE
    tmp = art_dir / f".{SIGNATURE}.{os.getpid()}"
    try:
        tmp.write_text(json.dumps(record, indent=1, sort_keys=True))
        os.replace(tmp, final)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InputError(f"cannot write {final} ({exc.strerror or exc})") from None
    return record


def verify_signature(art_dir: str | os.PathLike, manifest: dict, key_paths: Iterable[str | os.PathLike]) -> str:
    """Returns the id of the trusted key whose signature of the manifest's (verified) id holds;
    raises ArtifactError (one line) for an unsigned artifact or one no trusted key signed."""
    art_dir = Path(art_dir)
    paths = [Path(p) for p in key_paths]
    _crypto(ArtifactError, f"{art_dir}: trusted keys are configured; checking its signature")
    from cryptography.exceptions import InvalidSignature

    trusted = {}
    for path in paths:
        key = load_public_key(path)
        trusted[key_id(key)] = key
    names = ", ".join(sorted(trusted))
    record = _read_signatures(art_dir)
    if record is None:
        raise ArtifactError(f"{art_dir}: not signed (no {SIGNATURE}) and trusted keys are configured ({names}); "
                            "refusing to load it")
    ident = manifest["id"]
    if record["id"] != ident:
        raise ArtifactError(f"{art_dir}: {SIGNATURE} signs content id {str(record['id'])[:16]}, the artifact's is "
                            f"{ident[:16]} (changed after signing); refusing to load it")
    signers = []
    for entry in record["signatures"]:
        kid = str(entry.get("key_id"))
        signers.append(kid[:16])
        if kid not in trusted:
            continue
        try:
            if entry.get("algorithm") != ALGORITHM:
                raise ValueError(entry.get("algorithm"))
            signature = base64.b64decode(str(entry.get("signature")), validate=True)
            trusted[kid].verify(signature, _message(ident))
        except (InvalidSignature, ValueError, TypeError):
            raise ArtifactError(f"{art_dir}: the signature by trusted key {kid} does not verify; "
                                "refusing to load it") from None
        return kid
    raise ArtifactError(f"{art_dir}: not signed by a trusted key (signed by {', '.join(signers) or 'nobody'}; "
                        f"trusted: {names}); refusing to load it")


__all__ = ["ENV", "configured_keys", "generate_keypair", "key_id", "load_private_key", "load_public_key",
           "sign_artifact", "verify_signature"]
