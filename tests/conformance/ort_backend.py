"""ONNX Runtime's own ONNX backend, on its CPU provider: the reference beside graphopt.

ONNX Runtime's backend as shipped trips on three things in this setup that are
about the interface, not about what it computes; each is adapted here, and only these:

1. The project installs onnxruntime-gpu, whose backend reports its device as "GPU":
   the suite would skip every CPU case. This backend claims CPU only, and hands
   ONNX Runtime's backend the variable it reads to leave every other provider out.
2. onnx 1.23 stamps the suite's generated models with IR version 14; ONNX Runtime
   1.31 loads IR <= 13 and refuses the rest before looking at them (227 cases).
   The IR version of such a model is lowered to 13; its opsets are not touched,
   so an opset ONNX Runtime lacks is still its error.
3. The suite passes 0-d inputs as numpy scalars (`np.float32(3)`), which ONNX
   Runtime's backend cannot feed ("Unable to handle object of type"); they are
   passed as the 0-d arrays they are.

With ONNX Runtime's backend unadapted (1 only), the 2026-12-06 baseline counted
1,454 passes; the adapted count is the one the results tables report.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import onnx
import onnxruntime
from onnx.backend.base import BackendRep
from onnxruntime.backend.backend import OnnxRuntimeBackend

CPU_PROVIDER = "CPUExecutionProvider"
EXCLUDE_VARIABLE = "ORT_ONNX_BACKEND_EXCLUDE_PROVIDERS"  # read by OnnxRuntimeBackend.prepare
MAX_IR_VERSION = 13  # ONNX Runtime 1.31: "Unsupported model IR version: 14, max supported IR version: 13"


class ArrayInputsRep(BackendRep):
    """ONNX Runtime's rep, fed numpy scalars as 0-d arrays (adaptation 3)."""

    def __init__(self, rep: BackendRep) -> None:
        self.rep = rep

    def run(self, inputs: Any, **kwargs: Any) -> tuple[Any, ...]:
        arrays = [np.asarray(x) if isinstance(x, np.generic) else x for x in inputs]
        return self.rep.run(arrays, **kwargs)


def loadable(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model with its IR version lowered to what ONNX Runtime loads (adaptation 2)."""
    if model.ir_version <= MAX_IR_VERSION:
        return model
    lowered = onnx.ModelProto()
    lowered.CopyFrom(model)
    lowered.ir_version = MAX_IR_VERSION
    return lowered


class OrtCpuBackend(OnnxRuntimeBackend):
    """OnnxRuntimeBackend on its CPU provider alone, with the adaptations above."""

    @classmethod
    def supports_device(cls, device: str) -> bool:
        return device == "CPU"

    @classmethod
    def is_compatible(cls, model: Any, device: str | None = None, **kwargs: Any) -> bool:
        """The suite asks without a device; the parent would answer for its default, "GPU"."""
        return cls.supports_device(device or "CPU")

    @classmethod
    def prepare(cls, model: Any, device: str | None = None, **kwargs: Any):
        others = [p for p in onnxruntime.get_available_providers() if p != CPU_PROVIDER]
        os.environ[EXCLUDE_VARIABLE] = ",".join(others)  # this process runs the reference on CPU only
        if isinstance(model, onnx.ModelProto):  # the suite's entry; ONNX Runtime recurses with bytes
            return ArrayInputsRep(super().prepare(loadable(model), device, **kwargs))
        return super().prepare(model, device, **kwargs)
