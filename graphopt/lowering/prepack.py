"""Weights prepared once at compile time: packed for the kernels, reshaped, transposed.

Why. A GEMM-scheduled convolution reads its weight as [K, output channels] so
that one vector load fetches several output channels; packing the ONNX
[O, I, kh, kw] weight into that order inside the kernel costs a full copy of
every weight on every run (about 100 MB for resnet50). ONNX Runtime's MLAS
prepacks its weights once at session creation; graphopt does it at compile
time, so the artifact stores the weights in the order the kernels read them.

How, with TVM's own passes:
  1. AttachAttrLayoutFreeBuffers marks each kernel parameter that the Relax
     program feeds straight from a weight (`layout_free_buffers`);
  2. the GEMM rule marks its weight-packing stage when it reads such a buffer
     (graphopt.kernels.schedules.gemm._mark_prepack);
  3. SplitLayoutRewritePreproc moves every marked stage into a kernel of its own,
     called on the weight before the compute kernel;
  4. LiftTransformParams moves everything that depends on weights alone (those
     packing calls, bias reshapes, a classifier's transposed weight) into
     `main_transform_params`, and `main` then takes the prepared weights;
  5. `prepare_weights` builds that function for the host CPU and runs it once on
     the model's weights: its outputs are the artifact's parameters.
Only the weights change: the program `main` still computes the same values, and
its activations (so the memory plan) do not depend on how weights are laid out.
"""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax

TRANSFORM = "main_transform_params"


def mark_weights() -> tvm.transform.Pass:
    """Step 1 (before scheduling): which kernel parameters are weights."""
    return relax.transform.AttachAttrLayoutFreeBuffers()


def lift_weight_work() -> tvm.transform.Pass:
    """Steps 3-4 (after scheduling): packing stages out of kernels, weight-only work out of `main`."""
    return tvm.transform.Sequential([relax.transform.SplitLayoutRewritePreproc(),
                                     relax.transform.LiftTransformParams()])


def split_transform(mod: tvm.IRModule) -> tuple[tvm.IRModule, tvm.IRModule | None]:
    """(the module without the weight transform, the transform as a module of its own or None)."""
    if TRANSFORM not in [gv.name_hint for gv in mod.get_global_vars()]:
        return mod, None
    kernels = {gvar: func for gvar, func in mod.functions_items() if isinstance(func, tvm.tirx.PrimFunc)}
    transform = tvm.IRModule({"main": mod[TRANSFORM].with_attr("global_symbol", "main"), **kernels})
    program = tvm.IRModule({"main": mod["main"], **kernels}, attrs=mod.attrs)
    keep = relax.transform.DeadCodeElimination(["main"])
    return keep(program), keep(transform)


def prepare_weights(transform: tvm.IRModule, params: list[np.ndarray], target: tvm.target.Target) -> list[np.ndarray]:
    """Step 5: runs the weight transform on the host CPU; the prepared weights in `main`'s order."""
    executable = tvm.compile(transform, target=target)
    vm = relax.VirtualMachine(executable, tvm.cpu())
    prepared = vm["main"](tuple(tvm.runtime.tensor(p) for p in params))
    return [np.array(t.numpy(), order="C") for t in prepared]  # (ascontiguousarray makes 0-d arrays 1-d)


def weight_params(main: relax.Function) -> list[relax.Var]:
    """`main`'s weight parameters: those after its `num_input` inputs (none without the attribute)."""
    if main.attrs is None or "num_input" not in main.attrs:
        return []
    return list(main.params[int(main.attrs["num_input"]):])


def weight_names(program: tvm.IRModule) -> list[str]:
    """Names of `main`'s weight parameters."""
    return [p.name for p in weight_params(program["main"])]
