"""The CUDA swap engine (cuda/swap_engine.cu) behind the program's swap steps.

Registers the same packed functions as graphopt.runtime.swap does for CPU:

    graphopt.swap_out(tensor, slot)   D2H copy on the engine's copy stream, into pinned memory
    graphopt.swap_wait_out(slot)      TVM's compute stream waits for that copy (the host does not)
    graphopt.swap_in(tensor, slot)    H2D copy on the other copy stream
    graphopt.swap_wait_in(slot)       TVM's compute stream waits for it

The compute stream is TVM-FFI's current environment stream for the device
(`tvm_ffi.get_raw_stream`), which is what TVM's CUDA runtime launches kernels
on (TVMFFIEnvGetStream); 0 means the legacy default stream. It is read again at
every call, so a caller that runs the VM under `tvm_ffi.use_raw_stream` is
ordered correctly too.

The engine library is found, in order: $GRAPHOPT_SWAP_LIB, libgraphopt_swap.so
next to this file (the package install builds it there when nvcc exists). Its
libcudart.so.N is resolved by the dynamic loader; a bundle ships one next to the
engine and it is preloaded from there. Imports only ctypes, numpy-free.

The engine is one per process and its slots are the program's slot numbers:
one swapping program runs at a time in a process (sessions are not
thread-safe anyway). Pinned buffers are allocated at a slot's first swap-out
and kept, so the first step pays cudaHostAlloc and later steps do not.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

from graphopt.errors import ArtifactError, first_line

LIBRARY_NAME = "libgraphopt_swap.so"
NAMES = ("graphopt.swap_out", "graphopt.swap_in", "graphopt.swap_wait_out", "graphopt.swap_wait_in")
_STATE: dict = {"engine": None}
_KDLCUDA = 2  # DLPack device type of CUDA memory


class SwapEngineError(RuntimeError):
    """A CUDA call inside the engine failed; the message is the engine's."""


def library_path() -> Path:
    """Where the engine is, or ArtifactError saying how to get one."""
    env = os.environ.get("GRAPHOPT_SWAP_LIB")
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parent / LIBRARY_NAME)
    for path in candidates:
        if path.is_file():
            return path
    tried = ", ".join(str(p) for p in candidates)
    raise ArtifactError(f"this CUDA artifact swaps tensors but the swap engine {LIBRARY_NAME} is missing (tried {tried}); "
                        "reinstall graphopt where nvcc exists, or `make -C cuda` and set GRAPHOPT_SWAP_LIB")


def preload_cudart(directory: Path) -> Path | None:
    """Loads a libcudart.so.* shipped in `directory` (a bundle) globally, so that
    TVM's CUDA runtime and the engine bind to it; None when there is none."""
    for path in sorted(Path(directory).glob("libcudart.so.*")):
        ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
        return path
    return None


def ensure_tvm_cuda_runtime() -> None:
    """Loads libtvm_runtime_cuda when `import tvm` did not (runtime-only TVM, as in
    a bundle, skips backend autoloading); raises ArtifactError naming the cause."""
    from tvm_ffi.libinfo import load_lib_ctypes

    from graphopt.runtime import tvm_rt

    loaded = tvm_rt.loaded_libs()  # tvm.base's when `tvm` is imported, else the runtime-only load's
    if "tvm_runtime_cuda" in loaded:
        return
    runtime_dir = Path(loaded["tvm_runtime"]._name).resolve().parent
    preload_cudart(Path(__file__).resolve().parent) or preload_cudart(runtime_dir)
    try:
        loaded["tvm_runtime_cuda"] = load_lib_ctypes("tvm", "tvm_runtime_cuda", "RTLD_LOCAL",
                                                     extra_lib_paths=[runtime_dir])
    except (OSError, RuntimeError) as exc:
        first = first_line(exc)
        raise ArtifactError(f"artifact targets CUDA but no CUDA device is available here "
                            f"(TVM's CUDA runtime did not load: {first})") from None


class CudaSwapEngine:
    """ctypes wrapper of the engine's C ABI; one per process (the engine is a singleton)."""

    def __init__(self, path: Path, device_id: int) -> None:
        preload_cudart(path.parent)
        try:
            self.lib = ctypes.CDLL(str(path))
        except OSError as exc:
            raise ArtifactError(f"cannot load the swap engine {path} ({exc})") from None
        self._declare()
        self.path = path
        self.device_id = device_id
        import tvm_ffi

        self._ffi_device = tvm_ffi.device("cuda", device_id)  # made once: the stream is read on every call
        self.stream = self._current_stream()
        self._check(self.lib.graphopt_swap_init(device_id, self.stream), "init")
        self.bytes_out = self.bytes_in = self.copies = 0

    def _declare(self) -> None:
        lib = self.lib
        lib.graphopt_swap_init.argtypes = [ctypes.c_int, ctypes.c_void_p]
        lib.graphopt_swap_set_compute_stream.argtypes = [ctypes.c_void_p]
        for name in ("graphopt_swap_out", "graphopt_swap_in"):
            getattr(lib, name).argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t]
        for name in ("graphopt_swap_wait_out", "graphopt_swap_wait_in", "graphopt_swap_set_timing"):
            getattr(lib, name).argtypes = [ctypes.c_int]
        lib.graphopt_swap_timeline.argtypes = [ctypes.POINTER(ctypes.c_double), ctypes.c_int]
        lib.graphopt_swap_pinned_bytes.restype = ctypes.c_size_t
        lib.graphopt_swap_last_error.restype = ctypes.c_char_p

    def _current_stream(self) -> int | None:
        import tvm_ffi

        return tvm_ffi.get_raw_stream(self._ffi_device) or None

    def _check(self, status: int, what: str) -> None:
        if status != 0:
            raise SwapEngineError(f"swap engine {what}: {self.lib.graphopt_swap_last_error().decode(errors='replace')}")

    def _follow_stream(self) -> None:
        stream = self._current_stream()
        if stream != self.stream:
            self.stream = stream
            self.lib.graphopt_swap_set_compute_stream(stream)

    def swap_out(self, tensor, slot: int) -> None:
        self._follow_stream()
        nbytes = tensor_bytes(tensor)
        self._check(self.lib.graphopt_swap_out(int(slot), tensor.data_ptr(), nbytes), "swap_out")
        self.bytes_out += nbytes
        self.copies += 1

    def swap_in(self, tensor, slot: int) -> None:
        self._follow_stream()
        nbytes = tensor_bytes(tensor)
        self._check(self.lib.graphopt_swap_in(int(slot), tensor.data_ptr(), nbytes), "swap_in")
        self.bytes_in += nbytes
        self.copies += 1

    def wait_out(self, slot: int) -> None:
        self._follow_stream()
        self._check(self.lib.graphopt_swap_wait_out(int(slot)), "swap_wait_out")

    def wait_in(self, slot: int) -> None:
        self._follow_stream()
        self._check(self.lib.graphopt_swap_wait_in(int(slot)), "swap_wait_in")

    def set_timing(self, enabled: bool) -> None:
        self._check(self.lib.graphopt_swap_set_timing(int(enabled)), "set_timing")

    def begin_step(self) -> None:
        """Timing mode: marks t=0 on the compute stream before a timed run."""
        self._follow_stream()
        self._check(self.lib.graphopt_swap_begin_step(), "begin_step")

    def timeline(self, max_rows: int = 4096) -> list[dict]:
        """Per copy of the last timed step (call after a device sync): ms since begin_step."""
        rows = (ctypes.c_double * (6 * max_rows))()
        count = self.lib.graphopt_swap_timeline(rows, max_rows)
        self._check(0 if count >= 0 else -1, "timeline")
        keys = ("slot", "direction", "bytes", "start_ms", "end_ms", "wait_ms")
        out = []
        for i in range(count):
            row = dict(zip(keys, rows[6 * i: 6 * i + 6]))
            row.update(slot=int(row["slot"]), bytes=int(row["bytes"]),
                       direction="d2h" if row["direction"] == 0 else "h2d")
            out.append(row)
        return out

    def stats(self) -> dict:
        return {"bytes_out": self.bytes_out, "bytes_in": self.bytes_in, "copies": self.copies,
                "pinned_bytes": int(self.lib.graphopt_swap_pinned_bytes())}


def tensor_bytes(tensor) -> int:
    """Bytes of a contiguous TVM tensor (the arena views the program swaps are)."""
    if not tensor.is_contiguous():
        raise SwapEngineError("swap engine: tensor is not contiguous")
    dtype = tensor.dtype
    return int(tensor.numel()) * (int(dtype.bits) * int(dtype.lanes) + 7) // 8


def install(device_id: int = 0) -> CudaSwapEngine:
    """Loads the engine once and registers the swap functions.

    The names are process-global, so what is registered dispatches on the
    tensor's device: a CPU artifact's swaps loaded in the same process still get
    graphopt.runtime.swap's copies. Waits go to the engine (the CPU ones do
    nothing; waiting on a slot the engine never copied waits for nothing).
    graphopt.runtime.swap is imported first so that its import-time
    registration can never come after, and replace, this one."""
    import tvm_ffi

    from graphopt.runtime import swap as cpu_swap

    engine = _STATE["engine"]
    if engine is None:
        engine = _STATE["engine"] = CudaSwapEngine(library_path(), device_id)

    def swap_out(tensor, slot: int) -> None:
        (engine.swap_out if _on_cuda(tensor) else cpu_swap.swap_out)(tensor, slot)

    def swap_in(tensor, slot: int) -> None:
        (engine.swap_in if _on_cuda(tensor) else cpu_swap.swap_in)(tensor, slot)

    for name, fn in zip(NAMES, (swap_out, swap_in, engine.wait_out, engine.wait_in)):
        tvm_ffi.register_global_func(name, fn, override=True)
    return engine


def _on_cuda(tensor) -> bool:
    return tensor.device.dlpack_device_type() == _KDLCUDA


def engine() -> CudaSwapEngine | None:
    """The installed engine, if a CUDA artifact with swaps was loaded."""
    return _STATE["engine"]
