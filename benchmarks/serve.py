"""Elastic serving under a swinging load: the adaptive controller vs every fixed variant.

    python -m benchmarks.serve [--fresh] [--duration S] [--rounds N] [--low R] [--high R] [--slo-ms MS]
                               [--only adaptive,fixed:w512,...]

1. Variants: a sliced MLP (hidden 512) trained ONCE on scikit-learn's digits with graphopt's
   training step (random width per step), each width (64, 128, 256, 512) compiled as an
   artifact sliced from the one weights file; quality = held-out accuracy
   (graphopt/serve/make_slices.py). Cached in --work-dir; --fresh rebuilds.
2. One `graphopt serve` process (loopback, TVM_NUM_THREADS=1) holds every variant. Each
   configuration is a run of the same open-loop arrival schedule (raised cosine between
   --low and --high requests/s, one swing per run, 1024 digits per request as float16
   .npy): "adaptive" lets the controller choose, "fixed:NAME" pins one variant
   (`/infer?variant=NAME`: same queue, batching and load shedding). Configurations
   rotate order every round (A B C.., B C.. A); figures pool the rounds.
3. Per configuration: SLO attainment (answered 200 within the SLO, measured by the client
   from the scheduled send time, over all sent; 503s and timeouts are misses), mean
   quality served (declared, over 200s), accuracy actually served (argmax vs labels),
   throughput, p50/p99 latency of answered requests, requests per batch (from /metrics).
   Table (markdown), plot over time (PNG), JSON (with every request) under
   benchmarks/results/serve-DATE.*; the last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

from benchmarks.outputs import RESULTS, unused
from benchmarks.serve_load import Sent, arrivals, drive, payloads
from benchmarks.serve_report import plot, summarize, table


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.serve", description=__doc__.splitlines()[0])
    p.add_argument("--work-dir", type=Path, default=Path("/tmp/graphopt-serve-bench"))
    p.add_argument("--fresh", action="store_true", help="retrain and recompile the variants")
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--widths", default="64,128,256,512")
    p.add_argument("--steps", type=int, default=1500, help="training steps")
    p.add_argument("--batch", type=int, default=2048, help="rows per run (the artifacts' batch dimension)")
    p.add_argument("--rows", type=int, default=1024, help="rows (digits) per request")
    p.add_argument("--slo-ms", type=float, default=300.0)
    p.add_argument("--headroom", type=float, default=0.8, help="passed to graphopt serve")
    p.add_argument("--only", default=None, help="comma-separated configurations to run (default: all)")
    p.add_argument("--low", type=float, default=8.0, help="lowest offered load, requests/s")
    p.add_argument("--high", type=float, default=32.0, help="highest offered load, requests/s")
    p.add_argument("--duration", type=float, default=20.0, help="seconds per run (one full swing)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--max-requests", type=int, default=4000, help="bound per run")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="file stem under benchmarks/results (default: serve-DATE, a free name)")
    return p.parse_args(argv)


def build_variants(args) -> dict:
    from graphopt.serve.make_slices import make_slices
    from graphopt.serve.slicing import SliceSpec

    widths = tuple(int(w) for w in args.widths.split(","))
    record_path = args.work_dir / "slicing.json"
    if record_path.is_file() and not args.fresh:
        record = json.loads(record_path.read_text())
        same = (record["hidden"] == args.hidden and sorted(map(int, record["widths"])) == list(widths)
                and record["serve_batch"] == args.batch and record["train"]["steps"] == args.steps)
        if same:
            print(f"reusing variants in {args.work_dir} (--fresh rebuilds)", file=sys.stderr)
            return record
    spec = SliceSpec(hidden=args.hidden, widths=widths, seed=args.seed)
    return make_slices(args.work_dir, spec, steps=args.steps, serve_batch=args.batch,
                       say=lambda m: print(m, file=sys.stderr))


def start_server(record: dict, slo_ms: float, headroom: float) -> tuple[subprocess.Popen, str]:
    variants = [f"--variant=w{w}={v['artifact']}:{v['accuracy']:.6f}" for w, v in record["widths"].items()]
    env = {**os.environ, "TVM_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "graphopt.cli", "serve", *variants, "--slo-ms", str(slo_ms),
               "--headroom", str(headroom), "--host", "127.0.0.1", "--port", "0"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=sys.stderr, text=True, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        print(f"server: {line.rstrip()}", file=sys.stderr)
        found = re.search(r"on (http://127\.0\.0\.1:\d+)", line)
        if found:
            return proc, found.group(1)
    proc.kill()
    raise RuntimeError("graphopt serve did not start")


def batch_counts(base_url: str) -> dict[str, tuple[int, int]]:
    """Per variant (batches, rows) from /metrics: how much dynamic batching happened."""
    import httpx

    text = httpx.get(f"{base_url}/metrics", timeout=10).text
    counts: dict[str, list[int]] = {}
    for kind, name, value in re.findall(r'graphopt_serve_batch(es|_rows)_total\{variant="([^"]+)"\} (\d+)', text):
        counts.setdefault(name, [0, 0])[0 if kind == "es" else 1] = int(value)
    return {k: (v[0], v[1]) for k, v in counts.items()}


def run_all(args, record: dict, base_url: str) -> tuple[dict[str, list[list[Sent]]], dict[str, int]]:
    from graphopt.serve.make_slices import digits

    data = digits(seed=args.seed)
    bodies = payloads(data.x_test, data.y_test, args.rows, 16, args.seed)
    schedule = arrivals(args.low, args.high, args.duration, args.duration, args.seed, args.max_requests)
    configs = ["adaptive"] + [f"fixed:w{w}" for w in record["widths"]]
    if args.only:
        configs = [c for c in configs if c in args.only.split(",")]
    runs: dict[str, list[list[Sent]]] = {c: [] for c in configs}
    batches = {c: 0 for c in configs}
    asyncio.run(drive(base_url, schedule[:40], bodies, None, 10.0))  # warm-up, not counted
    for r in range(args.rounds):
        order = configs[r % len(configs):] + configs[:r % len(configs)]
        for config in order:
            time.sleep(1.0)  # let the queue drain
            before = batch_counts(base_url)
            variant = None if config == "adaptive" else config.split(":", 1)[1]
            sent = asyncio.run(drive(base_url, schedule, bodies, variant, max(10 * args.slo_ms / 1e3, 5.0)))
            after = batch_counts(base_url)
            batches[config] += sum(after[k][0] - before.get(k, (0, 0))[0] for k in after)
            runs[config].append(sent)
            ok = sum(s.status == 200 and s.latency <= args.slo_ms / 1e3 for s in sent)
            print(f"round {r + 1} {config}: {len(sent)} sent, {ok / len(sent):.4f} within SLO", file=sys.stderr)
    return runs, batches


def machine() -> dict:
    from benchmarks.machine import cpu_name

    return {"cpu": cpu_name(), "cores": os.cpu_count(), "loadavg_at_start": os.getloadavg()}


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    began = time.perf_counter()
    host = machine()
    record = build_variants(args)
    proc, base_url = start_server(record, args.slo_ms, args.headroom)
    try:
        runs, batches = run_all(args, record, base_url)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    slo = args.slo_ms / 1e3
    summary = summarize(runs, slo, args.duration, batches)
    fixed_ok = [s["mean_quality"] for c, s in summary.items() if c != "adaptive" and s["slo_attainment"] >= 0.99]
    adaptive = summary.get("adaptive", {})
    final = {"slo_attainment": adaptive.get("slo_attainment"), "mean_quality": adaptive.get("mean_quality"),
             "best_fixed_quality_meeting_slo": max(fixed_ok) if fixed_ok else None}
    final = {k: None if v is None else round(v, 6) for k, v in final.items()}
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / args.out if args.out else unused(RESULTS / f"serve-{date.today().isoformat()}",
                                                      (".json", ".md", ".png"))
    command = "python -m benchmarks.serve " + " ".join(argv if argv is not None else sys.argv[1:])
    variants = {f"w{w}": {"accuracy": v["accuracy"]} for w, v in record["widths"].items()}
    doc = {"date": date.today().isoformat(), "machine": host, "command": command.strip(),
           "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
           "variants": variants,
           "slicing": {k: record[k] for k in ("weights_sha256", "hidden", "train", "test_samples")},
           "summary": summary, "result": final, "seconds": time.perf_counter() - began,
           "requests": {c: [[[round(s.at, 4), None if s.latency is None else round(s.latency, 5), s.status, s.variant,
                              None if s.server_latency is None else round(s.server_latency, 5)]
                             for s in sent] for sent in rounds] for c, rounds in runs.items()}}
    stem.with_suffix(".json").write_text(json.dumps(doc, indent=1))
    text = table(summary, doc, args)
    stem.with_suffix(".md").write_text(text)
    plot(runs, slo, args, stem.with_suffix(".png"))
    print(text)
    print(json.dumps(final))
    return 0


if __name__ == "__main__":
    sys.exit(main())
