"""What an artifact stores against what the ONNX file holds: weight bytes, file sizes, excess tensors.

Why: a user compares the artifact folder with the .onnx file they started from. The target
(issue #19) is stored parameter bytes <= 1.05x the model's weight bytes; above that, the stored
tensors that explain the excess are listed.

"Weight bytes" are the ONNX graph's initializers plus the tensors of its Constant nodes: exported
PaddlePaddle models (the OCR models) hold every weight in a Constant node and have no initializer.
Stored tensors are read from the .npy headers inside params.npz (no array is loaded).
"""

from __future__ import annotations

import math
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
from onnx import helper

from graphopt.artifact import LIBRARY, PARAMS, load_manifest

TARGET_RATIO = 1.05  # stored params / weight bytes allowed before the excess must be explained
LISTED = 8  # excess tensors listed per model, largest first


def tensor_bytes(tensor: onnx.TensorProto) -> int:
    """Bytes of one ONNX tensor, from its dims and type: nothing is decoded."""
    return math.prod(tensor.dims) * helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize


def onnx_weights(model: onnx.ModelProto) -> list[int]:
    """Sizes of the weights a model carries: initializers and Constant-node tensors (main graph)."""
    sizes = [tensor_bytes(t) for t in model.graph.initializer]
    for node in model.graph.node:
        if node.op_type == "Constant":
            sizes += [tensor_bytes(a.t) for a in node.attribute if a.name == "value"]
    return sizes


def stored_params(art: Path) -> list[tuple[str, tuple[int, ...], int]]:
    """(name, shape, bytes) of every tensor in params.npz, in the program's order, from the headers."""
    manifest = load_manifest(art)
    names = dict(zip(manifest["param_keys"], manifest.get("param_names", manifest["param_keys"]), strict=False))
    out = []
    with zipfile.ZipFile(art / PARAMS) as archive:
        for key in manifest["param_keys"]:
            with archive.open(f"{key}.npy") as member:
                shape, dtype = _npy_header(member)
            out.append((names.get(key, key), tuple(shape), math.prod(shape) * dtype.itemsize))
    return out


def _npy_header(member) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of one .npy stream, from its header only."""
    fmt = np.lib.format
    major, _minor = fmt.read_magic(member)
    read = fmt.read_array_header_1_0 if major == 1 else fmt.read_array_header_2_0
    shape, _fortran_order, dtype = read(member)
    return tuple(shape), dtype


def excess_tensors(stored: list[tuple[str, tuple[int, ...], int]], weights: list[int]) -> list[dict]:
    """Stored tensors with no ONNX weight of the same size, largest first.

    Why by size: a weight prepared at compile time (packed, transposed: graphopt.lowering.prepack)
    keeps its element count but gets a new name, so a size match is the only link the artifact
    keeps. A tensor listed here is one the compile created (a folded constant, a padded pack)."""
    unmatched = Counter(weights)
    extra = []
    for name, shape, nbytes in sorted(stored, key=lambda s: -s[2]):
        if unmatched[nbytes] > 0:
            unmatched[nbytes] -= 1
        else:
            extra.append({"name": name, "shape": list(shape), "bytes": nbytes})
    return extra[:LISTED]


def artifact_sizes(onnx_path: Path, art: Path) -> dict:
    """File sizes and weight bytes of the ONNX model and its artifact, the ratio and any excess."""
    weights = onnx_weights(onnx.load(str(onnx_path), load_external_data=False))
    stored = stored_params(art)
    weight_bytes, stored_bytes = sum(weights), sum(s[2] for s in stored)
    ratio = stored_bytes / weight_bytes if weight_bytes else None
    over = ratio is not None and ratio > TARGET_RATIO
    return {"onnx_file_bytes": onnx_path.stat().st_size, "onnx_weight_bytes": weight_bytes,
            "onnx_weights": len(weights), "stored_params_bytes": stored_bytes, "stored_params": len(stored),
            "params_file_bytes": (art / PARAMS).stat().st_size, "library_file_bytes": (art / LIBRARY).stat().st_size,
            "params_ratio": ratio, "params_over_target": over,
            "excess_tensors": excess_tensors(stored, weights) if over else []}
