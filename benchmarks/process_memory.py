"""Memory as a user measures it (issue #19): process RSS per engine, artifact size, arena per option.

For each model:
  1. compile it with the default options (the artifact a user gets);
  2. engines, each in a fresh subprocess on the same inputs with its default threads: graphopt's
     runtime (benchmarks/runtime_rss.py, runtime-only), ONNX Runtime and OpenVINO
     (benchmarks/engine_rss.py): RSS after the engine's import and the peak (VmHWM) after
     loading the model and running it 5 times;
  3. sizes: ONNX file and weight bytes against the stored params and the library
     (benchmarks.artifact_size), the params ratio and, above 1.05, the excess tensors;
  4. the arena with each default-on boolean option of CompileOptions turned off, one at a time,
     planned but not built (graphopt.compiler.run_stages through `verify`); the default arena
     must be <= each. The script exits 1 if any default option raised an arena. Weight
     prepacking has no option of its own: the GEMM schedule marks the packing stages
     (graphopt.lowering.prepack), so `schedules` off is the compile without packed weights
     (weight-only reshapes are still lifted to compile time).

    python -m benchmarks.memory process [--models a,b,...] [--json FILE] [--md FILE]

Models are the benchmark zoo (benchmarks.model_zoo: light CNNs, the PP-OCR models from the
rapidocr wheel, the encoder) and the bundled examples (`example:NAME`). Without OpenVINO
installed (the `bench` extra) its columns are empty and one line says so.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import multiprocessing
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from benchmarks.artifact_size import artifact_sizes
from benchmarks.model_zoo import ZOO, materialize
from benchmarks.outputs import RESULTS, unused
from benchmarks.process_report import markdown, meta

HERE = Path(__file__).parent
ENGINES = ("graphopt", "onnxruntime", "openvino")
EXAMPLE = "example:"
CHILD_TIMEOUT_S = 600
_LINE = re.compile(r"^(\S+): import (\d+) MB, peak after load \+ \d+ runs (\d+) MB", re.M)


def default_models() -> list[str]:
    from graphopt.examples.models import EXAMPLES

    return list(ZOO) + [EXAMPLE + name for name in EXAMPLES]


def arena_toggles() -> list[str]:
    """CompileOptions' boolean fields that default to on: each is turned off once."""
    from graphopt.options import CompileOptions

    return [f.name for f in dataclasses.fields(CompileOptions) if f.default is True]


def model_files(name: str, work: Path) -> tuple[Path, dict]:
    """(ONNX path, fixed input shapes) for a zoo model or a bundled example."""
    if name.startswith(EXAMPLE):
        import onnx

        from graphopt.examples.models import EXAMPLES

        path = work / f"{name.removeprefix(EXAMPLE)}.onnx"
        onnx.save(EXAMPLES[name.removeprefix(EXAMPLE)](), path)
        return path, {}
    path, shapes, _feeds = materialize(name, work)
    return path, shapes


def planned_arena(path: Path, shapes: dict, work: Path, **changes) -> int | str:
    """The arena of a compile planned with `changes`, not built; a refusal's one line instead."""
    from graphopt.compiler import CompileState, run_stages
    from graphopt.errors import GraphoptError
    from graphopt.options import CompileOptions

    options = CompileOptions(input_shapes=shapes, **changes)
    try:
        state = run_stages(CompileState(path, work / "unbuilt", options), until="verify")
    except GraphoptError as exc:
        return f"error: {str(exc).splitlines()[0]}"
    return state.memory.placement.arena_bytes


def default_compile(path: Path, shapes: dict, art: Path) -> dict:
    """The artifact a user gets (default options) at `art`: its arena, lower bound and inputs."""
    from graphopt.compiler import compile_model
    from graphopt.options import CompileOptions

    result = compile_model(path, art, CompileOptions(input_shapes=shapes))
    return {"arena": result.plan["arena_bytes"], "lower_bound": result.plan["lower_bound_bytes"],
            "inputs": result.manifest["inputs"]}


def isolated(function, *args, **kwargs):
    """`function(*args, **kwargs)` in a child process: a compile that crashes (a segfault inside
    TVM) becomes one line in the results instead of ending the whole benchmark. Forked from a fork
    server that imported the compiler once (not per compile), never from the caller: a caller that has
    run a kernel (a test suite's process) holds a TVM thread pool, and a child forked from it waits
    forever on pool threads that did not survive the fork."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["graphopt.compiler"])
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        try:
            return pool.submit(function, *args, **kwargs).result()
        except BrokenProcessPool:
            return f"error: the compile process died ({function.__name__})"


def engine_rss(engine: str, onnx_path: Path, art: Path, inputs: list[dict]) -> dict:
    """{import_MB, peak_MB} from a fresh process, or {error} with the child's last line."""
    if engine == "graphopt":
        cmd = [sys.executable, str(HERE / "runtime_rss.py"), "runtime-only", str(art)]
    else:
        cmd = [sys.executable, str(HERE / "engine_rss.py"), engine, str(onnx_path), json.dumps(inputs)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S, check=False)
    found = _LINE.search(proc.stdout)
    if proc.returncode != 0 or found is None:
        lines = (proc.stderr or proc.stdout).strip().splitlines() or [f"exit {proc.returncode}"]
        return {"error": lines[-1]}
    return {"import_MB": int(found.group(2)), "peak_MB": int(found.group(3))}


def bench_model(name: str, work: Path, engines: list[str]) -> dict:
    """One row: sizes, each engine's import and peak RSS, the default arena and each option off."""
    path, shapes = model_files(name, work)
    art = work / "art"
    built = isolated(default_compile, path, shapes, art)
    if isinstance(built, str):
        return {"model": name, "error": built}
    rss = {e: engine_rss(e, path, art, built["inputs"]) for e in engines}
    arena_off = {opt: isolated(planned_arena, path, shapes, work, **{opt: False}) for opt in arena_toggles()}
    default = built["arena"]
    raised = sorted(opt for opt, off in arena_off.items() if isinstance(off, int) and default > off)
    return {"model": name, **artifact_sizes(path, art), "rss": rss, "arena_default": default,
            "lower_bound": built["lower_bound"], "arena_off": arena_off, "raised_by": raised}


def available_engines() -> list[str]:
    """Every engine whose package is installed; a one-line note for each missing one."""
    found = []
    for engine in ENGINES:
        package = "graphopt.runtime" if engine == "graphopt" else engine
        if importlib.util.find_spec(package.split(".")[0]) is None:
            print(f"note: {engine} is not installed, its columns are empty (openvino: pip install graphopt[bench])",
                  file=sys.stderr)
        else:
            found.append(engine)
    return found


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="benchmarks.memory process", description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=None, help="comma list (default: the zoo and the examples)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--md", type=Path, default=None)
    parser.add_argument("--merge", nargs="+", type=Path, default=None,
                        help="no measuring: one result from the JSON files of runs over parts of the models")
    args = parser.parse_args(argv)
    if args.merge:
        return write(*merged(args.merge, argv), args)
    run_meta = meta("benchmarks.memory process", argv)
    import graphopt.compiler  # noqa: F401  (the imports fail here, once, rather than in every isolated compile)
    engines, rows = available_engines(), []
    for name in args.models.split(",") if args.models else default_models():
        print(f"[{name}] compiling and measuring...", file=sys.stderr, flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            rows.append(bench_model(name, Path(tmp), engines))
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return write(rows, {**run_meta, "load_average_at_end": os.getloadavg(), "engines": engines}, args)


def merged(paths: list[Path], argv: list[str]) -> tuple[list[dict], dict]:
    """The rows of several runs, in the default models' order, and one metadata record: each run's
    commands, then this merge's.

    A path that is not a results .json is a run's progress log (its stderr): the rows it printed,
    for a run stopped before it wrote its file. The first path must be a results .json."""
    runs = [_run(path) for path in paths]
    commands = [run["meta"]["command"] for run in runs] + ["python -m benchmarks.memory process " + " ".join(argv)]
    rows = {}
    for row in (row for run in runs for row in run["rows"]):
        rows.setdefault(row["model"], row)  # a model measured twice: the first path's row
    order = {name: i for i, name in enumerate(default_models())}
    ordered = sorted(rows.values(), key=lambda r: order.get(r["model"], len(order)))
    return ordered, {**runs[0]["meta"], "command": "\n".join(commands), "runs": [run["meta"] for run in runs]}


def _run(path: Path) -> dict:
    if path.suffix == ".json":
        return json.loads(path.read_text())
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]
    return {"meta": {"command": f"# rows printed to {path.name} by a run stopped before writing its file"},
            "rows": rows}


def write(rows: list[dict], run_meta: dict, args) -> int:
    """JSON and markdown under benchmarks/results (never over a stored file); exit 1 if an arena rose."""
    stem = unused(RESULTS / f"memory-process-{run_meta['date'][:10]}", (".json", ".md"))
    json_path, md_path = args.json or Path(f"{stem}.json"), args.md or Path(f"{stem}.md")
    json_path.write_text(json.dumps({"meta": run_meta, "rows": rows}, indent=1))
    text = markdown(rows, run_meta)
    md_path.write_text(text)
    print(text)
    raised = [f"{r['model']} ({', '.join(r['raised_by'])})" for r in rows if r.get("raised_by")]
    verdict = f"a default option RAISED the arena: {'; '.join(raised)}" if raised else "no option raises an arena"
    print(f"wrote {json_path} and {md_path}; {verdict}")
    return 1 if raised else 0


if __name__ == "__main__":
    sys.exit(main())
