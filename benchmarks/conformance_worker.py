"""A worker process of the conformance runner: generates the suite once, runs cases on request.

    python -m benchmarks.conformance_worker [--mem-gb 6]

Protocol, one JSON object per line. The worker says `{"ready": [case names],
"graphopt": where it imported graphopt from}` once the suite is generated; then
for each `{"case": NAME, "engines": [...]}` read from stdin it writes
`{"phase": P}` as each engine starts (`engine:ENGINE`) and as graphopt enters each
phase, then `{"result": {...}}` per engine, in order. The phase lines are what let
the parent name the stage when native code kills this process mid-case.

The protocol has its own copy of stdout; the real stdout is pointed at stderr, so
whatever TVM, ONNX Runtime or the suite print can never corrupt it. The address
space is capped (RLIMIT_AS) so a runaway case fails here, not on the shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
from collections.abc import Callable
from typing import TextIO

from benchmarks.conformance_cases import ENGINES, Suite


def cap_memory(gigabytes: float) -> None:
    """Caps this process's address space; a case over it fails with MemoryError or dies."""
    limit = int(gigabytes * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def protocol_stream() -> TextIO:
    """A private line-buffered copy of stdout; fd 1 then points at stderr."""
    stream = os.fdopen(os.dup(1), "w", buffering=1)
    sys.stdout.flush()
    os.dup2(2, 1)
    return stream


def serve(suite: Suite, say: Callable[[dict], None]) -> None:
    """Answers case requests from stdin until it closes."""
    import graphopt

    say({"ready": suite.names(), "graphopt": graphopt.__file__})
    for line in sys.stdin:
        request = json.loads(line)
        case, engines = request["case"], request["engines"]
        unknown = set(engines) - set(ENGINES)
        if unknown:
            raise ValueError(f"unknown engine(s) {sorted(unknown)}; choose from {list(ENGINES)}")
        for engine in engines:
            say({"phase": f"engine:{engine}"})
            say({"result": suite.run(case, engine).to_json()})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mem-gb", type=float, default=6.0, help="address-space cap of this process")
    args = parser.parse_args(argv)
    cap_memory(args.mem_gb)
    out = protocol_stream()

    def say(message: dict) -> None:
        out.write(json.dumps(message) + "\n")

    suite = Suite(listener=lambda phase: say({"phase": phase}))
    serve(suite, say)


if __name__ == "__main__":
    main()
