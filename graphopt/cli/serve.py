"""`graphopt serve --variant NAME=ART[@ID][:quality] ...`: the elastic inference service (thin: check, load, run).

Registered by graphopt.cli (`register(sub)` returns the handler). Every bad argument,
from argparse or from the checks here, is one line `error: ...` and exit status 2;
variants load (hash-verified) and are measured before the port is bound.
"""

from __future__ import annotations

import argparse
import socket
import sys
from collections.abc import Callable
from pathlib import Path

from graphopt.cli.args import add_trusted_key, one_line_errors
from graphopt.errors import InputError


def register(sub) -> Callable[[argparse.Namespace], int]:
    """Adds `serve` to graphopt's subparsers; returns its handler."""
    p = sub.add_parser("serve", help="serve compiled variants over HTTP, picking per request the best one meeting an SLO",
                       description="Elastic inference: every variant stays loaded; per request the controller picks "
                                   "the highest-quality variant whose predicted queue + service time meets the SLO.")
    p.add_argument("--variant", action="append", default=[], metavar="NAME=ART[@ID][:QUALITY]",
                   help="a compiled artifact and its quality (higher is better; default 1.0); repeatable; "
                        "@ID pins its content id (or 12+ leading hex digits): any other artifact is refused")
    p.add_argument("--slo-ms", type=float, default=100.0, help="latency target per request (default 100)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (0: any free port; default 8000)")
    p.add_argument("--token-file", type=Path, default=None, help="require `Authorization: Bearer <file content>`")
    p.add_argument("--max-batch", type=int, default=None, metavar="ROWS",
                   help="most rows per request and per batch (default: each artifact's batch size)")
    p.add_argument("--batch-buckets", default=None, metavar="N,N,...",
                   help="variable-batch (range) artifacts: pad each batch to the smallest of these sizes that holds "
                        "it (default: no padding, a batch runs at the size queued)")
    p.add_argument("--max-body-bytes", type=int, default=8 << 20, help="larger bodies get 413 (default 8 MiB)")
    p.add_argument("--header-timeout", type=float, default=10.0, metavar="S",
                   help="a request line + headers not complete within S seconds: 408 and close (default 10)")
    p.add_argument("--body-timeout", type=float, default=10.0, metavar="S",
                   help="a body not complete within S seconds of the headers: 408 (default 10)")
    p.add_argument("--headroom", type=float, default=0.8,
                   help="quality is chosen to finish within this fraction of the SLO (default 0.8)")
    add_trusted_key(p)
    one_line_errors(p)
    return cmd_serve


def _check(args: argparse.Namespace) -> None:
    if not args.variant:
        raise InputError("serve needs at least one --variant NAME=ART[:QUALITY]")
    if not args.slo_ms > 0:
        raise InputError(f"--slo-ms must be positive, got {args.slo_ms:g}")
    if not 0 <= args.port <= 65535:
        raise InputError(f"--port must be 0..65535, got {args.port}")
    if args.max_batch is not None and args.max_batch < 1:
        raise InputError(f"--max-batch must be at least 1, got {args.max_batch}")
    if args.batch_buckets is not None:
        args.batch_buckets = parse_buckets(args.batch_buckets)
    if args.max_body_bytes < 1:
        raise InputError(f"--max-body-bytes must be at least 1, got {args.max_body_bytes}")
    if not 0 < args.headroom <= 1:
        raise InputError(f"--headroom must be in (0, 1], got {args.headroom:g}")
    for flag, seconds in (("--header-timeout", args.header_timeout), ("--body-timeout", args.body_timeout)):
        if not 0 < seconds < float("inf"):
            raise InputError(f"{flag} must be a positive number of seconds, got {seconds:g}")


def parse_buckets(text: str) -> tuple[int, ...]:
    """`1,4,16,32` -> (1, 4, 16, 32); InputError (one line) unless positive integers."""
    try:
        sizes = tuple(sorted({int(t) for t in text.split(",")}))
    except ValueError:
        raise InputError(f"--batch-buckets expects sizes like 1,4,16,32, got {text!r}") from None
    if not sizes or sizes[0] < 1:
        raise InputError(f"--batch-buckets sizes must be at least 1, got {text!r}")
    return sizes


def read_token(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        token = path.read_text().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read --token-file {path} ({exc})") from None
    if not token or any(c.isspace() for c in token):
        raise InputError(f"--token-file {path} must hold one token without spaces")
    return token


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before uvicorn starts so `--port 0` can report its port.

    proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY only on sockets whose proto says TCP;
    without it, keep-alive requests wait ~40 ms on Nagle + delayed ACK.
    """
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        raise InputError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from None
    return sock


def cmd_serve(args: argparse.Namespace) -> int:
    from graphopt.serve.service import Service
    from graphopt.serve.variants import VariantSpec, load_variants

    _check(args)
    token = read_token(args.token_file)
    specs = [VariantSpec.parse(text) for text in args.variant]
    variants = load_variants(specs, args.max_batch, args.trusted_key, args.batch_buckets)  # hash/pin/signature-verified
    if args.host not in ("127.0.0.1", "localhost", "::1") and token is None:
        print(f"warning: serving on {args.host} without --token-file: anyone who can reach it may run inference",
              file=sys.stderr)
    service = Service(variants, args.slo_ms / 1e3, args.headroom)  # measures every variant
    for v in variants:
        median, mad = service.startup[v.name]
        batch = f"variable batch {v.run_sizes[0]}..{v.capacity}" if v.variable else f"batch {v.capacity}"
        print(f"variant {v.name}: quality {v.quality:g}, {batch}, input {list(v.sample_shape)}, "
              f"{median * 1e3:.2f} ms +- {mad * 1e3:.2f} per full batch")
    sock = bind(args.host, args.port)
    return _run(args, service, token, sock)


def _run(args, service, token, sock) -> int:
    import uvicorn

    from graphopt.serve.app import Limits, create_app
    from graphopt.serve.protocol import head_deadline_protocol

    app = create_app(service, token, Limits(args.max_body_bytes, args.body_timeout))
    host, port = sock.getsockname()[:2]
    print(f"serving {len(service.variants)} variant(s) on http://{host}:{port} (SLO {args.slo_ms:g} ms)",
          flush=True)
    server = uvicorn.Server(uvicorn.Config(app, http=head_deadline_protocol(args.header_timeout),
                                           log_level="warning", lifespan="on", access_log=False))
    server.run(sockets=[sock])
    return 0
