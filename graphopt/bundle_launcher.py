"""Runs an artifact of this graphopt bundle, without the compiler (copied as DIR/run.py).

    python DIR/run.py --input NAME=FILE.npy [--artifact NAME[@ID]] [--trusted-key PUB] [--output-dir OUT] [--repeat N]

Needs Python (a version listed in bundle.json's python_tags) and numpy; TVM's
runtime, TVM-FFI and graphopt's runtime come from DIR/site. TVM is loaded
runtime-only (TVM_USE_RUNTIME_LIB=1): the bundle has no compiler library.
Other programs use the same runtime with `activate(DIR)` then `graphopt.runtime.load`.
`--artifact NAME@ID` pins the content id; `--trusted-key` / GRAPHOPT_TRUSTED_KEYS demand a
signature, which needs the `cryptography` package importable by this Python (the bundle
does not carry it): without it a configured key refuses every load, in one line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def activate(root: Path = HERE) -> dict:
    """Puts the bundle's site/ first on sys.path; refuses a Python it has no extension for."""
    info = json.loads((root / "bundle.json").read_text())
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    if tag not in info["python_tags"]:
        raise SystemExit(f"error: this bundle runs on {', '.join(info['python_tags'])}, not {tag} "
                         f"(rebuild it with `graphopt bundle ... --python {sys.version_info.major}."
                         f"{sys.version_info.minor}`)")
    os.environ["TVM_USE_RUNTIME_LIB"] = "1"
    sys.dont_write_bytecode = True  # the bundle stays as written (it may be read-only, or hashed)
    site = str(root / "site")
    if site not in sys.path:
        sys.path.insert(0, site)
    return info


def artifact_dir(info: dict, name: str | None, root: Path = HERE) -> Path:
    names = sorted(info["artifacts"])
    if name is None and len(names) == 1:
        name = names[0]
    if name not in info["artifacts"]:
        raise SystemExit(f"error: choose --artifact among {', '.join(names)}")
    return root / "artifacts" / name


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run an artifact of this graphopt bundle.")
    parser.add_argument("--artifact", default=None, metavar="NAME[@ID]",
                        help="artifact name (needed when the bundle has several); @ID pins its content id")
    parser.add_argument("--trusted-key", action="append", default=[], metavar="PUB",
                        help="load only an artifact signed by this Ed25519 public key (repeatable)")
    parser.add_argument("--input", action="append", default=[], metavar="NAME=FILE.npy")
    parser.add_argument("--output-dir", type=Path, default=None, help="write each output as NAME.npy here")
    parser.add_argument("--repeat", type=int, default=1, help="runs to time (median reported)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    info = activate()
    import numpy as np

    from graphopt.artifact import split_pin
    from graphopt.errors import GraphoptError
    from graphopt.runtime import load

    try:
        chosen, pin = split_pin(args.artifact) if args.artifact is not None else (None, None)
        feeds = {}
        for item in args.input:
            name, sep, path = item.partition("=")
            if not sep:
                raise SystemExit(f"error: expected NAME=FILE.npy, got {item!r}")
            feeds[name] = np.load(path, allow_pickle=False)
        session = load(artifact_dir(info, chosen), expect_id=pin, trusted_keys=args.trusted_key)
        times = []
        for _ in range(max(args.repeat, 1)):
            start = time.perf_counter()
            result = session.run_timed(feeds)
            times.append(time.perf_counter() - start)
    except GraphoptError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.output_dir is not None:
        args.output_dir.mkdir(parents=True, exist_ok=True)
        for name, value in result.outputs.items():
            safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
            np.save(args.output_dir / f"{safe}.npy", value)
    for name, value in result.outputs.items():
        print(f"{name}: shape {'x'.join(map(str, value.shape))} {value.dtype}")
    print(f"time: {sorted(times)[len(times) // 2] * 1e3:.3f} ms (median of {len(times)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
