"""Loads the compiled inner loop of the exact placement search, if it was built.

`pip install` compiles `passes/_native/dsa.cpp` into the extension module
`graphopt.passes._dsa_native` (see setup.py). The module exists only so that
pip builds and installs the library; its two C functions (the search, and
the same search around fixed buffers) are called through ctypes with numpy arrays, which keeps the C side free of Python objects.
Where the build failed (no compiler), `fits_native` is None and the search
falls back to the pure-Python twin in `dsa_python.py`, with a loud warning
(the same answers, orders of magnitude slower).
"""

from __future__ import annotations

import ctypes
import logging
import warnings

import numpy as np

log = logging.getLogger(__name__)

_I64 = np.ctypeslib.ndpointer(dtype=np.int64, flags="C_CONTIGUOUS")


def _load():
    """The C functions (fits, fits_around), or None (with the reason logged) when unavailable."""
    try:
        from graphopt.passes import _dsa_native
    except ImportError as exc:
        log.debug("native DSA search not built: %s", exc)
        return None
    lib = ctypes.CDLL(_dsa_native.__file__)
    fn = lib.graphopt_dsa_fits
    fn.argtypes = [ctypes.c_int, _I64, _I64, _I64, _I64, ctypes.c_char_p, ctypes.c_int64, ctypes.c_double,
                   ctypes.c_int64, _I64, _I64]
    fn.restype = ctypes.c_int
    around = getattr(lib, "graphopt_dsa_fits_around", None)
    if around is not None:
        around.argtypes = [ctypes.c_int, _I64, _I64, _I64, _I64, ctypes.c_char_p, ctypes.c_int64, ctypes.c_double,
                           ctypes.c_int64, ctypes.c_int, _I64, _I64, _I64, _I64, _I64, _I64]
        around.restype = ctypes.c_int
    return fn, around


_FN, _AROUND = _load() or (None, None)
_warned = False


def available() -> bool:
    """Whether the compiled search is there."""
    return _FN is not None


def around_available() -> bool:
    """Whether the compiled search around fixed buffers is there (no Python twin)."""
    return _AROUND is not None


def warn_missing() -> None:
    """Says once, loudly, that the exact search runs in pure Python."""
    global _warned
    if not _warned:
        _warned = True
        msg = ("graphopt: the compiled placement search (graphopt.passes._dsa_native) is not built; "
               "using the pure-Python search, which is far slower. Reinstall with a C++ compiler "
               "(pip install -e .) to build it.")
        warnings.warn(msg, RuntimeWarning, stacklevel=3)
        log.warning(msg)


def fits_native(starts: np.ndarray, ends: np.ndarray, sizes: np.ndarray, aligns: np.ndarray,
                keys: str, cap: int, seconds: float, node_limit: int) -> tuple[int, np.ndarray | None, int]:
    """(status, offsets, nodes): 1 fits (offsets), 0 proved not to fit, -1 budget spent.

    `keys`: the preorder (letters of dsa_search.PREORDERS), applied to every
    piece the search splits off, with T measured on what is left unplaced.
    """
    n = len(sizes)
    arrays = [np.ascontiguousarray(a, dtype=np.int64) for a in (starts, ends, sizes, aligns)]
    offsets = np.zeros(n, dtype=np.int64)
    stats = np.zeros(4, dtype=np.int64)
    status = _FN(n, *arrays, keys.encode(), int(cap), float(max(seconds, 0.0)), int(node_limit), offsets, stats)
    return status, (offsets if status == 1 else None), int(stats[0])


def fits_around(starts: np.ndarray, ends: np.ndarray, sizes: np.ndarray, aligns: np.ndarray, keys: str, cap: int,
                seconds: float, node_limit: int, fixed: tuple[np.ndarray, ...]) -> tuple[int, np.ndarray | None, int]:
    """`fits_native` with `fixed` = (starts, ends, offsets, sizes) of buffers already placed: each
    searched buffer goes in the lowest gap they leave. 1 fits, -1 budget spent, 0 none found
    (not a proof: the search skips higher gaps)."""
    n = len(sizes)
    arrays = [np.ascontiguousarray(a, dtype=np.int64) for a in (starts, ends, sizes, aligns)]
    held = [np.ascontiguousarray(a, dtype=np.int64) for a in fixed]
    offsets = np.zeros(n, dtype=np.int64)
    stats = np.zeros(4, dtype=np.int64)
    status = _AROUND(n, *arrays, keys.encode(), int(cap), float(max(seconds, 0.0)), int(node_limit),
                     len(held[0]), *held, offsets, stats)
    return status, (offsets if status == 1 else None), int(stats[0])
