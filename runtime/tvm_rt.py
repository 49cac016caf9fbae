"""TVM for the runtime: its runtime library only, unless the process already imported `tvm`.

`import tvm` loads TVM's whole compiler (libtvm_compiler.so, ~250 MB, ~145 MB of
RSS) and its Python IR packages. Running an artifact needs none of it: the VM,
the tensors and the kernels' runtime calls live in libtvm_runtime.so (~3 MB),
reached through TVM-FFI. So, when `tvm` is not imported yet, this module loads
libtvm_runtime.so itself (found as `tvm` finds it: TVM_LIBRARY_PATH first, then
the installed package's lib/, without executing tvm's __init__) and works
through `tvm_ffi` alone: "runtime-only" mode.

Both orders keep working in one process:
- compile first (`tvm` imported): the runtime uses `tvm` exactly as before, "full" mode;
- runtime first, compile later: a later `import tvm` loads the same
  libtvm_runtime.so (the dynamic loader returns the already-loaded copy) and
  then the compiler, as usual: nothing of tvm's Python package was imported
  before, so it initialises normally. Sessions made before keep working.

`mode()` says which one a new session gets; `Session.tvm_mode` which one it got.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import importlib.util
import os
import shutil
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np

RUNTIME_ONLY = "runtime-only"
FULL = "full"

_LOADED_LIBS: dict = {}  # runtime-only mode: basename -> CDLL, as tvm.base._LOADED_LIBS
_VERSION: str | None = None
_FUNCS: dict = {}  # global function name -> tvm_ffi.Function (valid in both modes)
_LOCK = threading.Lock()  # serve's worker threads may load their first sessions at once
RPC_SESS_MASK = 128  # tvm.rpc.base.RPC_SESS_MASK
POOLED_ALLOCATOR = 2  # tvm.runtime.vm.VirtualMachine.POOLED_ALLOCATOR


def full_tvm_loaded() -> bool:
    return "tvm" in sys.modules


def mode() -> str:
    """"full" when this process imported `tvm` (a compiler did), else "runtime-only"."""
    return FULL if full_tvm_loaded() else RUNTIME_ONLY


def _package_dir() -> Path:
    spec = importlib.util.find_spec("tvm")  # finds the package without running its __init__
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("TVM is not installed (no `tvm` package found)")
    return Path(list(spec.submodule_search_locations)[0])


def _lib_paths(pkg: Path) -> list[Path]:
    """tvm.libinfo.package_lib_paths(), without importing tvm."""
    paths = [Path(os.environ["TVM_LIBRARY_PATH"])] if os.environ.get("TVM_LIBRARY_PATH") else []
    return paths + [pkg / "lib", pkg / ".." / ".." / "build" / "lib", pkg / ".." / ".." / "lib"]


def loaded_libs() -> dict:
    """The core TVM libraries loaded, keyed by basename (tvm.base._LOADED_LIBS in full mode)."""
    if full_tvm_loaded():
        import tvm.base

        return tvm.base._LOADED_LIBS
    ensure_loaded()
    return _LOADED_LIBS


def ensure_loaded() -> None:
    """Loads libtvm_runtime.so (RTLD_GLOBAL, as tvm.base does) unless a TVM is loaded already."""
    if full_tvm_loaded() or "tvm_runtime" in _LOADED_LIBS:
        return
    from tvm_ffi.libinfo import load_lib_ctypes

    with _LOCK:
        if "tvm_runtime" not in _LOADED_LIBS:
            _LOADED_LIBS["tvm_runtime"] = load_lib_ctypes("tvm", "tvm_runtime", "RTLD_GLOBAL",
                                                          extra_lib_paths=_lib_paths(_package_dir()))


def version() -> str:
    """tvm.__version__, read from tvm/_version.py in runtime-only mode."""
    global _VERSION
    if full_tvm_loaded():
        import tvm

        return tvm.__version__
    if _VERSION is None:
        path = _package_dir() / "_version.py"
        scope: dict = {}
        try:
            exec(compile(path.read_text(), str(path), "exec"), scope)  # setuptools_scm's plain assignments
            _VERSION = str(scope["version"])
        except (OSError, KeyError, SyntaxError):
            _VERSION = "0.27.0"  # tvm.libinfo's fallback for a source tree without a build
    return _VERSION


def global_func(name: str):
    func = _FUNCS.get(name)
    if func is None:
        ensure_loaded()
        import tvm_ffi

        func = _FUNCS[name] = tvm_ffi.get_global_func(name)
    return func


# ---------------------------------------------------------------- the few runtime calls a session makes


def device(kind: str, index: int = 0):
    if full_tvm_loaded():
        import tvm.runtime

        return tvm.runtime.cpu(index) if kind == "cpu" else tvm.runtime.cuda(index)
    ensure_loaded()
    import tvm_ffi

    return tvm_ffi.device(kind, index)


def device_exists(dev) -> bool:
    """tvm.runtime.Device.exist (kDevAttrExist = 0)."""
    return bool(global_func("runtime.GetDeviceAttr")(dev.dlpack_device_type(), dev.index, 0))


def sync(dev) -> None:
    global_func("runtime.Device_StreamSync")(dev, 0)


_DLPACK_CPU = 1  # kDLCPU
_DLPACK_DTYPES = frozenset({"float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16",
                            "uint32", "uint64", "bool"})


def tensor(array: np.ndarray, dev):
    """tvm.runtime.tensor(array, dev) for the numpy dtypes an artifact's signature allows."""
    if full_tvm_loaded():
        import tvm.runtime

        return tvm.runtime.tensor(array, dev)
    array = np.asarray(array, order="C")  # ascontiguousarray would make a 0-d array 1-d
    out = empty(array.shape, array.dtype, dev)
    copy_into(out, array)
    return out


def empty(shape: tuple[int, ...], dtype: np.dtype, dev):
    """An uninitialised tensor from TVM's own allocator (aligned as its kernels assume), in either mode."""
    import tvm_ffi

    return global_func("runtime.TVMTensorAllocWithScope")(tvm_ffi.Shape([int(d) for d in shape]),
                                                          tvm_ffi.dtype(np.dtype(dtype).name), dev, None)


def copy_into(out, array: np.ndarray) -> None:
    """Copies a C-ordered array of `out`'s shape and dtype into it (any device)."""
    global_func("runtime.TVMTensorCopyFromBytes")(out, array.ctypes.data_as(ctypes.c_void_p), array.nbytes)


def host_view(value) -> np.ndarray | None:
    """A writable numpy view of a CPU tensor of a numpy-native dtype (None for any other)."""
    if value.device.dlpack_device_type() == _DLPACK_CPU and str(value.dtype) in _DLPACK_DTYPES:
        return np.from_dlpack(value)
    return None


def to_numpy(value) -> np.ndarray:
    """A numpy copy of a tensor. A CPU tensor of a numpy-native dtype is read through DLPack and
    copied once (the fast path a small model's per-call cost depends on); the rest goes through
    TVM's own copy."""
    view = host_view(value)
    if view is not None:
        return view.copy()
    if hasattr(value, "numpy"):  # full mode: tvm.runtime.Tensor
        return value.numpy()
    name = str(value.dtype)
    try:
        dtype = np.dtype(name)
    except TypeError:
        import ml_dtypes  # bfloat16, float8_*: as tvm.runtime.Tensor.numpy

        dtype = np.dtype(getattr(ml_dtypes, name))
    out = np.empty(tuple(int(d) for d in value.shape), dtype=dtype)
    global_func("runtime.TVMTensorCopyToBytes")(value, out.ctypes.data_as(ctypes.c_void_p), out.nbytes)
    return out


def load_module(path: str):
    """The compiled library at `path`, never a stale one (see _loadable_copy)."""
    if not os.path.isfile(path):
        raise ValueError(f"cannot find file {path}")
    with _loadable_copy(os.path.realpath(path)) as loadable:
        if full_tvm_loaded():
            import tvm.runtime

            return tvm.runtime.load_module(loadable)
        ensure_loaded()
        import tvm_ffi

        return tvm_ffi.load_module(loadable)


_LOADED_DIGESTS: dict[str, str] = {}  # path -> digest of the library first loaded from it
_LOADED_LOCK = threading.Lock()


@contextlib.contextmanager
def _loadable_copy(path: str):
    """`path`, or a copy under a fresh name when this process loaded other bytes from `path` before.

    Why: the dynamic loader answers dlopen of a name it has loaded with the library already in
    memory, whatever the file holds now. Recompiling into the same artifact folder and loading it
    again in one process (a test, a notebook, a tuning loop, a service reloading a model) ran the
    old kernels on the new weights: with matching signatures a silent wrong answer. The copy is
    removed once loaded (the mapping outlives the file)."""
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    with _LOADED_LOCK:
        first = _LOADED_DIGESTS.setdefault(path, digest)
    if first == digest:
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="graphopt-library-") as folder:
        copy = os.path.join(folder, f"{digest[:16]}-{os.path.basename(path)}")
        shutil.copyfile(path, copy)
        yield copy


class RuntimeVM:
    """tvm.runtime.vm.VirtualMachine's construction (pooled allocator), on tvm_ffi only."""

    def __init__(self, library, dev) -> None:
        self.module = library["vm_load_executable"]()
        devs = [dev]
        if dev.dlpack_device_type() % RPC_SESS_MASK != 1:  # kDLCPU: the VM needs it for shape functions
            devs.append(device("cpu", 0))
        args: list[int] = []
        for d in devs:
            args += [d.dlpack_device_type() % RPC_SESS_MASK, d.index, POOLED_ALLOCATOR]
        self.module["vm_initialization"](*args)

    def __getitem__(self, key: str):
        return self.module[key]


def virtual_machine(library, dev):
    if full_tvm_loaded():
        from tvm.runtime.vm import VirtualMachine

        return VirtualMachine(library, dev)
    return RuntimeVM(library, dev)
