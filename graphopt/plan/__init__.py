"""The planning data model: TVM-free frozen dataclasses, the validator and file io.

Planners see only these types, so they can be tested and benchmarked on CSV
instances alone.
"""

from graphopt.plan.placement import Placement
from graphopt.plan.problem import Buffer, MemoryProblem

__all__ = ["Buffer", "MemoryProblem", "Placement"]
