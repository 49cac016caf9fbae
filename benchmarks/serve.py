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

With --range (issue #22 item 5, variable batch): one untrained CNN
(graphopt.examples.range_models.batch_cnn, 3x32x32 -> 10, the model of benchmarks.shape_range)
compiled three ways: a range artifact `x=1..32x3x32x32` served with a variable batch ("var":
a batch runs at the size queued), a fixed batch-1 artifact ("b1": no batching) and a fixed
batch-32 artifact ("b32": every batch padded to 32). Each request is --rows images (default 1)
of seeded random pixels as float16 .npy; "served accuracy" is the argmax agreement with ONNX
Runtime on the same inputs. Each configuration has its own `graphopt serve` holding only its
variant and runs the same load ramp; before each round's ramps, --lone requests per
configuration are sent one at a time (each after the previous answer and a 50 ms pause),
configurations interleaved in a random order per cycle; their p50 is "a lone request at low
load". Also reported: the batch sizes run
during the ramps and the controller's learnt per-size times (from /metrics). Results under
benchmarks/results/serve-range-DATE.*.

    python -m benchmarks.serve --range [--fresh] [--range-max 32] [--lone 40] [--slo-ms MS] ...
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
from benchmarks.serve_load import Sent, arrivals, drive, lone, payloads
from benchmarks.serve_report import plot, range_summary, range_table, summarize, table


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.serve", description=__doc__.splitlines()[0])
    p.add_argument("--work-dir", type=Path, default=Path("/tmp/graphopt-serve-bench"))
    p.add_argument("--fresh", action="store_true", help="retrain and recompile the variants")
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--widths", default="64,128,256,512")
    p.add_argument("--steps", type=int, default=1500, help="training steps")
    p.add_argument("--batch", type=int, default=2048, help="rows per run (the artifacts' batch dimension)")
    p.add_argument("--rows", type=int, default=None, help="rows per request (default 1024 digits; --range: 1 image)")
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
    p.add_argument("--range", action="store_true", help="variable batch: a range artifact beside fixed batch 1 and max")
    p.add_argument("--range-max", type=int, default=32, help="--range: the batch range 1..N and the fixed batch N")
    p.add_argument("--lone", type=int, default=40, help="--range: lone requests per configuration and round")
    args = p.parse_args(argv)
    if args.rows is None:
        args.rows = 1 if args.range else 1024
    return args


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


def slice_variants(record: dict) -> list[str]:
    """`--variant` arguments of the sliced MLP's widths (quality = accuracy)."""
    return [f"--variant=w{w}={v['artifact']}:{v['accuracy']:.6f}" for w, v in record["widths"].items()]


def start_server(variants: list[str], slo_ms: float, headroom: float,
                 said: list[str] | None = None) -> tuple[subprocess.Popen, str]:
    """`graphopt serve` on a free loopback port; its start-up lines are appended to `said`."""
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
        if said is not None:
            said.append(line.rstrip())
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


RANGE_CONFIGS = ("var", "b1", "b32")  # each pins its variant: variable batch, fixed batch 1, fixed batch max


def build_range_artifacts(args) -> dict:
    """The CNN compiled as a range artifact (batch 1..max) and fixed at batch 1 and batch max;
    cached in --work-dir/range (--fresh rebuilds)."""
    import hashlib

    import onnx

    from graphopt.compiler import CompileOptions, compile_model
    from graphopt.examples.range_models import batch_cnn
    from graphopt.frontend.ranges import DimRange

    root = args.work_dir / "range"
    model = batch_cnn(size=32, channels=(16, 32))
    digest = hashlib.sha256(model.SerializeToString()).hexdigest()
    record_path = root / "record.json"
    if record_path.is_file() and not args.fresh:
        record = json.loads(record_path.read_text())
        if record["model_sha256"] == digest and record["range_max"] == args.range_max:
            print(f"reusing range artifacts in {root} (--fresh rebuilds)", file=sys.stderr)
            return {**record, "kernels": {n: kernel_rules(a) for n, a in record["artifacts"].items()}}
    root.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(root / "model.onnx"))
    shapes = {"var": (DimRange(1, args.range_max), 3, 32, 32), "b1": (1, 3, 32, 32), "b32": (args.range_max, 3, 32, 32)}
    arts, seconds = {}, {}
    for name, shape in shapes.items():
        began = time.perf_counter()
        arts[name] = str(compile_model(model, root / name, CompileOptions(input_shapes={"x": shape})).artifact)
        seconds[name] = time.perf_counter() - began
        print(f"compiled {name} x={'x'.join(map(str, shape))} in {seconds[name]:.1f} s", file=sys.stderr)
    record = {"model": "batch_cnn(size=32, channels=(16, 32))", "model_sha256": digest, "model_path":
              str(root / "model.onnx"), "range_max": args.range_max, "artifacts": arts, "compile_seconds": seconds,
              "compiled_from": _source_state(), "compiled_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    record_path.write_text(json.dumps(record, indent=1))
    return {**record, "kernels": {n: kernel_rules(a) for n, a in arts.items()}}


def kernel_rules(art: str) -> dict[str, int]:
    """Kernels per schedule rule of an artifact (plan.json): what the latency figures depend on,
    e.g. whether the range artifact's matmul/conv kernels got the GEMM rule or the generic one."""
    plan = json.loads((Path(art) / "plan.json").read_text())
    ranged = (plan.get("shape_range") or {}).get("kernels")
    return (ranged or plan.get("schedules") or {}).get("by_rule", {})


def _source_state() -> str:
    """`git describe --always --dirty` of the checkout that compiled the artifacts (dirty: the
    kernels may include uncommitted work)."""
    try:
        done = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True, timeout=10, check=False,
                              cwd=Path(__file__).parent)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return done.stdout.strip() or "unknown"


def range_payloads(model_path: str, rows: int, count: int, seed: int) -> list[tuple[bytes, object]]:
    """`count` .npy bodies of `rows` random images (float16) with ONNX Runtime's argmax as labels."""
    import io

    import numpy as np
    import onnxruntime as ort

    session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        images = rng.standard_normal((rows, 3, 32, 32)).astype(np.float16)
        buffer = io.BytesIO()
        np.save(buffer, images)
        labels = session.run(None, {"x": images.astype(np.float32)})[0].argmax(axis=1)
        out.append((buffer.getvalue(), labels))
    return out


def size_counts(base_url: str) -> dict[str, dict[int, int]]:
    """Per variant {batch size run: batches} from /metrics."""
    import httpx

    text = httpx.get(f"{base_url}/metrics", timeout=10).text
    counts: dict[str, dict[int, int]] = {}
    pattern = r'graphopt_serve_batch_size_total\{variant="([^"]+)",size="(\d+)"\} (\d+)'
    for name, size, value in re.findall(pattern, text):
        counts.setdefault(name, {})[int(size)] = int(value)
    return counts


def learnt_sizes(base_url: str) -> dict[str, dict[int, float]]:
    """Per variable variant {batch size: predicted seconds} the controller learnt (/metrics)."""
    import httpx

    text = httpx.get(f"{base_url}/metrics", timeout=10).text
    pattern = r'graphopt_serve_size_service_seconds\{variant="([^"]+)",size="(\d+)"\} ([0-9.e+-]+)'
    table: dict[str, dict[int, float]] = {}
    for name, size, value in re.findall(pattern, text):
        table.setdefault(name, {})[int(size)] = float(value)
    return table


def _sizes_during(before: dict, after: dict) -> dict[int, int]:
    """Batches per size run between two /metrics readings, all variants together."""
    out: dict[int, int] = {}
    for name, sizes in after.items():
        for size, n in sizes.items():
            if n - before.get(name, {}).get(size, 0):
                out[size] = out.get(size, 0) + n - before.get(name, {}).get(size, 0)
    return out


def run_range(args, servers: dict[str, str], bodies: list) -> tuple[dict, dict, dict]:
    """(ramp runs, lone runs, batch sizes of the ramps) per configuration (name -> its server's
    URL, the variant pinned by name), rounds rotated."""
    schedule = arrivals(args.low, args.high, args.duration, args.duration, args.seed, args.max_requests)
    configs = list(servers)
    runs: dict[str, list[list[Sent]]] = {c: [] for c in configs}
    lones: dict[str, list[list[Sent]]] = {c: [] for c in configs}
    sizes: dict[str, dict[int, int]] = {c: {} for c in configs}
    timeout = max(10 * args.slo_ms / 1e3, 5.0)
    for config in configs:  # warm-up, not counted
        asyncio.run(drive(servers[config], schedule[:20], bodies, config, 10.0))
    for r in range(args.rounds):
        time.sleep(1.0)  # let the queues drain
        for config, sent in asyncio.run(lone(servers, bodies, args.lone, 0.05, timeout, args.seed + r)).items():
            lones[config].append(sent)
        for config in configs[r % len(configs):] + configs[:r % len(configs)]:
            time.sleep(1.0)
            before = size_counts(servers[config])
            sent = asyncio.run(drive(servers[config], schedule, bodies, config, timeout))
            for size, n in _sizes_during(before, size_counts(servers[config])).items():
                sizes[config][size] = sizes[config].get(size, 0) + n
            runs[config].append(sent)
            ok = sum(s.status == 200 and s.latency <= args.slo_ms / 1e3 for s in sent)
            print(f"round {r + 1} {config}: {len(sent)} sent, {ok / len(sent):.4f} within SLO", file=sys.stderr)
    return runs, lones, sizes


def start_range_servers(args, record: dict, said: list[str]) -> tuple[list[subprocess.Popen], dict[str, str]]:
    """One `graphopt serve` per configuration, holding only its variant: what one variant's
    server would see, with no other variant's runs between its own."""
    procs, servers = [], {}
    try:
        for name in [c for c in RANGE_CONFIGS if not args.only or c in args.only.split(",")]:
            proc, servers[name] = start_server([f"--variant={name}={record['artifacts'][name]}"], args.slo_ms,
                                               args.headroom, said)
            procs.append(proc)
    except Exception:
        _stop(procs)
        raise
    return procs, servers


def _stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.wait(timeout=30)


def main_range(args, argv: list[str] | None, began: float, host: dict) -> int:
    """--range: the variable-batch artifact beside fixed batch 1 and batch max (module docstring)."""
    record = build_range_artifacts(args)
    bodies = range_payloads(record["model_path"], args.rows, 16, args.seed)
    said: list[str] = []
    procs, servers = start_range_servers(args, record, said)
    try:
        runs, lones, sizes = run_range(args, servers, bodies)
        learnt = {c: learnt_sizes(url).get(c, {}) for c, url in servers.items()}
    finally:
        _stop(procs)
    host["loadavg_at_end"] = os.getloadavg()
    summary = range_summary(runs, lones, sizes, args.slo_ms / 1e3, args.duration)
    final = {"lone_p50_ms": {c: round(s["lone_p50_ms"], 3) for c, s in summary.items()},
             "slo_attainment": {c: round(s["slo_attainment"], 6) for c, s in summary.items()}}
    if "var" in summary and "b1" in summary:
        for key in ("lone_p50_ms", "lone_server_p50_ms"):  # as the client sees it; the server's own part
            final[f"{key[:-3]}_var_over_b1"] = round(summary["var"][key] / summary["b1"][key], 3)
    stem = RESULTS / args.out if args.out else unused(RESULTS / f"serve-range-{date.today().isoformat()}",
                                                      (".json", ".md", ".png"))
    command = "python -m benchmarks.serve " + " ".join(argv if argv is not None else sys.argv[1:])
    doc = {"date": date.today().isoformat(), "machine": host, "command": command.strip(), "server_said": said,
           "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
           "artifacts": record, "summary": summary, "learnt_service_s": learnt, "result": final,
           "seconds": time.perf_counter() - began,
           "requests": {c: [[[round(s.at, 4), None if s.latency is None else round(s.latency, 5), s.status,
                              None if s.server_latency is None else round(s.server_latency, 5)]
                             for s in sent] for sent in rounds] for c, rounds in runs.items()}}
    RESULTS.mkdir(exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(doc, indent=1))
    text = range_table(summary, doc, args)
    stem.with_suffix(".md").write_text(text)
    plot(runs, args.slo_ms / 1e3, args, stem.with_suffix(".png"))
    print(text)
    print(json.dumps(final))
    return 0


def machine() -> dict:
    from benchmarks.machine import cpu_name

    return {"cpu": cpu_name(), "cores": os.cpu_count(), "loadavg_at_start": os.getloadavg()}


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    began = time.perf_counter()
    host = machine()
    if args.range:
        return main_range(args, argv, began, host)
    record = build_variants(args)
    proc, base_url = start_server(slice_variants(record), args.slo_ms, args.headroom)
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
