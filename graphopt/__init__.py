"""graphopt: lifetime-aware memory planning for ONNX models compiled with TVM.

Kept import-light on purpose: the runtime (`graphopt.runtime`) is embedded in
services that have neither onnx, OR-Tools nor the TVM compiler, so nothing here
may import them at package import time.
"""

from graphopt.checkout import find_mapped_folders
from graphopt.threads import bound_pool_spinning, use_physical_cores

__version__ = "0.1.0"

bound_pool_spinning()  # before TVM's thread pool exists: see graphopt/threads.py
use_physical_cores()
find_mapped_folders(__name__, __file__)  # graphopt.passes / graphopt.runtime in an uninstalled checkout
