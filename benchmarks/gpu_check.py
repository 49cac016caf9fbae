"""One prepared GPU check: compile here, carry a bundle, measure there in minutes.

Here (the compiler, no GPU):
    python -m benchmarks.gpu_check prepare --out benchmarks/gpu_prepared [--tiny]
    python -m benchmarks.gpu_check run benchmarks/gpu_prepared --dry-run
There (numpy, Python 3.12, torch, a GPU; no TVM, no graphopt install):
    bash benchmarks/gpu_check.sh benchmarks/gpu_prepared      (writes $OUT/gpu-check.json)

What `run` measures, each in a fresh process (benchmarks/gpu_check_device.py):
  correctness   every artifact's outputs vs the CPU reference (max rel. error < 1e-3, fp32;
                TVM's dlight kernels use no tensor cores for fp32, PyTorch's TF32 is turned off)
  memory        device bytes a first run allocates (cudaMemGetInfo before/after, less outputs):
                graphopt's arena vs TVM's stock plan on identical kernels, and vs PyTorch's
                caching allocator peak (max_memory_allocated) on the same graph and weights
  latency       CUDA events, warm-up, A/B interleaved, median of many
  training      one step at 0.66 x the no-swap peak: measured overhead vs the plan's prediction,
                and the swap engine's event timeline: how much copy time compute hid
Prints one table, writes one JSON object. Targets (issue 6): outputs match; arena <= 0.80 x TVM
stock and <= 0.87 x PyTorch; swap overhead <= 1%.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEVICE_SCRIPT = HERE / "gpu_check_device.py"
TOLERANCE = 1e-3
STEP_TIMEOUT = 120  # seconds per measurement process at most
RUN_BUDGET = 270  # seconds for all of them: a step that would start later is skipped (and reported), so the
# JSON is always written inside gpu_check.sh's 290 s and the device run's 5 minutes
REQUIRED = ("bundle/bundle.json", "bundle/run.py", "ref/infer.npz", "torch/graph.json", "torch/weights.npz")


def gpu_card() -> dict | None:
    """nvidia-smi's view of GPU 0, or None where there is no GPU (or no driver)."""
    if shutil.which("nvidia-smi") is None:
        return None
    done = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0 or not done.stdout.strip():
        return None
    name, driver, memory = (x.strip() for x in done.stdout.strip().splitlines()[0].split(","))
    return {"card": name, "driver": driver, "memory": memory}


def check_prepared(prepared: Path) -> dict:
    """prepared.json plus a check that every file the run reads is there."""
    info_path = prepared / "prepared.json"
    if not info_path.is_file():
        raise SystemExit(f"error: {prepared} is not a gpu_check preparation (no prepared.json); run `prepare` first")
    info = json.loads(info_path.read_text())
    missing = [f for f in REQUIRED if not (prepared / f).is_file()]
    artifacts = json.loads((prepared / "bundle" / "bundle.json").read_text())["artifacts"] if not missing else {}
    if "train" in info:
        missing += [f for f in ("ref/train.npz",) if not (prepared / f).is_file()]
    if missing:
        raise SystemExit(f"error: {prepared} lacks {', '.join(missing)}")
    info["bundled"] = sorted(artifacts)
    return info


def bundle_loads(prepared: Path) -> list[str]:
    """In a child with only the bundle: import the runtime, verify every artifact's hashes."""
    code = ("import sys, importlib.util as u\n"
            f"spec = u.spec_from_file_location('run', {str(prepared / 'bundle' / 'run.py')!r})\n"
            "m = u.module_from_spec(spec); spec.loader.exec_module(m); info = m.activate(m.Path(spec.origin).parent)\n"
            "import graphopt.runtime, graphopt.runtime.cuda_swap\n"
            "from graphopt.artifact import load_manifest\n"
            "for name in sorted(info['artifacts']):\n"
            "    man = load_manifest(m.Path(spec.origin).parent / 'artifacts' / name)\n"
            "    print(name, man['target']['kind'], man['target'].get('arch', ''), man['id'][:12])\n")
    done = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"error: the bundle does not load: {(done.stderr.strip().splitlines() or ['?'])[-1]}")
    return done.stdout.strip().splitlines()


def torch_graph_summary(prepared: Path) -> str:
    """The exported graph's ops, all implemented by the PyTorch baseline, or SystemExit."""
    sys.path.insert(0, str(HERE))
    from gpu_check_torch import SUPPORTED

    spec = json.loads((prepared / "torch" / "graph.json").read_text())
    ops = sorted({n["op"] for n in spec["nodes"]})
    unknown = [op for op in ops if op not in SUPPORTED]
    if unknown:
        raise SystemExit(f"error: the torch baseline lacks {', '.join(unknown)}")
    has_torch = importlib.util.find_spec("torch") is not None
    return f"{len(spec['nodes'])} nodes ({', '.join(ops)}); torch {'installed' if has_torch else 'not installed here'}"


def plan_steps(info: dict) -> list[tuple[str, list[str]]]:
    """The measurement processes, in order; training only when it was prepared."""
    steps = [("memory", ["infer"]), ("memory", ["infer_stock"]), ("latency", ["infer", "infer_stock"])]
    if "train_swap" in info["bundled"]:
        steps += [("memory", ["train_noswap"]), ("memory", ["train_swap"]), ("train", ["train_noswap", "train_swap"])]
    steps.append(("torch", []))
    return steps


def measure(prepared: Path, mode: str, args: list[str], timeout: float = STEP_TIMEOUT) -> dict:
    command = [sys.executable, str(DEVICE_SCRIPT), str(prepared), mode, *args]
    start = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1],
                "stderr_tail": done.stderr[-1500:], "seconds": round(time.perf_counter() - start, 1)}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _get(d: dict, *keys):
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def _ratio(a, b):
    return a / b if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b else None


def summarize(info: dict, card: dict, results: dict) -> dict:
    """The issue's JSON fields from the measurements; None where a part did not run."""
    mem = {n: results.get(f"memory {n}", {}) for n in ("infer", "infer_stock", "train_noswap", "train_swap")}
    torch = results.get("torch", {})
    train = results.get("train train_noswap train_swap", {})
    errors = [mem["infer"].get("max_rel_error"), mem["infer_stock"].get("max_rel_error")]
    if "train" in info:
        errors += [mem["train_noswap"].get("max_rel_error"), mem["train_swap"].get("max_rel_error")]
    known = [e for e in errors if e is not None]
    arena, stock = mem["infer"].get("run_bytes_less_outputs"), mem["infer_stock"].get("run_bytes_less_outputs")
    torch_peak = torch.get("peak_less_outputs")
    t_noswap, t_swap = _get(train, "train_noswap", "median_ms"), _get(train, "train_swap", "median_ms")
    tinfo = info.get("train", {})
    predicted = _ratio(tinfo.get("predicted_step_seconds"), tinfo.get("predicted_noswap_step_seconds"))
    hidden = [o.get("hidden_fraction") for o in train.get("overlap", []) if o.get("hidden_fraction") is not None]
    return {
        "card": card["card"], "driver": card["driver"], "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "outputs_match": bool(known) and len(known) == len(errors) and max(known) < TOLERANCE,
        "max_rel_error": max(known) if known else None,
        "torch_outputs_match": torch.get("max_rel_error") is not None and torch["max_rel_error"] < TOLERANCE,
        "arena_bytes": arena, "tvm_stock_bytes": stock, "torch_peak_bytes": torch_peak,
        "arena_bytes_planned": _get(info, "infer", "arena_bytes"),
        "tvm_stock_bytes_planned": _get(info, "infer", "tvm_stock_bytes"),
        "arena_vs_stock": _ratio(arena, stock), "arena_vs_torch": _ratio(arena, torch_peak),
        "torch_max_reserved_bytes": torch.get("max_reserved_bytes"),
        "latency_ms": {"graphopt": _get(results, "latency infer infer_stock", "infer", "median_ms"),
                       "tvm_stock": _get(results, "latency infer infer_stock", "infer_stock", "median_ms"),
                       "torch": torch.get("median_ms")},
        "swap_budget_ratio": _ratio(tinfo.get("budget_bytes"), tinfo.get("noswap_arena_bytes")),
        "swap_device_bytes_ratio": _ratio(mem["train_swap"].get("run_bytes_less_outputs"),
                                          mem["train_noswap"].get("run_bytes_less_outputs")),
        "swap_overhead_measured": (t_swap / t_noswap - 1) if t_swap and t_noswap else None,
        "swap_overhead_predicted": predicted - 1 if predicted is not None else None,
        "swap_hidden_fraction": min(hidden) if hidden else None,
        "step_ms": {"noswap": t_noswap, "swap": t_swap},
        "errors": {k: v["error"] for k, v in results.items() if "error" in v},
        "prepared": {k: info.get(k) for k in ("created", "infer", "train", "failed", "machine")},
        "measurements": results,
    }


def _fmt_bytes(n) -> str:
    return f"{n / 2**20:9.2f} MiB" if isinstance(n, (int, float)) else "        n/a"


def _fmt(x, spec: str = ".4f") -> str:
    return format(x, spec) if isinstance(x, (int, float)) else "n/a"


def table(s: dict) -> str:
    rows = [
        ("card", s["card"]),
        ("outputs match (rel < 1e-3)", f"{s['outputs_match']} (max {_fmt(s['max_rel_error'], '.2e')})"),
        ("arena (measured)", _fmt_bytes(s["arena_bytes"]) + f"   planned {_fmt_bytes(s['arena_bytes_planned'])}"),
        ("TVM stock (measured)", _fmt_bytes(s["tvm_stock_bytes"]) + f"   planned {_fmt_bytes(s['tvm_stock_bytes_planned'])}"),
        ("PyTorch peak allocated", _fmt_bytes(s["torch_peak_bytes"]) + f"   outputs match {s['torch_outputs_match']}"),
        ("arena / TVM stock  (<= 0.80)", _fmt(s["arena_vs_stock"], ".3f")),
        ("arena / PyTorch    (<= 0.87)", _fmt(s["arena_vs_torch"], ".3f")),
        ("latency ms graphopt/stock/torch", " / ".join(_fmt(v, ".3f") for v in s["latency_ms"].values())),
        ("swap budget / no-swap peak", _fmt(s["swap_budget_ratio"], ".3f")),
        ("swap overhead measured (<= 1%)", _fmt(s["swap_overhead_measured"], ".2%")),
        ("swap overhead predicted", _fmt(s["swap_overhead_predicted"], ".2%")),
        ("copy time hidden by compute", _fmt(s["swap_hidden_fraction"], ".1%")),
    ]
    width = max(len(k) for k, _ in rows)
    lines = [f"{k:<{width}}  {v}" for k, v in rows]
    lines += [f"ERROR {k}: {v}" for k, v in s["errors"].items()]
    return "\n".join(lines)


def cmd_run(args) -> int:
    prepared = args.prepared.resolve()
    info = check_prepared(prepared)
    card = gpu_card()
    if args.dry_run or card is None:
        loaded = bundle_loads(prepared)
        print(f"prepared {info.get('created')} on {info.get('machine')}; failed parts: {info.get('failed') or 'none'}")
        for line in loaded:
            print(f"  artifact {line} (hashes verified, runtime imports from the bundle)")
        for mode, names in plan_steps(info):
            print(f"  would measure: {mode} {' '.join(names)}")
        print(f"  torch graph: {torch_graph_summary(prepared)}")
        if card is None:
            probe = measure(prepared, "memory", ["infer"])  # runs up to the GPU boundary
            print(f"  device step probe (memory infer): {probe.get('error', 'ran')}")
            print("no GPU: nothing measured (nvidia-smi absent or found no device)")
        return 0 if args.dry_run else 3
    results: dict = {}
    path = Path(args.out or os.environ.get("OUT") or ".") / "gpu-check.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + RUN_BUDGET
    for mode, names in plan_steps(info):
        key = " ".join([mode, *names])
        left = deadline - time.monotonic()
        results[key] = measure(prepared, mode, names, min(STEP_TIMEOUT, left)) if left > 10 else \
            {"error": f"skipped: the {RUN_BUDGET} s budget was spent"}
        print(f"  {key}: {'ERROR ' + results[key]['error'] if 'error' in results[key] else 'ok'}", flush=True)
        _write(path, summarize(info, card, results))  # a partial result survives a kill
    summary = _write(path, summarize(info, card, results))
    print(table(summary))
    print(f"wrote {path}")
    return 0 if not summary["errors"] else 1


def _write(path: Path, summary: dict) -> dict:
    summary["command"] = " ".join(sys.argv)
    summary["host"] = f"{platform.node()} Python {platform.python_version()}"
    path.write_text(json.dumps(summary, indent=1))
    return summary


def cmd_prepare(args) -> int:
    from benchmarks.gpu_check_prepare import prepare

    record = prepare(args.out, tiny=args.tiny, python_versions=tuple(args.python or ("3.12",)),
                     wheel_dir=args.wheel_dir, time_limit=args.time_limit)
    print(json.dumps({k: record.get(k) for k in ("infer", "train", "bundle", "failed", "total_bytes")}, indent=1))
    print(f"prepared {args.out} ({record['total_bytes'] / 2**20:.1f} MiB)")
    return 1 if record["failed"] else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gpu_check", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="compile the CUDA artifacts, references and bundle (here)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--tiny", action="store_true", help="tiny models (tests)")
    p.add_argument("--python", action="append", default=None, metavar="3.X", help="bundle for this Python too")
    p.add_argument("--wheel-dir", type=Path, default=None)
    p.add_argument("--time-limit", type=float, default=10.0)
    p.set_defaults(handler=cmd_prepare)
    r = sub.add_parser("run", help="measure on the GPU (or --dry-run: check everything that needs no GPU)")
    r.add_argument("prepared", type=Path)
    r.add_argument("--dry-run", action="store_true")
    r.add_argument("--out", type=Path, default=None, help="where gpu-check.json goes (default $OUT, else .)")
    r.set_defaults(handler=cmd_run)
    args = parser.parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
