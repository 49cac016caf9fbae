"""Host-side swap functions the planned program calls (R.call_packed).

    graphopt.swap_out(tensor, slot)   device -> host copy into slot's host buffer
    graphopt.swap_wait_out(slot)      the copy-out of slot is complete
    graphopt.swap_in(tensor, slot)    host -> device copy into a fresh arena view
    graphopt.swap_wait_in(slot)       the copy-in of slot is complete
    graphopt.drop(tensor, slot)       the tensor is dropped, to be recomputed later

On CPU the copies are real (numpy host buffers, separate from the arena) and
synchronous, so the waits have nothing to wait for. With `poison(True)` a
swapped-out device tensor is overwritten (NaN for floats) right after its copy:
a program that read it again instead of the swapped-in copy would show it;
a dropped tensor (recomputation) is overwritten the same way. Without poison a
drop only counts: the arena range is simply reused.
The CUDA engine (cuda/swap_engine.cu) registers the same names with a copy
stream per direction, events and pinned host memory.
Imports only tvm's runtime and numpy, like the rest of runtime/.
"""

from __future__ import annotations

import numpy as np
import tvm_ffi

_HOST: dict[int, np.ndarray] = {}
_STATE = {"poison": False, "bytes_out": 0, "bytes_in": 0, "copies": 0, "bytes_dropped": 0, "drops": 0}


def poison(enabled: bool) -> None:
    """Overwrite device tensors after swap-out (tests)."""
    _STATE["poison"] = bool(enabled)


def stats() -> dict:
    """Bytes copied each way since the last reset, and the number of copies."""
    return {k: v for k, v in _STATE.items() if k != "poison"}


def reset() -> None:
    _HOST.clear()
    _STATE.update(bytes_out=0, bytes_in=0, copies=0, bytes_dropped=0, drops=0)


def swap_out(tensor, slot: int) -> None:
    """graphopt.swap_out on CPU: copies `tensor` into slot's host buffer."""
    host = tensor.numpy()  # a copy: the arena range may be reused from now on
    _HOST[int(slot)] = host
    _STATE["bytes_out"] += host.nbytes
    _STATE["copies"] += 1
    if _STATE["poison"]:
        _overwrite(tensor, host.shape, host.dtype)


def _overwrite(tensor, shape, dtype) -> None:
    junk = np.full(shape, np.nan if np.dtype(dtype).kind == "f" else -1, dtype=dtype)
    tensor.copyfrom(junk)


def _drop(tensor, _slot: int) -> None:
    shape, dtype = tuple(int(d) for d in tensor.shape), np.dtype(str(tensor.dtype))
    _STATE["bytes_dropped"] += int(np.prod(shape)) * dtype.itemsize
    _STATE["drops"] += 1
    if _STATE["poison"]:
        _overwrite(tensor, shape, dtype)


def swap_in(tensor, slot: int) -> None:
    """graphopt.swap_in on CPU: copies slot's host buffer back into `tensor`."""
    host = _HOST.pop(int(slot))
    tensor.copyfrom(host)
    _STATE["bytes_in"] += host.nbytes
    _STATE["copies"] += 1


def _wait(_slot: int) -> None:
    """CPU copies are synchronous."""


def register() -> None:
    """(Re)registers the CPU functions under all five names, replacing any others
    (the CUDA engine's, say); done once at import."""
    for name, fn in (("graphopt.swap_out", swap_out), ("graphopt.swap_in", swap_in), ("graphopt.drop", _drop),
                     ("graphopt.swap_wait_out", _wait), ("graphopt.swap_wait_in", _wait)):
        tvm_ffi.register_global_func(name, fn, override=True)


register()
