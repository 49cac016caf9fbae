"""`graphopt keygen --out PREFIX`: an Ed25519 key pair for `graphopt sign` (PREFIX.key, PREFIX.pub).

Registered by graphopt.cli (`register(sub)` returns the handler). The private key
is written with mode 0600 and never over an existing file; the public key is what
runtimes are given (--trusted-key, GRAPHOPT_TRUSTED_KEYS).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path


def register(sub) -> Callable[[argparse.Namespace], int]:
    """Adds `keygen` to graphopt's subparsers; returns its handler."""
    p = sub.add_parser("keygen", help="make an Ed25519 key pair for signing artifacts",
                       description="Writes PREFIX.key (the private key, PEM PKCS#8, mode 0600: keep it with the "
                                   "operator) and PREFIX.pub (the public key, for --trusted-key).")
    p.add_argument("--out", type=Path, required=True, metavar="PREFIX", help="where to write PREFIX.key and PREFIX.pub")
    return run


def run(args: argparse.Namespace) -> int:
    from graphopt.signing import generate_keypair

    private, public, kid = generate_keypair(args.out)
    print(f"wrote {private} (private, mode 0600) and {public} (public); key id {kid}")
    return 0
