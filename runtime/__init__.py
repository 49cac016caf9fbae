"""graphopt's runtime: load an artifact and execute exactly its plan.

Imports only TVM's runtime, numpy and the artifact format, so a service can
embed it without the compiler, onnx or OR-Tools:

    sess = graphopt.runtime.load("ART")
    outputs = sess.run({"input": array})
"""

from graphopt.runtime.session import Session, load
from graphopt.runtime.tvm_rt import mode as tvm_mode  # "runtime-only" unless the process imported `tvm`

__all__ = ["Session", "load", "tvm_mode"]
