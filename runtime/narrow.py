"""Narrow inputs and outputs (float8, float4, int4, int2): the caller's dtype at the boundary,
the held (wider) dtype inside.

graphopt.frontend.narrow_types holds every narrow tensor as a wider type that represents its
values exactly; the manifest names both (`dtype`, `held_as`). A narrow input is widened as it
is staged and a narrow output narrowed as it is returned, both exact (the held values lie on the
narrow type's grid). ml_dtypes, which defines these numpy types, is imported only here, only
for artifacts that have such an input or output.
"""

from __future__ import annotations

import numpy as np


def caller_dtype(name: str) -> np.dtype:
    """The numpy dtype `name` (e.g. 'float8_e4m3fn'), registered by ml_dtypes."""
    import ml_dtypes  # noqa: F401  (registers the narrow dtypes with numpy)

    return np.dtype(name)


def widen(array: np.ndarray, held_as: str) -> np.ndarray:
    return array.astype(held_as)


def narrow(value: np.ndarray, dtype: str) -> np.ndarray:
    return value.astype(caller_dtype(dtype))
