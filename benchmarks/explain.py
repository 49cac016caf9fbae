"""`graphopt explain` on the trained PP-OCR models: agreement with ONNX Runtime,
deletion AUC against random order, and time, per method.

Per model the source ONNX file is compiled once at a fixed input size; each input
is a rendered text line (graphopt.explain.samples). For every input, seeds run
in rounds and the methods rotate within a round (occlusion rise lime, rise lime
occlusion, ...) after one untimed warm-up explain; each explain computes the map
through the artifact, the same map through ONNX Runtime (same masks, same seed),
and the deletion curves on the artifact. Medians and min..max over rounds.

Targets: cls explains its top class (0 = upright, 1 = upside down); rec (CTC)
explains the most probable non-blank character, averaged over time steps (class 0,
the blank, wins the mean on any line); det explains its mean text probability.

    python -m benchmarks.explain [--models cls,rec,det] [--rounds 3] [--out benchmarks/results/explain-DATE]

Writes OUT.md (table), OUT.json (every run, with its deletion curves) and OUT.png
(deletion curves per model and input).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np

from benchmarks.outputs import RESULTS, unused
from graphopt.explain import METHODS, explain_artifact
from graphopt.explain.predictors import ArtifactPredictor
from graphopt.explain.samples import text_image

# model -> (input shape, texts (a leading "^" draws it upside down), samples for rise/lime)
SETUPS = {
    "cls": ((1, 3, 48, 192), ("Hello 2026", "graphopt", "^Hello 2026"), {"rise": 1000, "lime": 500}),
    "rec": ((1, 3, 48, 192), ("Hello 2026",), {"rise": 300, "lime": 200}),
    "det": ((1, 3, 64, 192), ("Hello 2026",), {"rise": 300, "lime": 200}),
}
LEGEND = ("corr: Pearson correlation over pixels between the artifact's map and ONNX Runtime's on the source "
          "model (same method, masks, seed), min over rounds. Deletion AUCs: area under the target's output "
          "(probability for cls and rec, mean text probability for det) vs fraction of pixels replaced by the "
          "image mean, most salient first, median over rounds; random = mean of 3 random orders. "
          "Seconds: median (min..max) over rounds; total includes the reference map, deletion curves and loading.")


def machine() -> dict:
    from benchmarks.machine import cpu_name

    return {"cpu": cpu_name(), "cores": os.cpu_count(), "load_average_at_start": list(os.getloadavg())}


def compile_source(name: str, shape: tuple[int, ...], work: Path) -> tuple[Path, Path, float]:
    from graphopt.compiler import CompileOptions, compile_model
    from graphopt.examples.real_models import rapidocr_model

    source = rapidocr_model(name)
    start = time.perf_counter()
    compile_model(source, work / name, CompileOptions(input_shapes={"x": shape}, time_limit=2.0))
    return source, work / name, time.perf_counter() - start


def choose_target(name: str, art: Path, npy: Path) -> int | None:
    if name != "rec":
        return None  # the top class (cls), the only score (det)
    scores = ArtifactPredictor(art).predict(np.load(npy)[None])[0]
    return int(np.argmax(scores[1:]) + 1)  # skip CTC's blank


def rotated(items: tuple[str, ...], shift: int) -> list[str]:
    return [items[(i + shift) % len(items)] for i in range(len(items))]


def bench_input(name, source, art, npy, samples, rounds: int) -> list[dict]:
    target = choose_target(name, art, npy)
    explain_artifact(art, npy, "occlusion", target=target)  # warm-up: library load, caches
    rows = []
    for seed in range(rounds):
        for method in rotated(METHODS, seed):
            start = time.perf_counter()
            report = explain_artifact(art, npy, method, target=target, samples=samples.get(method), seed=seed,
                                      reference=source)
            rows.append({**report.as_json(), "total_seconds": time.perf_counter() - start})
    return rows


def summarize(rows: list[dict]) -> dict:
    def spread(values):
        return {"median": statistics.median(values), "min": min(values), "max": max(values)}

    return {"rounds": len(rows),
            "correlation": spread([r["correlation_with_reference"] for r in rows]),
            "deletion_auc": spread([r["deletion_auc"] for r in rows]),
            "random_deletion_auc": spread([r["random_deletion_auc"] for r in rows]),
            "deletion_below_random": sum(r["deletion_auc"] < r["random_deletion_auc"] for r in rows),
            "artifact_seconds": spread([r["seconds"]["explain"] for r in rows]),
            "reference_seconds": spread([r["seconds"]["reference"] for r in rows]),
            "total_seconds": spread([r["total_seconds"] for r in rows])}


def table(results: list[dict]) -> list[str]:
    head = ("| model | input | method | target | samples | corr (min) | deletion AUC | random AUC | below random "
            "| artifact s | ORT s | total s |")
    lines = [head, "|" + "---|" * 12]
    for r in results:
        s = r["summary"]
        lines.append(f"| {r['model']} | {r['input']} | {r['method']} | {r['target']} | {r['samples']} "
                     f"| {s['correlation']['min']:.6f} | {s['deletion_auc']['median']:.3f} "
                     f"| {s['random_deletion_auc']['median']:.3f} | {s['deletion_below_random']}/{s['rounds']} "
                     f"| {s['artifact_seconds']['median']:.2f} ({s['artifact_seconds']['min']:.2f}.."
                     f"{s['artifact_seconds']['max']:.2f}) | {s['reference_seconds']['median']:.2f} "
                     f"| {s['total_seconds']['median']:.2f} |")
    return lines


def plot_curves(results: list[dict], path: Path) -> None:
    """One panel per (model, input): each method's deletion curve (round 0) and the random one."""
    from matplotlib.figure import Figure

    cases = list(dict.fromkeys((r["model"], r["input"]) for r in results))
    fig = Figure(figsize=(4 * len(cases), 3.2), layout="constrained")
    axes = fig.subplots(1, len(cases), squeeze=False)[0]
    for axis, (model, text) in zip(axes, cases):
        mine = [r for r in results if (r["model"], r["input"]) == (model, text)]
        fractions = np.linspace(0, 1, len(mine[0]["runs"][0]["deletion_curve"]))
        for r in mine:
            axis.plot(fractions, r["runs"][0]["deletion_curve"], label=r["method"])
        axis.plot(fractions, mine[0]["runs"][0]["random_deletion_curve"], "k--", label="random order")
        axis.set_title(f"{model}: {text!r} (target {mine[0]['target']})", fontsize=9)
        axis.set_xlabel("fraction of pixels deleted")
    axes[0].set_ylabel("target output")
    axes[0].legend(fontsize=8)
    fig.savefig(path, dpi=100)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="cls", help="comma list of cls, rec, det")
    parser.add_argument("--rounds", type=int, default=3, help="seeds per input and method")
    parser.add_argument("--out", type=Path, default=None,
                        help="file stem (default: results/explain-DATE, a free name)")
    args = parser.parse_args(argv)
    args.out = args.out or unused(RESULTS / f"explain-{date.today().isoformat()}", (".md", ".json", ".png"))
    header = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine(),
              "command": "python -m benchmarks.explain " + " ".join(argv if argv is not None else sys.argv[1:])}
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name in args.models.split(","):
            shape, texts, samples = SETUPS[name]
            source, art, compile_s = compile_source(name, shape, work)
            for text in texts:
                npy = work / f"{name}-{len(results)}.npy"
                np.save(npy, text_image(text.lstrip("^"), shape[2], shape[3], upside_down=text.startswith("^")))
                rows = bench_input(name, source, art, npy, samples, args.rounds)
                for method in METHODS:
                    mine = [r for r in rows if r["method"] == method]
                    results.append({"model": name, "input": text, "method": method, "target": mine[0]["target"],
                                    "score": mine[0]["score"], "samples": mine[0]["samples"] or "-",
                                    "patch": mine[0]["patch"], "compile_seconds": compile_s,
                                    "summary": summarize(mine), "runs": mine})
                print("\n".join(table(results[-len(METHODS):])[2:]), flush=True)
    cpu = header["machine"]
    lines = [f"# graphopt explain: fidelity and time ({header['date']})", "",
             (f"Machine: {cpu['cpu']}, {cpu['cores']} cores (load average at start "
              f"{cpu['load_average_at_start']}; shared with other jobs)."),
             f"Command: `{header['command']}`", "", LEGEND, "", *table(results), "",
             f"Deletion curves (round 0): `{args.out.with_suffix('.png').name}`."]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    args.out.with_suffix(".json").write_text(json.dumps({**header, "results": results}, indent=1))
    plot_curves(results, args.out.with_suffix(".png"))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
