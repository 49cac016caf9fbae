"""Read an ONNX file and make sure it is a well-formed model before anything else.

Why a wrapper around `onnx.load`: protobuf parsing is lenient (garbage or a
truncated file often decodes into a half-empty `ModelProto` without complaint) and
its failures come as multi-line C++ messages. Every later stage assumes a model
that passed `onnx.checker`, so this is the one gate, and every way it can fail
becomes a one-line `ModelLoadError`.
"""

from __future__ import annotations

import os
from pathlib import Path

import onnx

from graphopt.errors import ModelLoadError, first_line

# onnx.checker refuses in-memory protos of 2 GiB and more; check those by path.
_PROTO_LIMIT = 2**31 - 1


def load_model(path: str | os.PathLike) -> onnx.ModelProto:
    """Load `path` (with external data from its directory) and run onnx.checker.

    Raises ModelLoadError for a missing file, bytes that are not an ONNX model,
    missing external data, or a model the checker rejects.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"model file not found: {path}")
    try:
        model = onnx.load(str(path), load_external_data=True)
    except Exception as exc:  # DecodeError, OSError, ValidationError for missing data
        if "Error parsing message" in str(exc):
            raise ModelLoadError(f"{path.name} is not a valid ONNX protobuf "
                                 "(truncated, or not an ONNX file)") from exc
        raise ModelLoadError(f"cannot read ONNX model {path.name}: {first_line(exc)}") from exc
    _check_structure(model, path)
    try:
        if model.ByteSize() > _PROTO_LIMIT:
            onnx.checker.check_model(str(path))
        else:
            onnx.checker.check_model(model)
    except Exception as exc:  # onnx.checker.ValidationError and friends
        raise ModelLoadError(f"invalid ONNX model {path.name}: {first_line(exc)}") from exc
    return model


def _check_structure(model: onnx.ModelProto, path: Path) -> None:
    """Catch what lenient protobuf decoding lets through before the checker runs.

    The checker accepts a graph with no outputs; nothing downstream can plan or run
    one, so it is refused here with a message naming the likely cause.
    """
    if not model.HasField("graph") or not model.opset_import:
        raise ModelLoadError(f"{path.name} is not an ONNX model (no graph or opset; truncated?)")
    if not model.graph.output:
        raise ModelLoadError(f"{path.name}: the graph has no outputs")

