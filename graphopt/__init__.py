"""graphopt: lifetime-aware memory planning for ONNX models compiled with TVM.

Kept import-light on purpose: the runtime (`graphopt.runtime`) is embedded in
services that have neither onnx, OR-Tools nor the TVM compiler, so nothing here
may import them at package import time.
"""

__version__ = "0.1.0"
