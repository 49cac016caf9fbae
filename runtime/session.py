"""A loaded artifact, ready to run.

The VM executable already contains the plan: one arena allocation and every
intermediate at its planned offset. The session's job is the boundary: verify
the artifact, pick the device, check every input against the manifest's
signature (a clear error instead of a crash inside a kernel), and hand outputs
back as numpy arrays keyed by the model's output names.
"""

from __future__ import annotations

import ctypes
import time
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from graphopt.artifact import ARENA_PARAM, LIBRARY, PARAMS, load_manifest, load_plan, private_copy
from graphopt.errors import ArtifactError, first_line
from graphopt.runtime import tvm_rt  # TVM's runtime library only, unless `tvm` is imported already
from graphopt.runtime.cpu_features import check_host_cpu
from graphopt.runtime.host_slab import HostSlab, aligned, shared_with_tvm, wanted
from graphopt.runtime.outputs import check_outputs
from graphopt.runtime.shape_range import bind_symbols, bound_outputs
from graphopt.runtime.signature import check_inputs
from graphopt.signing import configured_keys  # light: cryptography is imported only when a key is used


@dataclass(frozen=True)
class RunResult:
    outputs: dict[str, np.ndarray]
    seconds: float


def _device(target: dict):
    kind = target.get("kind")
    if kind == "llvm":
        return tvm_rt.device("cpu", 0)
    if kind == "cuda":
        from graphopt.runtime.cuda_swap import ensure_tvm_cuda_runtime

        ensure_tvm_cuda_runtime()  # runtime-only TVM (a bundle) does not autoload it
        dev = tvm_rt.device("cuda", 0)
        if not tvm_rt.device_exists(dev):
            raise ArtifactError("artifact targets CUDA but no CUDA device is available here")
        return dev
    raise ArtifactError(f"artifact target {kind!r} is not supported by this runtime")


def _register_swaps(target: dict, device) -> None:
    """CPU: synchronous numpy copies; CUDA: the copy-stream engine (cuda/swap_engine.cu)."""
    if target.get("kind") == "cuda":
        from graphopt.runtime.cuda_swap import install

        install(device.index)
    else:
        import graphopt.runtime.swap  # noqa: F401


def _install_fallback(src: Path, plan: dict) -> int:
    """Nodes the compiler handed to onnxruntime (graphopt.runtime.fallback); most artifacts have none,
    and then nothing of it is imported (a runtime-only bundle ships without it)."""
    section = plan.get("fallback")
    if not section or (isinstance(section, dict) and not section.get("kernels")):
        return 0
    from graphopt.runtime.fallback import install
    from graphopt.threads import current_threads

    return install(src, plan, current_threads())


_DLPACK_CPU = 1  # kDLCPU
_READ_CHUNK = 8 << 20  # bytes per read from params.npz: the only transient copy while loading


def _load_params(path: Path, names: list[str], device) -> tuple[list, HostSlab | None]:
    """Each parameter read from params.npz straight into its device tensor, one at a time; on the
    CPU, weights of MIN_BYTES or more go into one host slab (graphopt.runtime.host_slab: 2 MiB pages
    where the OS grants them), returned beside the tensors.

    Why not np.load then copy: holding every array in numpy while the device tensors are
    made keeps two copies of the weights at once (VGG-19: 1.1 GB peak for 548 MB of
    weights). Here a CPU tensor is filled in place through a DLPack view, and another
    device gets one host array at a time, so the peak is the weights plus at most one
    tensor. The .npy headers are checked as np.load(allow_pickle=False) would."""
    try:
        with zipfile.ZipFile(path) as archive:
            slab = _slab_for(archive, names) if device.dlpack_device_type() == _DLPACK_CPU else None
            return [_read_param(archive, name, device, slab) for name in names], slab
    except (OSError, KeyError, ValueError, EOFError, NotImplementedError, zipfile.BadZipFile, zlib.error) as exc:
        # a truncated or damaged archive fails inside zipfile/zlib, not as OSError
        raise ArtifactError(f"{path}: cannot read parameters ({first_line(exc)})") from None


def _slab_for(archive: zipfile.ZipFile, names: list[str]) -> HostSlab | None:
    """A host slab holding every parameter (their headers read first), or None below MIN_BYTES."""
    total = 0
    for name in names:
        with archive.open(f"{name}.npy") as member:
            shape, _, dtype = _read_header(member, name)
        total += aligned(int(np.prod(shape, dtype=np.int64)) * dtype.itemsize)
    return HostSlab(total) if wanted(total) else None


def _read_header(member, name: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran_order, dtype) of a .npy member, refused unless a plain native dtype."""
    fmt = np.lib.format
    major, _minor = fmt.read_magic(member)
    read_header = fmt.read_array_header_1_0 if major == 1 else fmt.read_array_header_2_0
    shape, fortran_order, dtype = read_header(member)
    if dtype.hasobject or not dtype.isnative:
        raise ValueError(f"{name}: {dtype.str} is not a plain native dtype")
    return shape, fortran_order, dtype


def _read_param(archive: zipfile.ZipFile, name: str, device, slab: HostSlab | None = None):
    """One `name.npy` member into a new tensor on `device` (part of _load_params)."""
    with archive.open(f"{name}.npy") as member:
        shape, fortran_order, dtype = _read_header(member, name)
        if slab is not None:  # CPU: a view of the slab, filled in place and shared with TVM through DLPack
            host = slab.take(shape, dtype)
            if fortran_order:
                np.copyto(host, _fill(member, np.empty(shape, dtype, order="F"), name))
            else:
                _fill(member, host, name)
            return shared_with_tvm(host)
        if fortran_order:  # np.save keeps an F-ordered array so: read it whole, as np.load would
            return tvm_rt.tensor(_fill(member, np.empty(shape, dtype, order="F"), name), device)
        out = _empty_tensor(shape, dtype, device)
        on_cpu = device.dlpack_device_type() == _DLPACK_CPU
        host = _fill(member, np.from_dlpack(out) if on_cpu else np.empty(shape, dtype), name)  # CPU: `out` itself
    if not on_cpu:
        tvm_rt.global_func("runtime.TVMTensorCopyFromBytes")(out, host.ctypes.data_as(ctypes.c_void_p), host.nbytes)
    return out


def _fill(member, array: np.ndarray, name: str) -> np.ndarray:
    """Reads the member's remaining bytes into `array`'s memory, in its own order (part of _load_params)."""
    view = memoryview(array.reshape(-1, order="A").view(np.uint8))
    filled = 0
    while filled < view.nbytes:  # zipfile's readinto reads into a temporary bytes object: bound its size
        got = member.readinto(view[filled:filled + _READ_CHUNK])
        if not got:
            raise EOFError(f"{name}: {view.nbytes - filled} bytes missing")
        filled += got
    return array


def _empty_tensor(shape: tuple[int, ...], dtype: np.dtype, device):
    """An uninitialised tensor (part of _load_params); TVM's own allocator, in either tvm_rt mode."""
    import tvm_ffi

    return tvm_rt.global_func("runtime.TVMTensorAllocWithScope")(tvm_ffi.Shape([int(d) for d in shape]),
                                                                 tvm_ffi.dtype(dtype.name), device, None)


def _check_arena_argument(plan: dict, vm, path: Path) -> None:
    """ArtifactError unless plan.json and the library agree on the arena argument: the library's last
    parameter is the arena exactly when the plan says so, and the plan gives its size (a plan.json taken
    from another artifact or edited, under a rewritten manifest, would otherwise fail inside the VM)."""
    module = vm.module
    arity = int(module["get_function_arity"]("main"))
    last = str(module["get_function_param_name"]("main", arity - 1)) if arity else ""
    wants = bool(plan.get("arena_is_argument"))
    if wants != (last == ARENA_PARAM):
        raise ArtifactError(f"{path}: plan.json says the arena is {'' if wants else 'not '}an argument of the "
                            "program and the library disagrees; the artifact is inconsistent (recompile it)")
    size = plan.get("arena_bytes")
    if wants and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
        raise ArtifactError(f"{path}: plan.json gives no valid arena_bytes for the arena argument ({size!r})")


def _arena(plan: dict, device) -> tuple:
    """(arena tensor, its host slab or None) for a program that takes its arena as an argument, else
    (None, None): on the CPU from 4 MiB up in a host slab (2 MiB pages where the OS grants them), else
    TVM's allocator, as the VM allocated it before."""
    if not plan.get("arena_is_argument"):
        return None, None
    nbytes = int(plan["arena_bytes"])
    if device.dlpack_device_type() == _DLPACK_CPU and wanted(nbytes):
        slab = HostSlab(nbytes)
        return shared_with_tvm(slab.take((nbytes,), np.dtype(np.uint8))), slab
    return tvm_rt.empty((nbytes,), np.dtype(np.uint8), device), None


def _check_tvm_version(manifest: dict, path: Path) -> None:
    """A library built by another TVM may load and then misbehave: refuse it up front."""
    built, here = manifest["versions"].get("tvm"), tvm_rt.version()
    if built != here:
        raise ArtifactError(f"{path}: built with TVM {built}, this runtime has TVM {here}; recompile it")


class Session:
    """One artifact on one device; `run` may be called many times.

    A session is not thread-safe (TVM's VM keeps per-call state): a service uses
    one session per worker thread, or a lock around `run`.
    """

    def __init__(self, art_dir: str | Path, expect_id: str | None = None, trusted_keys=None) -> None:
        self.path = Path(art_dir)
        self.tvm_mode = tvm_rt.mode()  # "runtime-only" (libtvm_runtime.so alone) or "full" (`tvm` imported)
        # pin and signatures are checked on the manifest, then every file is re-hashed: before model.so loads
        keys = configured_keys(trusted_keys)
        self.manifest = load_manifest(self.path, expect_id=expect_id, trusted_keys=keys)
        _check_tvm_version(self.manifest, self.path)
        self.cpu_check = check_host_cpu(self.manifest["target"], self.path)  # before model.so: else SIGILL
        # pinned or signed: read from a private copy hashed as it is made, so a file swapped after the
        # check is never what loads (graphopt.artifact.private_copy)
        copy = private_copy(self.path, self.manifest) if expect_id or keys else None
        try:
            self._load_files(Path(copy.name) if copy else self.path)
        finally:  # the private copy is removed on success and on every refusal
            if copy:
                copy.cleanup()
        self.inputs = self.manifest["inputs"]
        self.outputs = self.manifest["outputs"]
        self.pinned = self.manifest.get("pinned_inputs")  # --input-value (graphopt.frontend.input_values)
        self.symbols = self.manifest.get("shape_symbols")  # a range artifact (graphopt.runtime.shape_range)
        if not self.symbols and any("dims" in spec for spec in self.inputs):  # shapes would go unchecked
            raise ArtifactError("the manifest gives input dims without shape_symbols; the artifact is inconsistent "
                                "(recompile it)")

    def _load_files(self, src: Path) -> None:
        """plan.json, the library and the params, from the verified folder `src`."""
        self.plan = load_plan(src)
        self.device = _device(self.manifest["target"])
        if self.plan.get("swaps") or self.plan.get("recomputes"):  # the program calls graphopt.swap_*/drop
            _register_swaps(self.manifest["target"], self.device)
        self.fallback_kernels = _install_fallback(src, self.plan)  # before the VM: it resolves names at load
        try:
            library = tvm_rt.load_module(str(src / LIBRARY))
        except Exception as exc:  # TVM raises many types; report one line
            raise ArtifactError(f"{self.path}: cannot load {LIBRARY} ({first_line(exc)})") from None
        self.vm = tvm_rt.virtual_machine(library, self.device)
        self._main = self.vm["main"]  # looked up once: a lookup per call cost more than a small model's kernels
        self._staged: list = []  # one device tensor per input, allocated at the first run (_stage)
        self._views: list = []  # numpy views of them on the CPU
        self._staged_shapes: list | None = None  # their shapes (range artifacts only: see _stage)
        # host_slab: the slab holding the CPU weights (None: TVM's allocator; its `advised`: 2 MiB pages asked)
        self.params, self.host_slab = _load_params(src / PARAMS, self.manifest["param_keys"], self.device)
        # the arena, when the program takes it as its last argument (graphopt.transforms.apply_placement)
        _check_arena_argument(self.plan, self.vm, self.path)
        self.arena, self.arena_slab = _arena(self.plan, self.device)

    def _stage(self, arrays: list[np.ndarray]) -> list:
        """The inputs copied into device tensors allocated once per session.

        Why: allocating fresh input tensors on every call was most of a small model's per-call
        cost. Reusing them is safe because a session runs one call at a time (see the class
        docstring) and every output is copied out before `run` returns."""
        # a fixed artifact's shapes never change (check_inputs holds them to the manifest); a range artifact's may
        shapes = [a.shape for a in arrays] if self.symbols else None
        if not self._staged or shapes != self._staged_shapes:
            self._staged_shapes = shapes
            self._staged = [tvm_rt.empty(a.shape, a.dtype, self.device) for a in arrays]
            self._views = [tvm_rt.host_view(t) for t in self._staged]  # None where a copy must go through TVM
        for tensor, view, array in zip(self._staged, self._views, arrays):
            if view is not None:
                np.copyto(view, array)
            else:
                tvm_rt.copy_into(tensor, array)
        return list(self._staged)

    @property
    def id(self) -> str:
        """The content id (covers every file); `build_id` is the predictable cache key."""
        return self.manifest["id"]

    @property
    def build_id(self) -> str:
        return self.manifest["build_id"]

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.run_timed(feeds).outputs

    def run_timed(self, feeds: dict[str, np.ndarray]) -> RunResult:
        """Runs once; `seconds` covers the VM call and the device sync only."""
        arrays = check_inputs(self.inputs, feeds, self.pinned)
        outputs = self.outputs
        if self.symbols:  # a range artifact: the shape must lie in the range; outputs follow it
            outputs = bound_outputs(self.outputs, bind_symbols(self.inputs, arrays, self.symbols))
        args = self._stage(arrays) + self.params + ([self.arena] if self.arena is not None else [])
        start = time.perf_counter()
        result = self._main(*args)
        tvm_rt.sync(self.device)
        seconds = time.perf_counter() - start
        return RunResult(self._to_numpy(result, outputs), seconds)

    def _to_numpy(self, result, outputs: list[dict]) -> dict[str, np.ndarray]:
        values = [result] if _is_one_output(result) else list(result)
        return check_outputs(outputs, [_output_array(v) for v in values])  # shapes/dtypes as the manifest says


def _is_one_output(result) -> bool:
    """A tensor, or a shape (an ONNX Shape whose result TVM keeps as a shape value), is one output;
    anything else is the tuple of outputs."""
    import tvm_ffi

    return hasattr(result, "numpy") or hasattr(result, "dtype") or isinstance(result, tvm_ffi.Shape)


def _output_array(value) -> np.ndarray:
    """A shape value is the int64 tensor ONNX's Shape returns; a tensor comes back as it is."""
    import tvm_ffi

    if isinstance(value, tvm_ffi.Shape):
        return np.array([int(d) for d in value], dtype=np.int64)
    return tvm_rt.to_numpy(value)


def load(art_dir: str | Path, expect_id: str | None = None, trusted_keys=None) -> Session:
    """Loads and verifies an artifact; raises ArtifactError with one line if it cannot.

    `expect_id`: the content id the caller trusts (or a prefix of 12+ hex digits): any
    other artifact is refused. `trusted_keys`: public key files (graphopt.signing), added
    to GRAPHOPT_TRUSTED_KEYS; when there is any, the artifact must be signed by one of them.
    Both are checked before the library is loaded; without either, the file hashes still
    are (they catch corruption, not someone who rewrote the manifest too).
    """
    return Session(art_dir, expect_id, trusted_keys)
