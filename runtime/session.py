"""A loaded artifact, ready to run.

The VM executable already contains the plan: one arena allocation and every
intermediate at its planned offset. The session's job is the boundary: verify
the artifact, pick the device, check every input against the manifest's
signature (a clear error instead of a crash inside a kernel), and hand outputs
back as numpy arrays keyed by the model's output names.
"""

from __future__ import annotations

import time
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from graphopt.artifact import LIBRARY, PARAMS, load_manifest, load_plan, private_copy
from graphopt.errors import ArtifactError, first_line
from graphopt.runtime import tvm_rt  # TVM's runtime library only, unless `tvm` is imported already
from graphopt.runtime.cpu_features import check_host_cpu
from graphopt.runtime.outputs import check_outputs
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
    """Nodes the compiler handed to onnxruntime (graphopt.runtime.fallback); most artifacts have none."""
    from graphopt.runtime.fallback import install, kernels_in

    if not kernels_in(plan):
        return 0
    from graphopt.threads import current_threads

    return install(src, plan, current_threads())


def _load_params(path: Path, names: list[str], device) -> list:
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = [data[n] for n in names]
    except (OSError, KeyError, ValueError, EOFError, NotImplementedError, zipfile.BadZipFile, zlib.error) as exc:
        # a truncated or damaged archive fails inside zipfile/zlib, not as OSError
        raise ArtifactError(f"{path}: cannot read parameters ({first_line(exc)})") from None
    return [tvm_rt.tensor(a, device) for a in arrays]


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
        self.params = _load_params(src / PARAMS, self.manifest["param_keys"], self.device)

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
        arrays = check_inputs(self.inputs, feeds)
        args = [tvm_rt.tensor(a, self.device) for a in arrays] + self.params
        start = time.perf_counter()
        result = self.vm["main"](*args)
        tvm_rt.sync(self.device)
        seconds = time.perf_counter() - start
        return RunResult(self._to_numpy(result), seconds)

    def _to_numpy(self, result) -> dict[str, np.ndarray]:
        values = [result] if hasattr(result, "numpy") or hasattr(result, "dtype") else list(result)
        return check_outputs(self.outputs, [tvm_rt.to_numpy(v) for v in values])  # shapes/dtypes as the manifest says


def load(art_dir: str | Path, expect_id: str | None = None, trusted_keys=None) -> Session:
    """Loads and verifies an artifact; raises ArtifactError with one line if it cannot.

    `expect_id`: the content id the caller trusts (or a prefix of 12+ hex digits): any
    other artifact is refused. `trusted_keys`: public key files (graphopt.signing), added
    to GRAPHOPT_TRUSTED_KEYS; when there is any, the artifact must be signed by one of them.
    Both are checked before the library is loaded; without either, the file hashes still
    are (they catch corruption, not someone who rewrote the manifest too).
    """
    return Session(art_dir, expect_id, trusted_keys)
