"""`make demo`: the main job end to end on a model the package builds itself.

Builds a residual conv net with two parallel branches (onnx.helper), compiles it
with the `graphopt` CLI, runs the artifact, checks the outputs against ONNX
Runtime on random non-zero inputs, prints the plan and writes the memory
timeline PNG. Exits non-zero if anything disagrees.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """max |a - e| / max(|e|, tiny): one number that is scale-free and strict."""
    scale = max(float(np.abs(expected).max()), 1e-12)
    return float(np.abs(actual.astype(np.float64) - expected).max()) / scale


def _run_cli(args: list[str]) -> None:
    from graphopt.cli import main

    print(f"$ graphopt {' '.join(args)}", flush=True)
    status = main(args)
    if status != 0:
        raise SystemExit(status)


def main(argv: list[str] | None = None) -> int:
    import onnx
    import onnxruntime as ort

    from graphopt.examples.models import residual_branch_net

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("demo-out"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    model_path, art = args.out / "residual_branch_net.onnx", args.out / "artifact"
    model = residual_branch_net()
    onnx.save(model, model_path)
    _run_cli(["compile", str(model_path), "-o", str(art), "--planner", "auto", "--time-limit", "5"])
    inputs = {i.name: i for i in model.graph.input}
    feeds = {}
    for name, info in inputs.items():
        shape = [d.dim_value for d in info.type.tensor_type.shape.dim]
        feeds[name] = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        np.save(args.out / f"{name}.npy", feeds[name])
    run_args = ["run", str(art), "--output-dir", str(args.out / "outputs"), "--repeat", "20"]
    for name in feeds:
        run_args += ["--input", f"{name}={args.out / (name + '.npy')}"]
    _run_cli(run_args)
    reference = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"]).run(None, feeds)
    worst = 0.0
    for info, expected in zip(model.graph.output, reference):
        actual = np.load(args.out / "outputs" / f"{info.name}.npy")
        worst = max(worst, relative_error(actual, expected))
    print(f"check vs ONNX Runtime: max relative error {worst:.2e} ({'OK' if worst < 1e-4 else 'MISMATCH'})")
    _run_cli(["inspect", str(art), "--plot", str(args.out / "memory-timeline.png")])
    return 0 if worst < 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
