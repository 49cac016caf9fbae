"""The benchmark's round orders: balanced so no engine always runs after the same other one."""

from __future__ import annotations

from collections import Counter
from itertools import pairwise

import pytest

from benchmarks.timing import balanced_orders, cycle_length


@pytest.mark.parametrize("count", [2, 3, 4, 5])
def test_each_cycle_balances_first_positions_and_predecessors(count: int):
    orders = balanced_orders(count, cycle_length(count))
    assert all(sorted(order) == list(range(count)) for order in orders)
    firsts = Counter(order[0] for order in orders)
    assert set(firsts.values()) == {cycle_length(count) // count}
    pairs = Counter((a, b) for order in orders for a, b in pairwise(order))
    assert len(pairs) == count * (count - 1)  # every engine follows every other one ...
    assert len(set(pairs.values())) == 1  # ... equally often


def test_a_plain_rotation_would_not_be_balanced():
    """The reason for the design: rotations keep one predecessor per engine (what this guards against)."""
    rotations = [[(i + r) % 4 for i in range(4)] for r in range(4)]
    pairs = Counter((a, b) for order in rotations for a, b in pairwise(order))
    assert len(pairs) == 4  # only 4 of the 12 ordered pairs ever occur
    assert balanced_orders(4, 4) != rotations
