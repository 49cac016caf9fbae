"""Real models with LSTM/GRU layers: graphopt's default compile against ONNX Runtime.

The models come from PyPI wheels, fetched with `pip download --no-deps` into a cache
outside the repository (never committed): silero-vad 6.2.3 (its LSTM models),
ddddocr 1.6.1 (common.onnx, a CNN + bidirectional LSTM), openwakeword 0.4.0 (its
melspectrogram and embedding models) and arabic-name-romanizer 0.2.0 (a GRU encoder
and its decoder). Per model, with the input shapes pinned below:

  1. compile with graphopt's default options (native LSTM/GRU/RNN; a node TVM cannot
     import becomes an onnxruntime fallback kernel): compile seconds, the fallback
     kernels' op types (what still blocks a fully native compile), native recurrent nodes;
  2. run both on the same random non-zero inputs and compare every output
     (rtol 1e-3, atol 1e-4);
  3. time both with their default thread counts: warm-up, then interleaved rounds, each
     turn settled first (`_timing`), medians and the quartiles of per-round ratios.

A model that fails to compile or run is recorded with its one-line error, not skipped.

    python -m benchmarks.recurrent_models [--cache DIR] [--models a,b] [--budget SECONDS] [--out STEM]

Writes benchmarks/results/recurrent-models-DATE.{json,md} (first free -N suffix unless --out).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import onnx
import onnx.numpy_helper

from benchmarks.machine import cpu_name
from benchmarks.outputs import RESULTS, unused
from benchmarks.timing import plan_repeats

DEFAULT_CACHE = Path.home() / ".cache" / "graphopt-recurrent-models"
RECURRENT = ("LSTM", "GRU", "RNN")
RTOL, ATOL = 1e-3, 1e-4
SETTLE_S = 0.3


@dataclass(frozen=True)
class ModelSpec:
    """One .onnx file inside a wheel, with the input shapes and values it is run on."""

    name: str
    package: str  # pip requirement, pinned
    member: str  # path inside the wheel
    shapes: dict[str, tuple[int, ...]]
    fixed: dict[str, object] = field(default_factory=dict)  # inputs given, not random
    token_range: dict[str, int] = field(default_factory=dict)  # int inputs: values in [1, n)
    baked: tuple[str, ...] = ()  # inputs graphopt compiles with --input-value (ORT is fed the same value)


_VAD = "silero-vad==6.2.3"
_VAD_STATE = {"input": (1, 512), "state": (2, 1, 128)}
_SR = {"sr": np.array(16000, np.int64)}
_ROMAN = "arabic-name-romanizer==0.2.0"
_SRC = 12
MODELS = (
    ModelSpec("silero_vad", _VAD, "silero_vad/data/silero_vad.onnx", _VAD_STATE, _SR),
    ModelSpec("silero_vad_16k_op15", _VAD, "silero_vad/data/silero_vad_16k_op15.onnx", _VAD_STATE, _SR),
    ModelSpec("silero_vad+sr16k", _VAD, "silero_vad/data/silero_vad.onnx", _VAD_STATE, _SR, baked=("sr",)),
    ModelSpec("silero_vad_16k_op15+sr16k", _VAD, "silero_vad/data/silero_vad_16k_op15.onnx", _VAD_STATE, _SR,
              baked=("sr",)),
    ModelSpec("silero_vad_half", _VAD, "silero_vad/data/silero_vad_half.onnx", _VAD_STATE),
    ModelSpec("silero_vad_16k_sequence", _VAD, "silero_vad/data/silero_vad_16k_sequence.onnx",
              {"input": (16, 576), "h": (1, 1, 128), "c": (1, 1, 128)}),
    ModelSpec("silero_vad_openvino_16k", _VAD, "silero_vad/data/silero_vad_openvino_16k.onnx",
              {"input": (1, 576), "state": (2, 1, 128)}),
    ModelSpec("ddddocr_common", "ddddocr==1.6.1", "ddddocr/common.onnx", {"input1": (1, 1, 64, 128)}),
    ModelSpec("oww_melspectrogram", "openwakeword==0.4.0", "openwakeword/resources/models/melspectrogram.onnx",
              {"input": (1, 1760)}),
    ModelSpec("oww_embedding", "openwakeword==0.4.0", "openwakeword/resources/models/embedding_model.onnx",
              {"input_1": (1, 76, 32, 1)}),
    ModelSpec("romanizer_encoder", _ROMAN, "arabic_name_romanizer/resources/encoder.onnx",
              {"src": (1, _SRC), "src_mask": (1, _SRC)}, {"src_mask": np.ones((1, _SRC), bool)}, {"src": 160}),
    ModelSpec("romanizer_decoder", _ROMAN, "arabic_name_romanizer/resources/decoder.onnx",
              {"prefix": (1, 1), "memory": (1, _SRC, 256), "src_mask": (1, _SRC), "hidden": (1, 2, 256)},
              {"src_mask": np.ones((1, _SRC), bool)}, {"prefix": 160}),
)


def fetch(spec: ModelSpec, cache: Path) -> Path:
    """The model file, downloading its wheel (no dependencies) and extracting it on first use."""
    target = cache / "models" / spec.package / spec.member
    if target.exists():
        return target
    wheels = cache / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    project, version = spec.package.split("==")
    prefix = f"{project.replace('-', '_')}-{version}-"
    if not any(w.name.lower().startswith(prefix) for w in wheels.glob("*.whl")):
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(wheels), spec.package],
                       check=True)
    wheel = next(w for w in wheels.glob("*.whl") if w.name.lower().startswith(prefix))
    with zipfile.ZipFile(wheel) as archive:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(archive.read(spec.member))
    return target


def feeds_for(spec: ModelSpec, model: onnx.ModelProto, seed: int = 0) -> dict[str, np.ndarray]:
    """Random non-zero inputs at the pinned shapes; fixed values and token ids where given."""
    rng = np.random.default_rng(seed)
    inits = {t.name for t in model.graph.initializer}
    feeds = {}
    for info in model.graph.input:
        if info.name in inits:
            continue
        if info.name in spec.fixed:
            feeds[info.name] = np.asarray(spec.fixed[info.name])
            continue
        dtype = onnx.helper.tensor_dtype_to_np_dtype(info.type.tensor_type.elem_type)
        shape = spec.shapes[info.name]
        if info.name in spec.token_range:
            feeds[info.name] = rng.integers(1, spec.token_range[info.name], shape).astype(dtype)
        else:
            value = rng.uniform(0.05, 0.5, shape) * rng.choice([-1.0, 1.0], shape)
            feeds[info.name] = value.astype(dtype)
    return feeds


def bench(spec: ModelSpec, path: Path, budget_s: float) -> dict:
    """Steps 1-3 for one model; a failure ends the row with its stage and one-line error."""
    model = onnx.load(str(path))
    row = {"model": spec.name, "package": spec.package, "file": spec.member, "baked_inputs": list(spec.baked),
           "recurrent_nodes": _recurrent_nodes(model), "input_shapes": {k: list(v) for k, v in spec.shapes.items()},
           "weight_bytes": _weight_bytes(model)}
    with tempfile.TemporaryDirectory() as tmp:
        feeds = feeds_for(spec, model)
        try:
            session, row["compile_s"], plan = _compile(path, spec, Path(tmp) / "artifact")
        except Exception as exc:  # noqa: BLE001 - recorded, not raised: the table lists every model
            return {**row, "stage": "compile", "error": _one_line(exc)}
        row.update(_plan_summary(plan, row["recurrent_nodes"]))
        try:
            ort_run, ort_out = _ort(path, feeds)
            ours = session.run(feeds)
        except Exception as exc:  # noqa: BLE001
            return {**row, "stage": "run", "error": _one_line(exc)}
        row.update(_compare(ours, ort_out))
        row.update(_timing(lambda: _timed(session.run, feeds), ort_run, budget_s))
    return row


def _compile(path: Path, spec: ModelSpec, out: Path):
    import graphopt.runtime
    from graphopt.compiler import compile_model
    from graphopt.options import CompileOptions

    start = time.perf_counter()
    shapes = {k: v for k, v in spec.shapes.items() if k not in spec.baked}
    values = {n: tuple(float(v) for v in np.ravel(spec.fixed[n])) for n in spec.baked}  # --input-value
    compile_model(path, out, CompileOptions(input_shapes=shapes, input_values=values))
    seconds = time.perf_counter() - start
    return graphopt.runtime.load(out), round(seconds, 1), json.loads((out / "plan.json").read_text())


def _weight_bytes(model: onnx.ModelProto) -> int:
    """Bytes of the model's initializers and top-level Constant tensors: what params_bytes compares to
    (weights inside If branches are left out: a model may carry one copy per branch)."""
    tensors = list(model.graph.initializer)
    tensors += [a.t for n in model.graph.node if n.op_type == "Constant" for a in n.attribute if a.name == "value"]
    return sum(onnx.numpy_helper.to_array(t).nbytes for t in tensors)


def _recurrent_nodes(model: onnx.ModelProto) -> dict[str, int]:
    """LSTM/GRU/RNN nodes, those inside If/Loop bodies included."""
    counts: dict[str, int] = {}

    def walk(graph: onnx.GraphProto) -> None:
        for node in graph.node:
            if node.op_type in RECURRENT:
                counts[node.op_type] = counts.get(node.op_type, 0) + 1
            for attr in node.attribute:
                for sub in [attr.g] if attr.HasField("g") else list(attr.graphs):
                    walk(sub)

    walk(model.graph)
    return counts


def _plan_summary(plan: dict, recurrent: dict[str, int]) -> dict:
    kernels = (plan.get("fallback") or {}).get("kernels", [])
    fallback_ops: dict[str, int] = {}
    for kernel in kernels:
        fallback_ops[kernel["op_type"]] = fallback_ops.get(kernel["op_type"], 0) + 1
    native = sum(recurrent.values()) - sum(fallback_ops.get(op, 0) for op in RECURRENT)
    if any(op in fallback_ops for op in ("If", "Loop", "Scan")):
        native = None  # a fallback control-flow node may hold recurrent nodes of its own
    return {"fallback_ops": fallback_ops, "native_recurrent_nodes": native,
            "fallback_reasons": sorted({k["reason"] for k in kernels}),
            "arena_bytes": plan["arena_bytes"], "lower_bound_bytes": plan["lower_bound_bytes"],
            "tvm_stock_bytes": plan["tvm_stock_bytes"], "params_bytes": plan["params_bytes"]}


def _ort(path: Path, feeds: dict):
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    outputs = dict(zip(names, session.run(names, feeds)))
    return (lambda: _timed(session.run, None, feeds)), outputs


def _timed(run, *args) -> float:
    start = time.perf_counter()
    run(*args)
    return time.perf_counter() - start


def _compare(ours: dict, reference: dict) -> dict:
    errors, ok = {}, True
    for name, want in reference.items():
        got = np.asarray(ours[name], dtype=np.float64)
        want = np.asarray(want, dtype=np.float64)
        errors[name] = float(np.abs(got - want).max()) if got.shape == want.shape else f"shape {got.shape}"
        ok = ok and got.shape == want.shape and bool(np.allclose(got, want, rtol=RTOL, atol=ATOL))
    return {"max_abs_err": errors, "matches_ort": ok}


def _timing(ours, ort_run, budget_s: float) -> dict:
    """Interleaved medians of graphopt and ONNX Runtime (ratio below 1: graphopt faster).

    Each turn first runs its engine untimed for SETTLE_S: the other engine's thread pool
    spins on after its runs (ONNX Runtime's intra-op workers, TVM's pool worker), and on 2
    cores a turn started right after it measured graphopt 40-80x slower than alone
    (benchmarks.latency found and settles the same way)."""
    ours(), ort_run()  # first calls: thread pools, caches
    rounds, per_round = plan_repeats(max(ours(), ort_run()), budget_s)
    samples: dict[str, list[float]] = {"ours": [], "ort": []}
    engines = {"ours": ours, "ort": ort_run}
    for r in range(rounds):
        for name in (("ours", "ort") if r % 2 == 0 else ("ort", "ours")):
            _settle(engines[name])
            samples[name].append(statistics.median(engines[name]() for _ in range(per_round)))
    ratios = [a / b for a, b in zip(samples["ours"], samples["ort"])]
    low, high = statistics.quantiles(ratios, n=4)[0::2]
    return {"ours_ms": statistics.median(samples["ours"]) * 1e3, "ort_ms": statistics.median(samples["ort"]) * 1e3,
            "ours/ort": statistics.median(ratios), "ours/ort_q1_q3": [low, high], "rounds": rounds,
            "per_round": per_round}


def _settle(run) -> None:
    start = time.perf_counter()
    while time.perf_counter() - start < SETTLE_S:
        run()


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text[:400]}"


def _arenas_kb(row: dict) -> str:
    """Arena, lower bound and TVM's stock plan of one model, in KB."""
    return " / ".join(f"{row[k] / 1e3:.1f}" for k in ("arena_bytes", "lower_bound_bytes", "tvm_stock_bytes"))


def markdown(rows: list[dict], meta: dict) -> str:
    lines = [f"# Recurrent models, graphopt vs ONNX Runtime ({meta['date']})", "",
             f"Machine: {meta['cpu']}, {meta['nproc']} cores, load average at start {meta['load_average_at_start']}. "
             f"Command: `{meta['command']}`. Thread counts: each engine's default "
             f"(environment: {meta['threads_env'] or 'none set'}).", "",
             "| model | LSTM/GRU/RNN (native) | fallback ops | compile s | ours ms | ORT ms | ours/ORT (q1-q3) "
             "| matches ORT | arena / lower bound / TVM stock KB | stored / model weights MB |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        recurrent = ", ".join(f"{k} {v}" for k, v in r["recurrent_nodes"].items()) or "-"
        if "error" in r:
            lines.append(f"| {r['model']} | {recurrent} | {r['stage']} failed: {r['error'][:160]} | | | | | | | |")
            continue
        fallback = ", ".join(f"{k} {v}" for k, v in r["fallback_ops"].items()) or "none"
        q1, q3 = r.get("ours/ort_q1_q3", (0, 0))
        timing = f"{r['ours/ort']:.2f} ({q1:.2f}-{q3:.2f})" if "ours_ms" in r else "-"
        lines.append(f"| {r['model']} | {recurrent} ({r['native_recurrent_nodes']}) | {fallback} | {r['compile_s']} | "
                     f"{r.get('ours_ms', 0):.3f} | {r.get('ort_ms', 0):.3f} | {timing} | {r['matches_ort']} | "
                     f"{_arenas_kb(r)} | {r['params_bytes'] / 1e6:.2f} / {r.get('weight_bytes', 0) / 1e6:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="where wheels and models are kept")
    parser.add_argument("--models", default="", help="comma-separated names (default: all)")
    parser.add_argument("--budget", type=float, default=4.0, help="timing seconds per model")
    parser.add_argument("--out", type=Path, default=None, help="output stem (default results/recurrent-models-DATE)")
    args = parser.parse_args(argv)
    wanted = set(filter(None, args.models.split(",")))
    meta = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "cpu": cpu_name(),
            "nproc": os.cpu_count(), "load_average_at_start": [round(v, 2) for v in os.getloadavg()],
            "threads_env": {k: v for k, v in os.environ.items() if k in ("TVM_NUM_THREADS", "OMP_NUM_THREADS")},
            "command": " ".join(["python -m benchmarks.recurrent_models", *(argv if argv is not None else sys.argv[1:])])}
    rows = []
    for spec in MODELS:
        if wanted and spec.name not in wanted:
            continue
        rows.append(bench(spec, fetch(spec, args.cache), args.budget))
        print(json.dumps(rows[-1], default=str), flush=True)
    meta["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    stem = args.out or unused(RESULTS / f"recurrent-models-{meta['date'][:10]}", (".json", ".md"))
    Path(f"{stem}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1, default=str) + "\n")
    Path(f"{stem}.md").write_text(markdown(rows, meta))
    print(markdown(rows, meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
