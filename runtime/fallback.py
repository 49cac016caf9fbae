"""Fallback kernels at run time: the nodes TVM could not import, run by onnxruntime in place.

The compiled program calls each fallback kernel by name (`call_dps_packed`, see
graphopt.frontend.fallback) with its input tensors and the output tensors the memory plan
placed in the arena. `install` registers, for every kernel the plan lists, a packed function
under that name that runs the kernel's one-node ONNX model (from the artifact's
fallback.npz, hashed like every other file) with an onnxruntime session and writes the
results into those arena tensors. Inputs are read in place through DLPack (no copy).

Only artifacts that use fallback kernels need onnxruntime: it is imported here, lazily.
The names are content hashes of the kernels' models, so two artifacts that register the
same name register the same computation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tvm_ffi

from graphopt.artifact import FALLBACK
from graphopt.errors import ArtifactError, KernelError, first_line

# a KernelError raised inside a kernel crosses TVM's VM as an FFI error: registered, it comes back
# to the caller as KernelError (one line, a GraphoptError) rather than a bare RuntimeError
tvm_ffi.register_error("KernelError", KernelError)


def kernels_in(plan: dict) -> list[dict]:
    """The fallback kernels plan.json lists (empty for most artifacts)."""
    section = plan.get("fallback") or {}
    kernels = section.get("kernels", []) if isinstance(section, dict) else None
    if not isinstance(kernels, list) or not all(isinstance(k, dict) and isinstance(k.get("kernel"), str)
                                                for k in kernels):
        raise ArtifactError("plan.json: `fallback` is not a list of kernels")
    return kernels


def install(src: Path, plan: dict, threads: int) -> int:
    """Registers every fallback kernel of the artifact in `src`; returns how many."""
    kernels = kernels_in(plan)
    if not kernels:
        return 0
    ort = _onnxruntime(kernels)
    models = _read_models(Path(src), [k["kernel"] for k in kernels])
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # between two fallback kernels TVM's pool runs the compiled ones: ORT's threads must not spin
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    labels = {k["kernel"]: f"{k.get('op_type')} node {k.get('node')}" for k in kernels}
    for name, data in models.items():
        try:
            session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own types; one line for the user
            raise ArtifactError(f"{src}: onnxruntime cannot load fallback kernel {name} ({first_line(exc)})") from None
        tvm_ffi.register_global_func(name, _kernel(name, session, labels.get(name, "")), override=True)
    return len(models)


def _onnxruntime(kernels: list[dict]):
    try:
        import onnxruntime
    except ImportError:
        ops = ", ".join(sorted({str(k.get("op_type")) for k in kernels}))
        raise ArtifactError(f"this artifact runs {len(kernels)} node(s) ({ops}) as onnxruntime fallback kernels: "
                            "install onnxruntime to load it") from None
    return onnxruntime


def _read_models(src: Path, names: list[str]) -> dict[str, bytes]:
    if not (src / FALLBACK).is_file():
        raise ArtifactError(f"{src}: plan.json lists fallback kernels but {FALLBACK} is missing")
    try:
        with np.load(src / FALLBACK, allow_pickle=False) as data:
            return {name: data[name].tobytes() for name in names}
    except (OSError, KeyError, ValueError) as exc:
        raise ArtifactError(f"{src}: cannot read {FALLBACK} ({first_line(exc)})") from None


def _kernel(name: str, session, label: str = ""):
    """The packed function: args are the inputs, then the outputs (destination-passing style).
    `label` (op and node) names the kernel in errors."""
    input_names = [i.name for i in session.get_inputs()]
    output_names = [o.name for o in session.get_outputs()]

    def run(*tensors) -> None:
        if len(tensors) != len(input_names) + len(output_names):
            raise KernelError(f"fallback kernel {name}: called with {len(tensors)} tensors, "
                               f"expected {len(input_names)} inputs and {len(output_names)} outputs")
        feeds = {n: np.from_dlpack(t) for n, t in zip(input_names, tensors)}
        try:
            results = session.run(output_names, feeds)
        except Exception as exc:  # onnxruntime's own error types: one line, named for the kernel
            raise KernelError(f"fallback kernel {name} ({label}): onnxruntime failed: {first_line(exc)}") from None
        for out, value in zip(tensors[len(input_names):], results):
            _write(name, np.from_dlpack(out), np.asarray(value))

    return run


def _write(name: str, dst: np.ndarray, value: np.ndarray) -> None:
    """The result into its planned tensor; a shape or type the plan did not expect is an error."""
    if dst.shape != value.shape or dst.dtype != value.dtype:
        raise KernelError(f"fallback kernel {name}: onnxruntime returned {value.dtype}{list(value.shape)}, "
                           f"the plan holds {dst.dtype}{list(dst.shape)}")
    np.copyto(dst, value)
