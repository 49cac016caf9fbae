"""What every program rewrite returns: the program, whether it changed, and what it did.

One contract for the ONNX rewrites of the frontend (sum_to_add, batchnorm_to_affine)
and the Relax rewrites of graphopt.transforms (reorder, concat_in_place,
apply_placement, insert_swaps), after onnxscript's PassResult: a caller never has to
learn a rewrite's own return shape, and a test of any rewrite checks the same three
things (the rewritten case, the no-op case where `modified` is False and `module` is
the input itself, and numeric agreement with ONNX Runtime).

No TVM or onnx import here: the frontend uses it before TVM is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

Program = TypeVar("Program")


@dataclass(frozen=True)
class RewriteResult(Generic[Program]):
    """`module`: the rewritten program (the input object itself when `modified` is False).
    `record`: what the rewrite did, as plan.json and the compile summary report it;
    JSON-able except where a rewrite's docstring names a key that is not."""

    module: Program
    modified: bool
    record: dict[str, Any] = field(default_factory=dict)
