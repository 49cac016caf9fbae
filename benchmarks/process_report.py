"""The process-memory benchmark's results file: run metadata and the markdown tables.

Kept apart from benchmarks.process_memory so the measuring code stays short; the targets checked
here are issue #19's, stated once (IMPORT_LIMIT_MB, artifact_size.TARGET_RATIO).
"""

from __future__ import annotations

import os
import platform
from datetime import UTC, datetime
from importlib import metadata

from benchmarks.artifact_size import TARGET_RATIO
from benchmarks.machine import cpu_name

IMPORT_LIMIT_MB = 80  # the runtime's import, in RSS
MIB = 2**20
PACKAGES = ("apache-tvm", "onnxruntime-gpu", "onnxruntime", "openvino", "numpy")


def meta(module: str, argv: list[str]) -> dict:
    """Date, machine (CPU model, cores, load average), versions and the command that reproduces the run."""
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return {"date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": platform.node(),
            "cpu": cpu_name(), "nproc": os.cpu_count(), "load_average_at_start": os.getloadavg(),
            "python": platform.python_version(), "versions": versions,
            "command": f"python -m {module} " + " ".join(argv)}


def _mb(nbytes: int | None) -> str:
    return "" if nbytes is None else f"{nbytes / MIB:.2f}"


def _rss(row: dict, engine: str) -> str:
    got = row["rss"].get(engine)
    if got is None:
        return ""
    return "failed" if "error" in got else f"{got['import_MB']} / {got['peak_MB']}"


def _arena(value: int | str) -> str:
    """Bytes, exactly: a raised arena may differ from the default by one alignment unit."""
    return "failed" if isinstance(value, str) else f"{value:,}"


def table(rows: list[dict]) -> list[str]:
    rows = measured(rows)
    toggles = list(rows[0]["arena_off"]) if rows else []
    head = (["model", "ONNX MiB", "weights MiB", "stored params MiB", "ratio", "library MiB",
             "graphopt import/peak MB", "ORT import/peak MB", "OpenVINO import/peak MB", "arena B"]
            + [f"arena B, no {t}" for t in toggles])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["model"], _mb(r["onnx_file_bytes"]), _mb(r["onnx_weight_bytes"]), _mb(r["stored_params_bytes"]),
                 "" if r["params_ratio"] is None else f"{r['params_ratio']:.3f}", _mb(r["library_file_bytes"]),
                 _rss(r, "graphopt"), _rss(r, "onnxruntime"), _rss(r, "openvino"), _arena(r["arena_default"])]
        lines.append("| " + " | ".join(cells + [_arena(r["arena_off"][t]) for t in toggles]) + " |")
    return lines


def measured(rows: list[dict]) -> list[dict]:
    """The rows whose default compile succeeded (the others are listed under Failures)."""
    return [r for r in rows if "error" not in r]


def checks(rows: list[dict]) -> list[str]:
    """One line per target of issue #19, naming the models that miss it."""
    rows = measured(rows)
    def peak(row: dict, engine: str) -> int | None:
        return row["rss"].get(engine, {}).get("peak_MB")

    over_ort = [r["model"] for r in rows if None not in (peak(r, "graphopt"), peak(r, "onnxruntime"))
                and peak(r, "graphopt") > peak(r, "onnxruntime")]
    heavy = [r["model"] for r in rows if r["rss"].get("graphopt", {}).get("import_MB", 0) > IMPORT_LIMIT_MB]
    ratio = [r["model"] for r in rows if r["params_over_target"]]
    raised = [f"{r['model']} ({', '.join(r['raised_by'])})" for r in rows if r["raised_by"]]
    return [f"- stored params <= {TARGET_RATIO}x the ONNX weights: " + _verdict(ratio),
            "- graphopt's peak RSS <= ONNX Runtime's: " + _verdict(over_ort),
            f"- graphopt's runtime import <= {IMPORT_LIMIT_MB} MB RSS: " + _verdict(heavy),
            "- no default option raises an arena: " + _verdict(raised)]


def _verdict(missed: list[str]) -> str:
    return "met on every model" if not missed else "MISSED on " + ", ".join(missed)


def failures(rows: list[dict]) -> list[str]:
    lines = [f"- {r['model']}, default compile: {r['error']}" for r in rows if "error" in r]
    for r in measured(rows):
        lines += [f"- {r['model']}, {e}: {got['error']}" for e, got in r["rss"].items() if "error" in got]
        lines += [f"- {r['model']}, arena without {t}: {v}" for t, v in r["arena_off"].items() if isinstance(v, str)]
    return lines


def excess(rows: list[dict]) -> list[str]:
    lines = []
    for r in measured(rows):
        lines += [f"- {r['model']}: {t['name']} {t['shape']} {t['bytes']:,} B" for t in r["excess_tensors"]]
    return lines


def markdown(rows: list[dict], run_meta: dict) -> str:
    load = ", ".join(f"{x:.2f}" for x in run_meta["load_average_at_start"])
    parts = [f"# Process memory per engine ({run_meta['date']})", "",
             f"Machine: {run_meta['cpu']}, {run_meta['nproc']} cores, load average at start {load}. "
             f"Versions: {run_meta['versions']}.", "", "```", run_meta["command"], "```", "",
             "RSS in MB (kB // 1024, /proc/self/status) from a fresh process per engine: after the engine's "
             "import, and the peak (VmHWM) after loading the model and 5 runs, default threads, same inputs. "
             "Weights: ONNX initializers and Constant-node tensors. Arenas: the default compile, then each "
             "default-on option off (planned, not built).", ""]
    parts += table(rows) + ["", "## Targets", ""] + checks(rows)
    for title, lines in (("Stored tensors without a same-size ONNX weight (ratio > 1.05)", excess(rows)),
                         ("Failures", failures(rows))):
        if lines:
            parts += ["", f"## {title}", ""] + lines
    return "\n".join(parts) + "\n"
