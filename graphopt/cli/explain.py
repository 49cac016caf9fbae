"""`graphopt explain ART --input FILE.npy ...`: a saliency map of one prediction (thin: parse, call, print).

Registered by graphopt.cli (`register(sub)` returns the handler), whose `main`
holds the error contract: a GraphoptError is one line `error: ...` and exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from graphopt.errors import InputError

METHOD_NAMES = ("occlusion", "rise", "lime")  # graphopt.explain.METHODS, without importing numpy at parse time


def register(sub) -> Callable[[argparse.Namespace], int]:
    """Adds the `explain` command to graphopt's subparsers; returns its handler."""
    p = sub.add_parser("explain", help="black-box saliency map of an artifact's prediction, with fidelity checks",
                       description="Perturb the input (occlusion, RISE or LIME), watch the target's score through "
                                   "the compiled artifact, draw the map over the input, and check it: same method "
                                   "on the source ONNX model (correlation) and the deletion curve against random.")
    p.add_argument("artifact", type=Path)
    p.add_argument("--input", type=Path, required=True, metavar="FILE.npy", help="one image, CxHxW or 1xCxHxW")
    p.add_argument("--method", default="occlusion", help=f"one of {', '.join(METHOD_NAMES)} (default occlusion)")
    p.add_argument("--target", type=int, default=None, metavar="K", help="class to explain (default: the top class)")
    p.add_argument("--out", type=Path, required=True, metavar="MAP.png", help="the map over the input")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--reference", type=Path, default=None, metavar="MODEL.onnx",
                   help="the artifact's source model (the manifest keeps only its hash) for the correlation check")
    p.add_argument("--seed", type=int, default=0, help="masks, samples and random deletion orders (default 0)")
    p.add_argument("--samples", type=int, default=None, metavar="N", help="perturbations for rise/lime "
                   "(default 1000 / 500)")
    p.add_argument("--patch", type=int, default=None, metavar="PX",
                   help="occlusion window, RISE cell, LIME superpixel size (default: shorter side / 6, at least 4)")
    p.add_argument("--save-map", type=Path, default=None, metavar="MAP.npy", help="also write the map as HxW .npy")
    return cmd_explain


def cmd_explain(args) -> int:
    if args.method not in METHOD_NAMES:
        raise InputError(f"unknown method {args.method!r}; choose from {', '.join(METHOD_NAMES)}")
    if args.out.suffix.lower() != ".png":
        raise InputError(f"--out must be a .png file, got {args.out}")
    for path in (args.out, args.save_map):  # fail before the minutes of work, not after
        if path is not None and not path.resolve().parent.is_dir():
            raise InputError(f"cannot write {path}: no directory {path.parent}")
    from graphopt.explain import explain_artifact
    from graphopt.explain.overlay import save_overlay

    report = explain_artifact(args.artifact, args.input, args.method, args.target, args.samples, args.patch,
                              args.seed, args.reference)
    title = f"{args.method}: class {report.target} ({report.score_kind} {report.target_score:.3g})"
    save_overlay(args.out, report.image, report.saliency, title, report.reference_map)
    if args.save_map is not None:
        _save_map(args.save_map, report.saliency)
    if args.reference is None:
        print("warning: no --reference MODEL.onnx: the artifact records only its source's sha-256, not its path; "
              "correlation_with_reference is null", file=sys.stderr)
    if args.json:
        print(json.dumps({**report.as_json(), "map_png": str(args.out)}))
    else:
        _print_summary(report, args.out)
    return 0


def _save_map(path: Path, saliency) -> None:
    import numpy as np

    try:
        np.save(path, saliency)
    except OSError as exc:
        raise InputError(f"cannot write {path} ({exc.strerror or exc})") from None


def _print_summary(report, out: Path) -> None:
    d = report.deletion
    corr = report.correlation_with_reference
    corr = "n/a" if corr is None else f"{corr:.6f} ({'meets' if corr >= 0.99 else 'MISSES'} the 0.99 target)"
    print(f"wrote {out}")
    print(f"method {report.method}, target class {report.target} ({report.score_kind} score {report.target_score:.4g})")
    print(f"correlation with reference: {corr}")
    verdict = "below random: the map found evidence" if d.deletion_auc < d.random_deletion_auc else "NOT below random"
    print(f"deletion AUC {d.deletion_auc:.4f} vs random {d.random_deletion_auc:.4f} ({verdict})")
    print("seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in report.seconds.items()))
