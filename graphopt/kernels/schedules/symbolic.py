"""Symbolic loop extents in the CPU schedule rules (a range compile's kernels, graphopt.frontend.ranges).

Design. In a range compile the symbols (batch, seq) reach a kernel only as factors of its extents:
a projection's rows are batch * seq, a convolution's positions batch * H * W, its channels and
window stay numbers. The rules keep their one schedule and read such an extent two ways:

  * for divisibility (does a tile or a vector divide it?) its *static factor*, the extent with
    every symbol set to 1: for a product c * n1 * n2 a number m divides the extent for every value
    of the symbols exactly when m divides c, so a split by a divisor of the static factor is exact
    (TVM's analyzer proves it: no predicate, no padding) and anything else is padded
    (pad_einsum pads to a multiple, symbolic or not);
  * for a size-dependent choice (how many rows a register tile has, whether an operand fits L2)
    its *nominal* value, every symbol at NOMINAL: the range's minimum would choose one-row tiles
    for a batch-sized axis, which the larger batches the artifact exists for pay for.

An extent that is not such a product (a padded ceil-division, a symbolic window) has no static
factor: callers then pad, or decline the kernel.

Threads are the one choice a single schedule cannot make well for the whole range: a symbolic
parallel loop pays a thread launch even when it has one iteration (a fixed compile drops such a
loop), and on the shared 2-core VM a launch cost several microseconds, far more than a batch-1
kernel of the encoder. So a symbolic fallback kernel holds two loop nests, scheduled with every
symbol at 1 and at NOMINAL, and picks one per call by its size against the fixed rule's own
threshold (graphopt.kernels.schedules.by_size); packing stages decide at the smallest point, and
the GEMM rule threads a symbolic kernel only when it is large at the nominal size.

Padding is the other cost a fixed compile whose tiles divide its extents does not pay: a padded
broadcast operand is read in place through clamped rows (in_place_rows), and a symbolic vector axis
gets a second nest whose last tile is shifted back instead of padded (overlap_tail).
"""

from __future__ import annotations

from tvm import sym as tvm_arith
from tvm import tirx

# The value a symbol is assumed to take when a choice depends on a size, not on divisibility.
NOMINAL = 32


def is_static(value) -> bool:
    """A number: an int or an IntImm."""
    return isinstance(value, (int, tirx.IntImm))


def product(extents) -> tirx.PrimExpr | int:
    """The product of extents, an int when all are numbers."""
    total = 1
    for e in extents:
        total = total * (int(e.value) if isinstance(e, tirx.IntImm) else e)
    if isinstance(total, int):
        return total
    return tvm_arith.Analyzer().simplify(total)


def _substitute(value, symbol_value: int) -> int | None:
    """`value` with every free variable set to `symbol_value`, or None if it stays symbolic."""
    if isinstance(value, int):
        return value
    if isinstance(value, tirx.IntImm):
        return int(value.value)
    analyzer = tvm_arith.Analyzer()
    for var in tirx.analysis.undefined_vars(value):
        analyzer.bind(var, tirx.const(symbol_value, var.ty.dtype))
    bound = analyzer.simplify(value)
    return int(bound.value) if isinstance(bound, tirx.IntImm) else None


def is_product(value) -> bool:
    """A number, a variable, or a product of those (the extents a range compile's symbols make)."""
    if is_static(value) or isinstance(value, tirx.Var):
        return True
    return isinstance(value, tirx.Mul) and is_product(value.a) and is_product(value.b)


def static_factor(value) -> int | None:
    """The number every value of the extent is a multiple of (symbols at 1), None if not a product."""
    return _substitute(value, 1) if is_product(value) else None


def nominal(value) -> int:
    """The extent with every symbol at NOMINAL: for size-dependent choices only."""
    bound = _substitute(value, NOMINAL)
    if bound is None:
        raise ValueError(f"extent {value} has no nominal value")
    return bound


def at(value, symbol_value: int) -> int:
    """The extent with every symbol at `symbol_value` (a tuner's concrete point; graphopt.kernels.tuning)."""
    bound = _substitute(value, symbol_value)
    if bound is None:
        raise ValueError(f"extent {value} has no value at {symbol_value}")
    return bound


def divides(value, multiple: int) -> bool:
    """Whether `multiple` divides the extent for every value of its symbols."""
    factor = static_factor(value)
    return factor is not None and factor % multiple == 0


def padding_waste(size, multiple: int) -> float:
    """The fraction padding `size` to a multiple adds; for a symbolic extent the fraction at the
    range's smallest point (none when the multiple divides every value, 1.0 when unknown)."""
    if is_static(size):
        size = int(size)
        return (-(-size // multiple) * multiple - size) / size
    factor = static_factor(size)
    if factor is None:
        return 1.0
    return (-(-factor // multiple) * multiple - factor) / factor


__all__ = ["NOMINAL", "at", "divides", "is_product", "is_static", "nominal", "padding_waste", "product", "static_factor"]
