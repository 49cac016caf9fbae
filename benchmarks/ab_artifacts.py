"""Two artifacts of one zoo model (say, compiled by two commits), timed side by side in one process.

    python -m benchmarks.ab_artifacts --model encoder --a OLD_ART --b NEW_ART [--rounds 12] [--json FILE]
    python -m benchmarks.ab_artifacts --model light_resnet50 --a ART --b ART --a-without-host-slab

Why: a change to kernels or schedules is judged by the same model compiled before and after it;
timing each in its own run lets the machine's drift decide. Both artifacts run in this process
with graphopt's default threads, interleaved A B, B A, ... each turn after a 0.3 s settle run, the
median of 15 calls per turn; the paired ratio B/A per round gives the spread. Both outputs are
checked against ONNX Runtime first. Compile each artifact with its own checkout, e.g.
`PYTHONPATH=OLD_CHECKOUT python -m graphopt compile ...`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.model_zoo import ZOO, materialize
from benchmarks.timing import _quartiles

SETTLE_SECONDS = 0.3
CALLS_PER_TURN = 15


# Largest relative difference from ONNX Runtime an artifact may show and still be timed.
MAX_REL_ERR = 1e-4


def _checked(session, feeds: dict, expected: list, label: str, max_rel_err: float = MAX_REL_ERR) -> float:
    """The artifact's worst relative difference from ONNX Runtime; exits when it exceeds `max_rel_err`."""
    actual = list(session.run(feeds).values())
    worst = max(float(np.abs(a - e).max() / max(np.abs(e).max(), 1e-12)) for a, e in zip(actual, expected))
    if worst > max_rel_err:
        raise SystemExit(f"artifact {label}: outputs differ from ONNX Runtime's by {worst:.2e} (relative), "
                         f"more than {max_rel_err:.0e} (--max-rel-err)")
    return worst


def _turn(session, feeds: dict) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < SETTLE_SECONDS:
        session.run(feeds)
    return statistics.median(session.run_timed(feeds).seconds for _ in range(CALLS_PER_TURN))


def compare(model: str, art_a: Path, art_b: Path, rounds: int, max_rel_err: float = MAX_REL_ERR,
            a_without_host_slab: bool = False) -> dict:
    """`a_without_host_slab`: A's weights in TVM's allocator (graphopt.runtime.host_slab.disabled), the
    baseline of a runtime change; A and B may then be the same artifact."""
    import contextlib

    import onnxruntime as ort

    from graphopt.runtime import host_slab, load

    with tempfile.TemporaryDirectory() as tmp:
        model_path, _shapes, feeds = materialize(model, Path(tmp))
        expected = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"]).run(None, feeds)
    with host_slab.disabled() if a_without_host_slab else contextlib.nullcontext():
        session_a = load(art_a)
    sessions = {"a": session_a, "b": load(art_b)}
    errors = {label: _checked(session, feeds, expected, label, max_rel_err) for label, session in sessions.items()}
    samples: dict[str, list[float]] = {"a": [], "b": []}
    load_start = os.getloadavg()
    for r in range(rounds):
        for label in ("a", "b") if r % 2 == 0 else ("b", "a"):
            samples[label].append(_turn(sessions[label], feeds))
    ratios = [b / a for a, b in zip(samples["a"], samples["b"])]
    return {"model": model, "a": str(art_a), "b": str(art_b), "a_ms": statistics.median(samples["a"]) * 1e3,
            "b_ms": statistics.median(samples["b"]) * 1e3, "b/a": statistics.median(ratios),
            "b/a q1-q3": list(_quartiles(ratios)), "rounds": rounds, "load_average_start": load_start,
            "load_average_end": os.getloadavg(), "max_rel_err": errors,
            "host_slab": {label: _slab_report(session) for label, session in sessions.items()},
            "samples_ms": {k: [round(x * 1e3, 3) for x in v] for k, v in samples.items()}}


def _slab_report(session) -> dict | None:
    slab = session.host_slab
    return None if slab is None else {"bytes": slab.used, "advised_huge_pages": slab.advised}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, choices=sorted(ZOO))
    parser.add_argument("--a", type=Path, required=True, help="artifact folder A (the baseline)")
    parser.add_argument("--b", type=Path, required=True, help="artifact folder B")
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--max-rel-err", type=float, default=MAX_REL_ERR,
                        help="refuse an artifact whose outputs differ more from ONNX Runtime's (default 1e-4; "
                             "ocr_det differs by 1.7e-4, as OpenVINO does)")
    parser.add_argument("--a-without-host-slab", action="store_true",
                        help="load A with its weights in TVM's allocator, not the runtime's host slab (the baseline "
                             "of that runtime change; --a and --b may name the same artifact)")
    args = parser.parse_args(argv)
    result = compare(args.model, args.a, args.b, args.rounds, args.max_rel_err, args.a_without_host_slab)
    result["command"] = "python -m benchmarks.ab_artifacts " + " ".join(argv)
    print(f"{args.model}: A {result['a_ms']:.2f} ms, B {result['b_ms']:.2f} ms, B/A {result['b/a']:.3f} "
          f"(quartiles {result['b/a q1-q3'][0]:.3f}-{result['b/a q1-q3'][1]:.3f}), load {result['load_average_start']}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
