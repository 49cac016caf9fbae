"""Converters graphopt adds to TVM's ONNX importer: op type -> OnnxOpConverter subclass.

Why a table of our own: TVM 0.27's importer lacks some ops graphopt must compile natively
(recurrent layers, so their state lives in the planned arena) and knows nothing of the
fallback kernels graphopt inserts for everything else. `graphopt.frontend.importer` merges
this table into TVM's for the duration of one import (`converters_added`), so TVM itself is
never modified for other users of the process.

Each module here imports TVM; `converters()` loads them only when an import runs.
"""

from __future__ import annotations

import functools


@functools.lru_cache(maxsize=1)
def converters() -> dict[str, type]:
    """Every converter graphopt adds, keyed by ONNX op type (a later entry wins)."""
    table: dict[str, type] = {}
    for module in _modules():
        table.update(module.CONVERTERS)
    return table


def _modules() -> list:
    """The converter modules; each defines CONVERTERS = {op_type: converter class}."""
    from graphopt.frontend.converters import bitshift, clip, conv_transpose, fallback, recurrent, swish

    return [bitshift, clip, conv_transpose, fallback, recurrent, swish]
