"""Where oneDNN is, and the shim built against it: the object linked into artifacts, and how.

oneDNN comes from the optional extra `graphopt[onednn]` (the PyPI wheels `onednn`, the
library, and `onednn-devel`, its headers). Both wheels install into the environment's
prefix (`lib/libdnnl.so.3`, `include/oneapi/dnnl/`), beside the SYCL, OpenCL and TBB
runtimes the PyPI build depends on. A user who asks for oneDNN kernels without it gets
OneDNNMissing, one line naming the extra: never a silent TVM fallback.

The shim (shim.cc) is compiled once per (source, oneDNN version, compiler) into a cache
folder: an object file that `export_library` links into the artifact's shared library with
`-ldnnl -ltbb` and an RPATH to the wheel's lib folder (DT_RPATH, not RUNPATH: libdnnl
itself has no RUNPATH, and only an RPATH is searched for its own dependencies, libtbb,
libsycl, libimf...). The artifact therefore needs the same environment's oneDNN wherever
it runs; the manifest's tuning-db hash is what records that it uses it.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

from graphopt.errors import GraphoptError

SHIM = Path(__file__).with_name("shim.cc")
EXTRA = "pip install 'graphopt[onednn]' (the onednn and onednn-devel wheels)"


class OneDNNMissing(GraphoptError):
    """oneDNN kernels were asked for, but the library, its headers or a C++ compiler is missing."""


def prefix() -> Path:
    """Where oneDNN is installed (lib/, include/): GRAPHOPT_ONEDNN_ROOT, else this environment's
    prefix, where the onednn wheels install. The variable exists to compare two oneDNN builds (the
    2026 SYCL/TBB wheel and the 2023 `onednn-cpu-gomp` one conflict as wheels of one environment)."""
    return Path(os.environ.get("GRAPHOPT_ONEDNN_ROOT") or sys.prefix)


def find() -> tuple[Path, Path]:
    """(lib folder holding libdnnl.so.3, include folder holding oneapi/dnnl/dnnl.hpp), or OneDNNMissing."""
    lib, include = prefix() / "lib", prefix() / "include"
    if not (lib / "libdnnl.so.3").exists():
        raise OneDNNMissing(f"oneDNN kernels need libdnnl.so.3 in {lib}: {EXTRA}")
    if not (include / "oneapi" / "dnnl" / "dnnl.hpp").exists():
        raise OneDNNMissing(f"oneDNN kernels need the oneDNN headers in {include}: {EXTRA}")
    if threading(include) == "TBB" and not (include / "oneapi" / "tbb").exists():
        raise OneDNNMissing(f"this oneDNN uses TBB: graphopt's shim needs the TBB headers in {include} (tbb-devel)")
    return lib, include


def threading(include: Path) -> str:
    """The CPU threading runtime this oneDNN was built with: "TBB", "OMP", "SEQ", "THREADPOOL"."""
    for line in (include / "oneapi" / "dnnl" / "dnnl_config.h").read_text().splitlines():
        if line.startswith("#define DNNL_CPU_THREADING_RUNTIME"):
            return line.split()[-1].removeprefix("DNNL_RUNTIME_")
    return "unknown"


def available() -> str | None:
    """None when oneDNN kernels can be built here, else why not (one line)."""
    try:
        find()
        _compiler()
    except OneDNNMissing as exc:
        return str(exc)
    return None


def _compiler() -> str:
    found = shutil.which(os.environ.get("CXX", "g++"))
    if found is None:
        raise OneDNNMissing("oneDNN kernels need a C++ compiler (g++, or $CXX) to build graphopt's shim")
    return found


def link_options() -> list[str]:
    """What export_library passes to the linker for an artifact holding oneDNN kernels."""
    lib, include = find()
    runtime = {"TBB": ["-ltbb"], "OMP": ["-fopenmp"]}.get(threading(include), [])
    # TVM puts options before the objects: without --no-as-needed the linker drops libdnnl as unused
    return [f"-L{lib}", "-Wl,--no-as-needed", "-ldnnl", *runtime, f"-Wl,--disable-new-dtags,-rpath,{lib}"]


def _cache_dir() -> Path:
    root = os.environ.get("GRAPHOPT_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "graphopt")
    return Path(root) / "onednn"


def _build(kind: str) -> Path:
    """The shim compiled as `kind` ("o" for artifacts, "so" for ctypes), cached by content."""
    lib, include = find()
    cxx = _compiler()
    version = (include / "oneapi" / "dnnl" / "dnnl_version.h").read_bytes()
    where = str(lib.resolve()).encode()
    tag = hashlib.sha256(SHIM.read_bytes() + version + where + cxx.encode() + kind.encode()).hexdigest()[:16]
    out = _cache_dir() / f"graphopt_dnnl-{tag}.{kind}"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".{os.getpid()}.tmp")
    command = [cxx, "-O2", "-std=c++17", "-fPIC", f"-I{include}", str(SHIM), "-o", str(tmp)]
    command += ["-fopenmp"] if threading(include) == "OMP" else []
    command += ["-c"] if kind == "o" else ["-shared"] + link_options()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise OneDNNMissing(f"building graphopt's oneDNN shim failed: {done.stderr.strip().splitlines()[-1:]}")
    os.replace(tmp, out)
    return out


@lru_cache(maxsize=1)
def shim_object() -> Path:
    """The shim's object file, linked into every artifact that calls oneDNN."""
    return _build("o")


@lru_cache(maxsize=1)
def shim() -> ctypes.CDLL:
    """The shim as a shared library in this process: describe() and the thread count setter."""
    handle = ctypes.CDLL(str(_build("so")))
    handle.graphopt_dnnl_describe.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_int64), ctypes.c_int64,
                                              ctypes.c_char_p, ctypes.c_int64]
    handle.graphopt_dnnl_set_threads.argtypes = [ctypes.c_int32]
    handle.graphopt_dnnl_held_bytes.restype = ctypes.c_int64
    return handle


def describe(op: str, values: list[int]) -> dict:
    """What oneDNN picks for one kernel here: {"impl", "scratch_bytes", "reorder_bytes", "weight_reorder_bytes"}."""
    array = (ctypes.c_int64 * len(values))(*values)
    out = ctypes.create_string_buffer(512)
    if shim().graphopt_dnnl_describe(op.encode(), array, len(values), out, 512) != 0:
        raise GraphoptError(f"oneDNN refused {op} {values}: {out.value.decode(errors='replace')}")
    impl, scratch, reorder, weights = out.value.decode().split(";")
    return {"impl": impl, "scratch_bytes": int(scratch), "reorder_bytes": int(reorder),
            "weight_reorder_bytes": int(weights)}
