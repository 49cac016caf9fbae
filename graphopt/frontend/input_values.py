"""`--input-value NAME=V[,V...]`: an input fixed at compile time, checked on every call.

Why: some models branch on an input's value (silero-vad's `sr` picks the 8 kHz or the 16 kHz
subgraph through an If), so their output shapes depend on data and a static plan cannot hold
them; with the value fixed the branch folds away and the model compiles. The input stays part
of the artifact's contract: the manifest lists it under `pinned_inputs` with its value, and the
runtime accepts a call that passes it only when it holds exactly that value (a caller written
for ONNX Runtime keeps feeding it), or omits it. A different value is a one-line InputError,
never an answer computed for the value the artifact was not built for.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import onnx

from graphopt.errors import InputError

MAX_VALUES = 4096  # a pinned input is a setting (a rate, a flag, a length), not data


def parse_input_value(text: str) -> tuple[str, tuple[float, ...]]:
    """NAME=V or NAME=V1,V2,... as (name, values); numbers only."""
    name, sep, rest = text.partition("=")
    if not sep or not name or not rest:
        raise InputError(f"--input-value {text!r}: expected NAME=V or NAME=V1,V2,...")
    try:
        values = tuple(float(v) for v in rest.split(","))
    except ValueError:
        raise InputError(f"--input-value {text!r}: the values must be numbers") from None
    if len(values) > MAX_VALUES:
        raise InputError(f"--input-value {name}: {len(values)} values; at most {MAX_VALUES} (it fixes a setting)")
    return name, values


def bake_input_values(model: onnx.ModelProto, values: Mapping[str, tuple[float, ...]]
                      ) -> tuple[onnx.ModelProto, list[dict]]:
    """`model` with each named input turned into a weight holding its value, and the manifest
    entries ({name, shape, dtype, value}) the runtime checks calls against."""
    if not values:
        return model, []
    inputs = {vi.name: vi for vi in model.graph.input}
    weights = {t.name for t in model.graph.initializer}
    baked = onnx.ModelProto()
    baked.CopyFrom(model)
    pinned = []
    for name, raw in sorted(values.items()):
        if name not in inputs or name in weights:
            real = [n for n in inputs if n not in weights]
            raise InputError(f"--input-value {name}: the model has no input {name!r}; its inputs are: "
                             f"{', '.join(real) or '(none)'}")
        array = _typed_value(inputs[name], raw)
        baked.graph.initializer.append(onnx.numpy_helper.from_array(array, name))
        pinned.append({"name": name, "shape": list(array.shape), "dtype": array.dtype.name,
                       "value": array.ravel().tolist()})
    kept = [vi for vi in baked.graph.input if vi.name not in values]
    del baked.graph.input[:]
    baked.graph.input.extend(kept)
    return baked, pinned


def _typed_value(vi: onnx.ValueInfoProto, raw: tuple[float, ...]) -> np.ndarray:
    """The values in the input's element type and declared shape (a dim without a value takes the count)."""
    tensor_type = vi.type.tensor_type
    dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor_type.elem_type)
    if dtype.kind not in "biuf":
        raise InputError(f"--input-value {vi.name}: the input is {dtype.name}; only numeric and bool inputs can be fixed")
    array = np.asarray(raw, dtype=np.float64)
    typed = array.astype(dtype)
    if not np.array_equal(typed.astype(np.float64), array):
        raise InputError(f"--input-value {vi.name}: {list(raw)} is not exactly representable as {dtype.name}")
    dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim]
    shape = [len(raw) if d is None else d for d in dims] if len(dims) <= 1 else dims
    if None in shape or int(np.prod(shape, dtype=np.int64)) != typed.size:
        raise InputError(f"--input-value {vi.name}: {typed.size} value(s) for an input of shape "
                         f"{'x'.join(str(d) if d is not None else '?' for d in dims) or 'scalar'}")
    return typed.reshape(shape)

