"""Components: what a pipeline step is, how it is versioned, and how it runs.

A component *spec* is a small JSON dict; its sha-256 is the spec hash that run
keys and versions are built on:

    {"kind": "dataset"|"model",  "files": {name: object id}}          (content captured at add time)
    {"kind": "compile"|"evaluate", "inputs": [...], "params": {...}}   (graphopt builtins)
    {"kind": "python", "ref": "pkg.mod:fn", "code": sha, "inputs": [...], "params": {...}}
    {"kind": "command", "argv": [...], "inputs": [...], "params": {...}}

`inputs` names upstream components (earlier in the chain) whose outputs it
reads; only those enter its run key, so a step is re-run only when something it
actually reads changed. A Python component is `fn(inputs: dict[str, Path],
out: Path, params: dict) -> None` and may carry `fn.accepts(spec, signatures)`
returning a reason string when it cannot take some input signature. Its source
hash is part of the spec, so edited code is a new version, never a silent reuse.
A command gets GRAPHOPT_IN_<NAME>, GRAPHOPT_OUT and GRAPHOPT_PARAMS (JSON) in its
environment.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import os
import subprocess
from pathlib import Path

from graphopt.errors import GraphoptError, InputError
from graphopt.pipelines import builtins, names
from graphopt.pipelines.errors import ComponentRunError, SchemaConflictError
from graphopt.pipelines.objects import ObjectStore, canonical, sha256_bytes

KINDS = ("dataset", "model", "compile", "evaluate", "python", "command")
FILE_KINDS = ("dataset", "model")


def spec_hash(spec: dict) -> str:
    return sha256_bytes(canonical(spec))


def _resolve(ref: str):
    module, _, name = ref.partition(":")
    try:
        fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise InputError(f"cannot import component {ref!r} ({exc})") from None
    if not callable(fn):
        raise InputError(f"component {ref!r} is not callable")
    return fn


def _code_hash(fn) -> str:
    try:
        return hashlib.sha256(inspect.getsource(fn).encode()).hexdigest()
    except (OSError, TypeError):
        return "unknown"


def make_spec(kind: str, store: ObjectStore, *, inputs: list[str] | None = None, params: dict | None = None,
              files: list[Path] | None = None, ref: str | None = None, argv: list[str] | None = None) -> dict:
    """Builds (and for file kinds, stores) a spec; every user mistake is an InputError."""
    if kind not in KINDS:
        raise InputError(f"unknown component kind {kind!r} (one of {', '.join(KINDS)})")
    if kind in FILE_KINDS:
        return {"kind": kind, "files": _capture(kind, store, files or [])}
    spec = {"kind": kind, "inputs": list(inputs or []), "params": dict(params or {})}
    if kind == "compile" and len(spec["inputs"]) != 1:
        raise InputError("compile takes exactly one input (the model component)")
    if kind == "evaluate" and len(spec["inputs"]) != 2:
        raise InputError("evaluate takes two inputs: the data component and the compile component")
    if kind == "python":
        if not ref or ":" not in ref:
            raise InputError("a python component needs --ref MODULE:FUNCTION")
        spec.update(ref=ref, code=_code_hash(_resolve(ref)))
    if kind == "command":
        if not argv:
            raise InputError("a command component needs --argv")
        spec["argv"] = list(argv)
    return spec


def _capture(kind: str, store: ObjectStore, files: list[Path]) -> dict[str, str]:
    if not files:
        raise InputError(f"a {kind} component needs --file (one or more)")
    # names first, so a refused one stores nothing; a model is always model.onnx
    names.check_file_names([Path(f).name for f in files] if kind != "model" else [])
    captured = {}
    for f in files:
        f = Path(f)
        if not f.is_file():
            raise InputError(f"{f}: no such file")
        if kind == "model" and (f.suffix != ".onnx" or len(files) != 1):
            raise InputError(f"{f}: a model component takes one .onnx file")
        # a model is always model.onnx: its file name is not part of its schema
        captured["model.onnx" if kind == "model" else f.name] = store.put_file(f)
    return captured


def accepts(spec: dict, inputs: dict[str, dict]) -> str | None:
    """None when `spec` may run on inputs with these signatures, else why it cannot."""
    kind = spec["kind"]
    if kind == "compile":
        return builtins.accepts_compile(spec, inputs)
    if kind == "evaluate":
        return builtins.accepts_evaluate(spec, inputs)
    if kind == "python":
        check = getattr(_resolve(spec["ref"]), "accepts", None)
        return check(spec, inputs) if check else None
    return None


def run(spec: dict, inputs: dict[str, Path], out: Path, pins: dict[str, str] | None = None) -> dict:
    """Runs a non-file component into `out`; returns extra facts (e.g. the artifact's build id).

    `pins`: input name -> the content id its artifact must have (evaluate loads no other).

    Errors of the component become ComponentRunError (or SchemaConflictError when
    it says its inputs do not fit), always one line naming the component kind.
    """
    kind, params = spec["kind"], spec.get("params", {})
    try:
        if kind == "compile":
            return {"artifact_id": builtins.run_compile(inputs, out, params)}
        if kind == "evaluate":
            builtins.run_evaluate(inputs, out, params, pins)
        elif kind == "python":
            fn = _resolve(spec["ref"])
            if _code_hash(fn) != spec["code"]:
                raise InputError(f"the code of {spec['ref']} changed since it was versioned; add the component again")
            fn(inputs, out, params)
        elif kind == "command":
            _run_command(spec, inputs, out, params)
        return {}
    except (SchemaConflictError, InputError, ComponentRunError):
        raise
    except GraphoptError as exc:
        raise ComponentRunError(f"{kind} failed: {exc}") from None
    except Exception as exc:  # noqa: BLE001  (a user component's own bug: report it, do not crash the store)
        first = (str(exc).strip().splitlines() or [""])[0]
        raise ComponentRunError(f"{kind} component raised {type(exc).__name__}: {first}") from None


def _run_command(spec: dict, inputs: dict[str, Path], out: Path, params: dict) -> None:
    env = dict(os.environ, GRAPHOPT_OUT=str(out), GRAPHOPT_PARAMS=json.dumps(params))
    for name, path in inputs.items():
        env[f"GRAPHOPT_IN_{''.join(c if c.isalnum() else '_' for c in name).upper()}"] = str(path)
    proc = subprocess.run(spec["argv"], env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or [""])[-1]
        raise ComponentRunError(f"command {spec['argv'][0]} exited {proc.returncode}: {tail}")


def summary(spec: dict) -> str:
    """A short human description of a spec, for log, diff and status."""
    kind = spec["kind"]
    if kind in FILE_KINDS:
        return f"{kind} " + ", ".join(f"{n}={o[:10]}" for n, o in spec["files"].items())
    extra = spec.get("ref") or " ".join(spec.get("argv", []))
    params = ", ".join(f"{k}={v}" for k, v in sorted(spec.get("params", {}).items()))
    return " ".join(p for p in (kind, extra, f"({params})" if params else "",
                                f"<- {', '.join(spec['inputs'])}" if spec.get("inputs") else "") if p)
