"""Figures, table and plot for benchmarks/serve.py (kept apart so the driver stays short)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np

from benchmarks.serve_load import Sent, rate_at


def summarize(runs: dict[str, list[list[Sent]]], slo: float, duration: float, batches: dict[str, int]) -> dict:
    """Per configuration, pooled over rounds; see benchmarks/serve.py for the definitions."""
    out = {}
    for config, rounds in runs.items():
        sent = [s for r in rounds for s in r]
        ok = [s for s in sent if s.status == 200]
        latencies = np.array([s.latency for s in ok]) if ok else np.array([np.inf])
        mix = Counter(s.variant for s in ok)
        out[config] = {
            "sent": len(sent),
            "slo_attainment": sum(s.latency <= slo for s in ok) / max(len(sent), 1),
            "mean_quality": float(np.mean([s.quality for s in ok])) if ok else 0.0,
            "served_accuracy": sum(s.correct for s in ok) / max(sum(s.rows for s in ok), 1),
            "throughput_rps": len(ok) / (duration * len(rounds)),
            "p50_ms": float(np.percentile(latencies, 50) * 1e3),
            "p99_ms": float(np.percentile(latencies, 99) * 1e3),
            "refused_503": sum(s.status == 503 for s in sent),
            "no_answer": sum(s.status == 0 for s in sent),
            "other_errors": sum(s.status not in (0, 200, 503) for s in sent),
            "requests_per_batch": len(ok) / batches[config] if batches.get(config) else None,
            "variant_mix": {k: v / len(ok) for k, v in sorted(mix.items())},
        }
    return out


def table(summary: dict, doc: dict, args) -> str:
    lines = [f"# graphopt serve under a swinging load ({doc['date']})", "",
             (f"Machine: {doc['machine']['cpu']}, {doc['machine']['cores']} cores (shared with other jobs; "
             f"load average at start {doc['machine']['loadavg_at_start'][0]:.2f})."),
             f"Command: `{doc['command']}`", "",
             f"Load: open loop, Poisson, rate {args.low:g} -> {args.high:g} -> {args.low:g} requests/s over "
             f"{args.duration:g} s per run, {args.rows} digits per request, {args.rounds} rounds in rotated order. "
             f"SLO {args.slo_ms:g} ms. Variants (quality = held-out accuracy): "
             + ", ".join(f"{k} {v['accuracy']:.4f}" for k, v in doc["variants"].items()) + ".", "",
             ("| config | sent | SLO attainment | mean quality | served accuracy | throughput req/s | p50 ms | "
             "p99 ms | 503 | no answer | req/batch | variant mix |"),
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for config, s in summary.items():
        mix = " ".join(f"{k}:{v:.0%}" for k, v in s["variant_mix"].items())
        per_batch = f"{s['requests_per_batch']:.2f}" if s["requests_per_batch"] else "-"
        lines.append(f"| {config} | {s['sent']} | {s['slo_attainment']:.4f} | {s['mean_quality']:.4f} | "
                     f"{s['served_accuracy']:.4f} | {s['throughput_rps']:.1f} | {s['p50_ms']:.1f} | "
                     f"{s['p99_ms']:.1f} | {s['refused_503']} | {s['no_answer']} | {per_batch} | {mix} |")
    lines += ["", f"Result: `{json.dumps(doc['result'])}`", "",
              ("Notes: the server ran with TVM_NUM_THREADS=1; the machine was shared with other jobs, so "
              "absolute latencies are noisy. Quality is held-out accuracy on "
              f"{doc['slicing'].get('test_samples', 540)} digits: one digit is "
              f"{1 / doc['slicing'].get('test_samples', 540):.4f} of accuracy, so the gaps between the widest "
              "variants are a few digits. JSON: per-request records [scheduled s, latency s, status, variant, "
              "server latency s] under `requests`."), ""]
    return "\n".join(lines)


def _binned(sent: list[Sent], edges: np.ndarray, value, reduce=np.mean) -> np.ndarray:
    """Per time bin (by scheduled send time): `reduce` of the non-None `value`s; NaN if none."""
    out = np.full(len(edges) - 1, np.nan)
    idx = np.digitize([s.at for s in sent], edges) - 1
    for b in range(len(out)):
        vals = [v for v in (value(s) for s, i in zip(sent, idx) if i == b) if v is not None]
        if vals:
            out[b] = reduce(vals)
    return out


def plot(runs: dict[str, list[list[Sent]]], slo: float, args, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    edges = np.arange(0.0, args.duration + 1e-9, 1.0)
    mids = (edges[:-1] + edges[1:]) / 2
    fig, axes = plt.subplots(4, 1, figsize=(9, 11), sharex=True)
    t = np.linspace(0, args.duration, 200)
    axes[0].plot(t, rate_at(t, args.low, args.high, args.duration), color="black")
    axes[0].set_ylabel("offered load (req/s)")
    p99 = lambda v: np.percentile(v, 99)
    for config, rounds in runs.items():
        sent = [s for r in rounds for s in r]
        style = {"linewidth": 2.5, "color": "black"} if config == "adaptive" else {"linewidth": 1}
        axes[1].plot(mids, _binned(sent, edges, lambda s: float(s.status == 200 and s.latency <= slo)),
                     label=config, **style)
        axes[2].plot(mids, _binned(sent, edges, lambda s: s.latency * 1e3 if s.status == 200 else None, p99),
                     label=config, **style)
        axes[3].plot(mids, _binned(sent, edges, lambda s: s.quality), label=config, **style)
    axes[1].set_ylabel("fraction within SLO")
    axes[2].axhline(slo * 1e3, color="red", linestyle="--", label="SLO")
    axes[2].set_yscale("log")
    axes[2].set_ylabel("p99 latency of answers (ms)")
    axes[3].set_ylabel("mean quality served")
    axes[3].set_xlabel("seconds into the run (1 s bins, rounds pooled)")
    axes[1].legend(fontsize=8, ncol=3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def range_summary(runs: dict[str, list[list[Sent]]], lones: dict[str, list[list[Sent]]],
                  sizes: dict[str, dict[int, int]], slo: float, duration: float) -> dict:
    """benchmarks.serve --range: the ramp's figures (as summarize), plus the lone requests' latency
    and the batch sizes run during the ramps."""
    batches = {c: sum(s.values()) for c, s in sizes.items()}
    out = summarize(runs, slo, duration, batches)
    for config, rounds in lones.items():
        ok = [s for r in rounds for s in r if s.status == 200]
        client = np.array([s.latency for s in ok]) * 1e3 if ok else np.array([np.inf])
        server = np.array([s.server_latency for s in ok]) * 1e3 if ok else np.array([np.inf])
        hist = dict(sorted(sizes.get(config, {}).items()))
        out[config].update({
            "lone_sent": sum(len(r) for r in rounds), "lone_ok": len(ok),
            "lone_p50_ms": float(np.percentile(client, 50)), "lone_p90_ms": float(np.percentile(client, 90)),
            "lone_server_p50_ms": float(np.percentile(server, 50)),
            "lone_agreement": sum(s.correct for s in ok) / max(sum(s.rows for s in ok), 1),
            "batch_sizes": hist,
            "mean_batch_size": sum(k * n for k, n in hist.items()) / max(sum(hist.values()), 1),
        })
    return out


def range_table(summary: dict, doc: dict, args) -> str:
    """Markdown for benchmarks.serve --range."""
    host = doc["machine"]
    names = {"var": f"var: range artifact, variable batch 1..{args.range_max}", "b1": "b1: fixed batch 1",
             "b32": f"b32: fixed batch {args.range_max} (padded)"}
    lines = [f"# graphopt serve: variable batch (range artifact) vs fixed batches ({doc['date']})", "",
             (f"Machine: {host['cpu']}, {host['cores']} cores, a shared VM (load average at start "
              f"{host['loadavg_at_start'][0]:.2f}, at end {host.get('loadavg_at_end', [float('nan')])[0]:.2f})."),
             f"Command: `{doc['command']}`", "",
             (f"Model: {doc['artifacts']['model']} (graphopt.examples.range_models), untrained; each request "
              f"{args.rows} image(s) 3x32x32 (float16 .npy). Load: open loop, Poisson, {args.low:g} -> "
              f"{args.high:g} -> {args.low:g} requests/s over {args.duration:g} s per run, {args.rounds} rounds "
              f"in rotated order, SLO {args.slo_ms:g} ms (the ramp of benchmarks.serve's default run). "
              f"Lone: {args.lone} requests per configuration and round, one at a time, 50 ms apart, "
              "configurations interleaved in a random order per cycle, before each round's ramps. Each "
              "configuration has its own `graphopt serve` holding only its variant (TVM_NUM_THREADS=1)."), "",
             ("| config | lone p50 ms | lone p90 ms | lone p50 server ms | ramp sent | SLO attainment | "
              "ramp p50 ms | ramp p99 ms | 503 | no answer | argmax = ORT | mean batch | batch sizes (size:count) |"),
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for config, s in summary.items():
        hist = " ".join(f"{k}:{n}" for k, n in s["batch_sizes"].items())
        lines.append(f"| {names.get(config, config)} | {s['lone_p50_ms']:.2f} | {s['lone_p90_ms']:.2f} | "
                     f"{s['lone_server_p50_ms']:.2f} | {s['sent']} | {s['slo_attainment']:.4f} | "
                     f"{s['p50_ms']:.2f} | {s['p99_ms']:.2f} | {s['refused_503']} | {s['no_answer']} | "
                     f"{s['served_accuracy']:.4f} | {s['mean_batch_size']:.2f} | {hist} |")
    learnt = doc.get("learnt_service_s", {}).get("var", {})
    kernels = doc["artifacts"].get("kernels", {})
    lines += ["", f"Result: `{json.dumps(doc['result'])}`", "",
              "Kernels per schedule rule (plan.json): " + "; ".join(f"{k}: {v}" for k, v in kernels.items())
              + f". Artifacts compiled {doc['artifacts'].get('compiled_at', '?')} from "
              f"`{doc['artifacts'].get('compiled_from', '?')}`.", "",
              "Server start-up (full-batch times measured in the server, TVM_NUM_THREADS=1):", ""]
    lines += [f"    {line}" for line in doc.get("server_said", []) if line.startswith("variant")]
    lines += ["", "Batch times the controller learnt for `var` (ms, by batch size; sizes that ran): "
              + (", ".join(f"{k}: {v * 1e3:.2f}" for k, v in sorted(learnt.items(), key=lambda kv: int(kv[0])))
                 or "none"), ""]
    return "\n".join(lines)
