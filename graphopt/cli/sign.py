"""`graphopt sign ART[@ID] --key KEY`: sign an artifact's content id (ART/signature.json).

Registered by graphopt.cli (`register(sub)` returns the handler). The artifact is
verified first (every file's sha-256; with @ID, that it is the pinned artifact), so
a signature never vouches for bytes that were already changed. `graphopt keygen`
makes the key pair; runtimes check with --trusted-key or GRAPHOPT_TRUSTED_KEYS
(graphopt.signing).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path


def register(sub) -> Callable[[argparse.Namespace], int]:
    """Adds `sign` to graphopt's subparsers; returns its handler."""
    p = sub.add_parser("sign", help="sign an artifact with an Ed25519 key (runtimes check it with --trusted-key)",
                       description="Verifies the artifact, then writes ART/signature.json: an Ed25519 signature of "
                                   "its content id, which covers the manifest and every file. Signatures by other "
                                   "keys of the same id are kept.")
    p.add_argument("artifact", metavar="ART[@ID]",
                   help="the artifact; with @ID (its content id, or 12+ leading hex digits) any other is refused")
    p.add_argument("--key", type=Path, required=True, metavar="KEY",
                   help="the private key file (PEM PKCS#8 as `graphopt keygen` writes, or OpenSSH ed25519)")
    return run


def run(args: argparse.Namespace) -> int:
    from graphopt.artifact import split_pin
    from graphopt.signing import sign_artifact

    art, pin = split_pin(args.artifact)
    record = sign_artifact(Path(art), args.key, expect_id=pin)
    print(f"signed {art} (id {record['id']}) with key {record['signatures'][-1]['key_id']}: "
          f"{Path(art) / 'signature.json'}")
    return 0
