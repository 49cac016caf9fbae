"""The per-kernel TVM/oneDNN portfolio on real models: TVM-only vs portfolio vs ORT vs OpenVINO.

Per model, in one process:
  1. the portfolio database: a copy of --tuning-db (graphopt's tuned TVM kernels) to which
     graphopt.kernels.onednn.portfolio adds, for every kernel oneDNN can compute, the faster of
     the tuned TVM kernel and oneDNN (each conv2d in its plain and blocked layout modes),
     timed interleaved, outputs checked against TVM's;
  2. two artifacts: "tvm" compiled with --tuning-db as it is, "portfolio" with the copy; their
     arena and lower bound must be equal (the kernel choice cannot change the plan: exit 1 if it does);
  3. both artifacts, ONNX Runtime and OpenVINO timed in rotated order (benchmarks.latency's
     rotation, settle and medians), every output checked against ONNX Runtime's.

    python -m benchmarks.onednn_portfolio [--models a,b] [--tuning-db DIR] [--rounds N] [--out STEM]

Threads: every engine runs with graphopt's default (one per physical core); the oneDNN shim
uses the same count (TVM_NUM_THREADS, which graphopt sets; graphopt/kernels/onednn/shim.cc).
Writes STEM.json and STEM.md (default benchmarks/results/onednn-portfolio-DATE, never over a stored run).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from benchmarks.latency import (
    _add_openvino,
    _max_rel_err,
    _meta,
    _ort_runner,
    _paired_ratio_range,
    _rotated_samples,
    _variant_session,
    engine_threads,
)
from benchmarks.model_zoo import ZOO, materialize
from benchmarks.outputs import RESULTS, unused

DEFAULT_MODELS = ("light_resnet50", "light_densenet121", "encoder")
DEFAULT_DB = Path("benchmarks/results/tuning-db-znver3-r5-2026-11-27")
PLAN_KEYS = ("arena_bytes", "lower_bound_bytes")


def portfolio_db(model_path: Path, shapes: dict, base_db: Path | None, out: Path) -> tuple[list[dict], float]:
    """(portfolio rows, seconds) after copying `base_db` to `out` and recording choices into it."""
    from graphopt.frontend import prepare
    from graphopt.frontend.importer import to_relax
    from graphopt.kernels.onednn.portfolio import tune_portfolio
    from graphopt.kernels.tuning.db import FILE, TuningDB
    from graphopt.lowering import prepack
    from graphopt.lowering.lower import legalize
    from graphopt.lowering.target import make_target

    out.mkdir(parents=True, exist_ok=True)
    if base_db is not None:
        shutil.copyfile(base_db / FILE, out / FILE)
    start = time.perf_counter()
    target = make_target("llvm")
    mod = prepack.mark_weights()(legalize(to_relax(prepare(model_path, shapes).model).mod, target))
    rows = tune_portfolio(mod, target, TuningDB.open(out, create=True))
    return rows, time.perf_counter() - start


def onednn_summary(rows: list[dict], plan: dict) -> dict:
    """How many kernels went to oneDNN, and the bytes the shim holds beside the arena: one workspace
    per thread, as large as the largest chosen kernel's scratchpad + reorder buffers (shim.cc)."""
    chosen = [r for r in rows if r["library"] == "onednn"]
    held = max((r["scratch_bytes"][r["onednn_mode"]] + r["reorder_bytes"][r["onednn_mode"]] for r in chosen),
               default=0)
    labels = plan["schedules"]["by_rule"]
    return {"candidates": len(rows), "chosen_onednn": len(chosen),
            "onednn_kernels_in_artifact": sum(n for label, n in labels.items() if label.startswith("onednn")),
            "onednn_workspace_bytes_per_thread": held,
            "kernel_seconds": {r["kernel"]: {k: round(v * 1e3, 4) for k, v in r["seconds"].items()}
                               for r in rows if "seconds" in r},
            "choices": {r["kernel"]: r["library"] + (f" {r['onednn_mode']}" if r.get("onednn_mode") else "")
                        for r in rows}}


def bench_model(name: str, work: Path, base_db: Path | None, rounds: int, threads: int) -> dict:
    model_path, shapes, feeds = materialize(name, work)
    rows, tune_s = portfolio_db(model_path, shapes, base_db, work / f"{name}.db")
    extra = {"tuning_db": base_db} if base_db is not None else {}
    tvm_only, tvm_plan = _variant_session(model_path, shapes, work / f"{name}.tvm.art", **extra)
    mixed, mixed_plan = _variant_session(model_path, shapes, work / f"{name}.portfolio.art",
                                         tuning_db=work / f"{name}.db")
    if any(tvm_plan[k] != mixed_plan[k] for k in PLAN_KEYS):
        raise SystemExit(f"{name}: the kernel choice changed the plan: "
                         f"{[(k, tvm_plan[k], mixed_plan[k]) for k in PLAN_KEYS]}")
    ort_run, ort_session = _ort_runner(model_path, feeds, threads)
    expected = dict(zip([o.name for o in ort_session.get_outputs()], ort_session.run(None, feeds)))
    errors = {"tvm": _max_rel_err(expected, tvm_only.run(feeds)),
              "portfolio": _max_rel_err(expected, mixed.run(feeds))}
    runners = {"tvm": lambda: tvm_only.run_timed(feeds).seconds,
               "portfolio": lambda: mixed.run_timed(feeds).seconds, "ort": ort_run}
    errors["ov"] = _add_openvino(runners, model_path, feeds, threads, expected)["ov_max_rel_err"]
    per_round = 1 if max(f() for f in runners.values()) > 0.2 else 5
    samples = _rotated_samples(runners, rounds, per_round)
    medians = {n: statistics.median(v) for n, v in samples.items()}
    row = {"model": name, **{f"{n}_ms": medians[n] * 1e3 for n in runners},
           "portfolio/tvm": medians["portfolio"] / medians["tvm"],
           "portfolio/tvm q1-q3": _paired_ratio_range(samples, "portfolio", "tvm"),
           "portfolio/ov": medians["portfolio"] / medians["ov"],
           "portfolio/ov q1-q3": _paired_ratio_range(samples, "portfolio", "ov"),
           "tvm/ov": medians["tvm"] / medians["ov"], "portfolio/ort": medians["portfolio"] / medians["ort"],
           "max_rel_err": errors, "rounds": f"{rounds}x{per_round}", "portfolio_tune_s": round(tune_s, 1),
           **{k: tvm_plan[k] for k in PLAN_KEYS}, "plan_equal": True,
           "samples_ms": {n: [round(x * 1e3, 3) for x in v] for n, v in samples.items()}}
    return row | {"onednn": onednn_summary(rows, mixed_plan)}


COLUMNS = ("model", "tvm_ms", "portfolio_ms", "ort_ms", "ov_ms", "portfolio/tvm", "portfolio/tvm q1-q3",
           "tvm/ov", "portfolio/ov", "portfolio/ov q1-q3", "onednn kernels", "workspace bytes", "arena_bytes",
           "lower_bound_bytes", "max rel err")


def markdown(rows: list[dict]) -> str:
    def cell(row: dict, column: str) -> str:
        if column == "onednn kernels":
            return f"{row['onednn']['chosen_onednn']}/{row['onednn']['candidates']}"
        if column == "workspace bytes":
            return str(row["onednn"]["onednn_workspace_bytes_per_thread"])
        if column == "max rel err":
            return f"{max(row['max_rel_err'].values()):.1e}"
        value = row[column]
        return f"{value:.2f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    return "\n".join(lines + ["| " + " | ".join(cell(r, c) for c in COLUMNS) + " |" for r in rows])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS), help=f"comma list from: {', '.join(ZOO)}")
    parser.add_argument("--tuning-db", type=Path, default=DEFAULT_DB, help="the TVM tuning db both arms start from")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--out", type=Path, default=None,
                        help="output stem (default: results/onednn-portfolio-DATE, first free -N suffix)")
    args = parser.parse_args(argv)
    out = args.out or unused(RESULTS / f"onednn-portfolio-{date.today()}", (".json", ".md"))
    from graphopt.kernels.onednn.library import available

    missing = available()
    if missing is not None:
        raise SystemExit(missing)
    threads = engine_threads(None)
    meta = _meta(argv, threads) | {"command": "python -m benchmarks.onednn_portfolio " + " ".join(argv),
                                   "onednn": _onednn_version()}
    rows = []
    with tempfile.TemporaryDirectory(prefix="graphopt-onednn-") as tmp:
        for name in args.models.split(","):
            rows.append(bench_model(name, Path(tmp), args.tuning_db, args.rounds, threads))
            print(markdown(rows[-1:]), flush=True)
    meta["load_average_at_end"] = os.getloadavg()
    Path(f"{out}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1, default=str))
    Path(f"{out}.md").write_text(_header(meta) + markdown(rows) + "\n")
    print(markdown(rows))
    return 0


def _header(meta: dict) -> str:
    keys = ("date", "machine", "cpu", "cores", "threads", "onednn", "tvm", "load_average_at_start",
            "load_average_at_end", "command")
    return "\n".join(f"- {k}: {meta.get(k)}" for k in keys) + "\n\n"


def _onednn_version() -> str:
    from graphopt.kernels.onednn.library import find

    _, include = find()
    text = (include / "oneapi" / "dnnl" / "dnnl_version.h").read_text()
    parts = [line.split()[-1] for line in text.splitlines() if line.startswith("#define DNNL_VERSION_")][:3]
    return ".".join(parts)


if __name__ == "__main__":
    raise SystemExit(main())
