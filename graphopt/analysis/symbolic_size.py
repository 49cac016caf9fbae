"""Tensor sizes that depend on shape symbols: evaluate them at a point, prove them monotone.

Why this exists: a range compile (`--input-shape x=1..32x3x224x224`, graphopt.frontend.ranges)
leaves the lowered program's allocations with sizes such as `batch * 512`. The arena is planned
once, at the range's maximum (every symbol at its upper bound), and the offsets are constants.
That plan is valid at every point of the range if every tensor's size is monotone
non-decreasing in every symbol: a tensor then occupies a prefix [offset, offset + size(s)) of its
max-shape slot [offset, offset + size(max)), lifetimes do not depend on shapes (the program and
its order are the same at every point), so two tensors whose slots never overlap at the maximum
never overlap anywhere in the range.

The proof is structural and sound over a small grammar (anything else is "not proven", never
guessed): with every symbol >= its lower bound >= 1,
  * a constant is monotone; a symbol is monotone;
  * a + b, max(a, b), min(a, b) of monotone terms are monotone;
  * a - c (c a constant) is monotone;
  * a * b is monotone when both are monotone and non-negative on the range; a monotone term's
    minimum over the range is its value at the lower corner, so non-negativity is checked there;
  * floordiv(a, c) with c a positive constant, and cast to an integer type, keep monotonicity.
A term outside the grammar (a - b with b symbolic, floormod, a division by a symbol) makes the
compile refuse the range in one line rather than plan memory it cannot prove.

Evaluation is a small interpreter over the same node types; planners never see TVM, they get
the numbers it returns.
"""

from __future__ import annotations

from collections.abc import Mapping

from tvm import tirx

from graphopt.errors import ShapeError

Point = Mapping[str, int]


def free_symbols(expr) -> set[str]:
    """Names of the symbols a size expression reads."""
    return {v.name for v in tirx.analysis.undefined_vars(expr)} if not isinstance(expr, tirx.IntImm) else set()


def evaluate(expr, point: Point) -> int:
    """The integer value of `expr` with every symbol set as `point` says (ShapeError if one is missing)."""
    if isinstance(expr, tirx.IntImm):
        return int(expr.value)
    if isinstance(expr, tirx.Var):
        if expr.name not in point:
            raise ShapeError(f"size symbol {expr.name} has no value; the range does not bind it")
        return int(point[expr.name])
    if isinstance(expr, tirx.Cast):
        return evaluate(expr.value, point)
    binary = _BINARY.get(type(expr))
    if binary is None:
        raise ShapeError(f"cannot evaluate tensor size {expr} ({type(expr).__name__})")
    return binary(evaluate(expr.a, point), evaluate(expr.b, point))


_BINARY = {
    tirx.Add: lambda a, b: a + b,
    tirx.Sub: lambda a, b: a - b,
    tirx.Mul: lambda a, b: a * b,
    tirx.FloorDiv: lambda a, b: a // b,
    tirx.FloorMod: lambda a, b: a % b,
    tirx.Max: max,
    tirx.Min: min,
}


def is_monotone(expr, lower: Point) -> bool:
    """True when `expr` is proven non-decreasing in every symbol over the range whose lower corner
    is `lower` (the grammar in the module docstring); False means not proven."""
    if isinstance(expr, (tirx.IntImm, tirx.Var)):
        return True
    if isinstance(expr, tirx.Cast):
        return "int" in str(expr.dtype) and is_monotone(expr.value, lower)
    if isinstance(expr, (tirx.Add, tirx.Max, tirx.Min)):
        return is_monotone(expr.a, lower) and is_monotone(expr.b, lower)
    if isinstance(expr, tirx.Sub):
        return isinstance(expr.b, tirx.IntImm) and is_monotone(expr.a, lower)
    if isinstance(expr, tirx.Mul):
        return all(is_monotone(t, lower) and evaluate(t, lower) >= 0 for t in (expr.a, expr.b))
    if isinstance(expr, tirx.FloorDiv):
        return isinstance(expr.b, tirx.IntImm) and expr.b.value > 0 and is_monotone(expr.a, lower)
    return False


__all__ = ["Point", "evaluate", "free_symbols", "is_monotone"]
