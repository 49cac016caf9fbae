"""The artifact's build id: what it hashes, computed in one place.

The build id (manifest `build_id`) is the sha-256 of the canonical JSON of what
determines a build (graphopt.artifact.BUILD_FIELDS): the source model's hash, the
options (the tuning database by its content hash), the target and the versions.
It is known before compiling, so the tuner's cache and the pipeline store call
`predicted_id` and the compile driver stamps `id_fields` of the same inputs: the
two cannot drift. The manifest's `id` is another thing: the content id, which
also covers every file's hash and is known only once the artifact is written
(graphopt.artifact); that is the id callers pin and operators sign.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import onnx

from graphopt import __version__


def source_sha256(model: str | os.PathLike | onnx.ModelProto) -> str:
    """A model file is identified by its bytes as stored; an in-memory model by its
    deterministic serialization."""
    if isinstance(model, onnx.ModelProto):
        return hashlib.sha256(model.SerializeToString(deterministic=True)).hexdigest()
    from graphopt.artifact import sha256_file

    return sha256_file(Path(model))


def versions() -> dict:
    import tvm

    return {"graphopt": __version__, "tvm": tvm.__version__, "onnx": onnx.__version__}


def id_fields(source: str, options, target) -> dict:
    """The manifest fields the build id hashes, for a source hash, options and a TVM target."""
    from graphopt.lowering.target import target_record

    return {"source_sha256": source, "options": options.as_manifest(),
            "target": target_record(target), "versions": versions()}


def predicted_id(model: str | os.PathLike | onnx.ModelProto, options) -> str:
    """The build id the compile driver will stamp on `compile_model(model, ..., options)`."""
    from graphopt.artifact import build_id
    from graphopt.lowering.target import make_target

    return build_id(id_fields(source_sha256(model), options, make_target(options.target)))
