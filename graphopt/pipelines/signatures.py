"""Schemas are computed from outputs, never hand-kept.

A component's output schema is the tensor signature of what it wrote: for every
file, the names, shapes and dtypes it holds (arrays in .npz/.npy, graph inputs and
outputs of an .onnx model, the input/output signature in a graphopt artifact's
manifest, the metric names of metrics.json). Other files count by name only: their
bytes are content, not schema. Two runs with equal signatures share a schema
number; a new signature gets the next number for that component.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from graphopt.pipelines.objects import canonical, sha256_bytes

ARTIFACT_MARKER = "graphopt-artifact"


def _npz(path: Path) -> dict:
    arrays = {}
    try:
        with np.load(path, allow_pickle=False) as data:
            for key in sorted(data.files):
                arrays[key] = [list(data[key].shape), str(data[key].dtype)]
    except (OSError, ValueError, zipfile.BadZipFile):
        return {"unreadable": "npz"}
    return {"arrays": arrays}


def _npy(path: Path) -> dict:
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError):
        return {"unreadable": "npy"}
    return {"arrays": {"": [list(arr.shape), str(arr.dtype)]}}


def _onnx(path: Path) -> dict:
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # noqa: BLE001  (protobuf raises several types on garbage)
        return {"unreadable": "onnx"}
    inits = {i.name for i in model.graph.initializer}

    def sig(vi) -> list:
        t = vi.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in t.shape.dim]
        return [vi.name, dims, onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name if t.elem_type else "?"]

    return {"inputs": [sig(v) for v in model.graph.input if v.name not in inits],
            "outputs": [sig(v) for v in model.graph.output]}


def _json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, OSError):
        return {"unreadable": "json"}
    if isinstance(data, dict) and data.get("format") == ARTIFACT_MARKER:
        sig = lambda s: [s["name"], s["shape"], s["dtype"]]
        return {"artifact": {"inputs": [sig(s) for s in data.get("inputs", [])],
                             "outputs": [sig(s) for s in data.get("outputs", [])]}}
    if isinstance(data, dict):
        return {"keys": sorted(data)}
    return {"json": type(data).__name__}


READERS = {".npz": _npz, ".npy": _npy, ".onnx": _onnx, ".json": _json}


def signature_of_dir(directory: Path) -> dict:
    """The schema-defining signature of every file under `directory`.

    A graphopt artifact counts by its manifest's input/output signature only: its
    library, params and plan are internals (a wider hidden layer is not a new schema).
    """
    manifest = Path(directory) / "manifest.json"
    if manifest.is_file():
        desc = _json(manifest)
        if "artifact" in desc:
            return {"files": {"manifest.json": desc}}
    files = {}
    for path in sorted(Path(directory).rglob("*")):
        if path.is_file():
            reader = READERS.get(path.suffix.lower())
            files[path.relative_to(directory).as_posix()] = reader(path) if reader else {}
    return {"files": files}


def signature_hash(signature: dict) -> str:
    return sha256_bytes(canonical(signature))


def arrays(signature: dict) -> dict[str, tuple[list, str]]:
    """Every array named in a signature, keyed `file:array` and by bare array name."""
    found = {}
    for fname, desc in signature.get("files", {}).items():
        for key, (shape, dtype) in desc.get("arrays", {}).items():
            found[f"{fname}:{key}"] = (shape, dtype)
            found.setdefault(key, (shape, dtype))
    return found


def artifact_inputs(signature: dict) -> list | None:
    """The input signature of a graphopt artifact or ONNX model held in the output, if any."""
    for desc in signature.get("files", {}).values():
        if "artifact" in desc:
            return desc["artifact"]["inputs"]
    for desc in signature.get("files", {}).values():
        if "inputs" in desc:
            return desc["inputs"]
    return None


def describe(signature: dict) -> str:
    """One short line: file names and array shapes, for log/diff/errors."""
    parts = []
    for fname, desc in signature.get("files", {}).items():
        if "arrays" in desc:
            inner = ", ".join(f"{k}:{'x'.join(map(str, s))} {d}" for k, (s, d) in desc["arrays"].items())
            parts.append(f"{fname}[{inner}]")
        elif "artifact" in desc or "inputs" in desc:
            ins = (desc.get("artifact") or desc)["inputs"]
            parts.append(f"{fname}[in " + ", ".join(f"{n}:{'x'.join(map(str, s))}" for n, s, _ in ins) + "]")
        else:
            parts.append(fname)
    return "; ".join(parts)
