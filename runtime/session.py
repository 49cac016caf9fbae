"""A loaded artifact, ready to run.

The VM executable already contains the plan: one arena allocation and every
intermediate at its planned offset. The session's job is the boundary: verify
the artifact, pick the device, check every input against the manifest's
signature (a clear error instead of a crash inside a kernel), and hand outputs
back as numpy arrays keyed by the model's output names.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tvm
import tvm.runtime
from tvm.runtime.vm import VirtualMachine

from graphopt.artifact import LIBRARY, PARAMS, load_manifest, load_plan
from graphopt.errors import ArtifactError, first_line
from graphopt.runtime.signature import check_inputs


@dataclass(frozen=True)
class RunResult:
    outputs: dict[str, np.ndarray]
    seconds: float


def _device(target: dict):
    kind = target.get("kind")
    if kind == "llvm":
        return tvm.runtime.cpu(0)
    if kind == "cuda":
        from graphopt.runtime.cuda_swap import ensure_tvm_cuda_runtime

        ensure_tvm_cuda_runtime()  # runtime-only TVM (a bundle) does not autoload it
        dev = tvm.runtime.cuda(0)
        if not dev.exist:
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


def _load_params(path: Path, names: list[str], device) -> list:
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = [data[n] for n in names]
    except (OSError, KeyError, ValueError) as exc:
        raise ArtifactError(f"{path}: cannot read parameters ({exc})") from None
    return [tvm.runtime.tensor(a, device) for a in arrays]


def _check_tvm_version(manifest: dict, path: Path) -> None:
    """A library built by another TVM may load and then misbehave: refuse it up front."""
    built = manifest["versions"].get("tvm")
    if built != tvm.__version__:
        raise ArtifactError(f"{path}: built with TVM {built}, this runtime has TVM {tvm.__version__}; recompile it")


class Session:
    """One artifact on one device; `run` may be called many times.

    A session is not thread-safe (TVM's VM keeps per-call state): a service uses
    one session per worker thread, or a lock around `run`.
    """

    def __init__(self, art_dir: str | Path) -> None:
        self.path = Path(art_dir)
        self.manifest = load_manifest(self.path)
        _check_tvm_version(self.manifest, self.path)
        self.plan = load_plan(self.path)
        self.device = _device(self.manifest["target"])
        if self.plan.get("swaps") or self.plan.get("recomputes"):  # the program calls graphopt.swap_*/drop
            _register_swaps(self.manifest["target"], self.device)
        try:
            library = tvm.runtime.load_module(str(self.path / LIBRARY))
        except Exception as exc:  # TVM raises many types; report one line
            raise ArtifactError(f"{self.path}: cannot load {LIBRARY} ({first_line(exc)})") from None
        self.vm = VirtualMachine(library, self.device)
        self.params = _load_params(self.path / PARAMS, self.manifest["param_keys"], self.device)
        self.inputs = self.manifest["inputs"]
        self.outputs = self.manifest["outputs"]

    @property
    def id(self) -> str:
        return self.manifest["id"]

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.run_timed(feeds).outputs

    def run_timed(self, feeds: dict[str, np.ndarray]) -> RunResult:
        """Runs once; `seconds` covers the VM call and the device sync only."""
        arrays = check_inputs(self.inputs, feeds)
        args = [tvm.runtime.tensor(a, self.device) for a in arrays] + self.params
        start = time.perf_counter()
        result = self.vm["main"](*args)
        self.device.sync()
        seconds = time.perf_counter() - start
        return RunResult(self._to_numpy(result), seconds)

    def _to_numpy(self, result) -> dict[str, np.ndarray]:
        values = list(result) if not hasattr(result, "numpy") else [result]
        if len(values) != len(self.outputs):
            raise ArtifactError(f"artifact returned {len(values)} outputs, manifest lists {len(self.outputs)}")
        return {sig["name"]: v.numpy() for sig, v in zip(self.outputs, values)}


def load(art_dir: str | Path) -> Session:
    """Loads and verifies an artifact; raises ArtifactError with one line if it cannot."""
    return Session(art_dir)
