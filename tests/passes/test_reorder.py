"""Reordering: exact on small DAGs, never worse than the original order."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from graphopt.passes.reorder import (
    DagTensor,
    ScheduleProblem,
    exact_order,
    greedy_order,
    is_topological,
    peak_of_order,
    reorder,
)

BIG, SMALL = 1000, 10


def two_branches_breadth_first() -> ScheduleProblem:
    """0 -> {1 big -> 3 small}, 0 -> {2 big -> 4 small}, {3, 4} -> 5; listed breadth-first,
    so the original order holds both big tensors at once."""
    preds = (frozenset(), frozenset({0}), frozenset({0}), frozenset({1}), frozenset({2}), frozenset({3, 4}))
    tensors = (
        DagTensor(SMALL, 0, frozenset({1, 2})),
        DagTensor(BIG, 1, frozenset({3})),
        DagTensor(BIG, 2, frozenset({4})),
        DagTensor(SMALL, 3, frozenset({5})),
        DagTensor(SMALL, 4, frozenset({5})),
    )
    return ScheduleProblem(preds, tensors)


def brute_force_peak(problem: ScheduleProblem) -> int:
    orders = (o for o in itertools.permutations(range(problem.num_nodes)) if is_topological(problem, o))
    return min(peak_of_order(problem, o) for o in orders)


def test_depth_first_order_halves_the_peak():
    problem = two_branches_breadth_first()
    assert peak_of_order(problem, range(6)) == 2 * BIG + SMALL
    result = reorder(problem)
    assert result.method == "exact"
    assert is_topological(problem, result.order)
    assert result.peak == BIG + 2 * SMALL == brute_force_peak(problem)
    assert result.original_peak == 2 * BIG + SMALL


def test_chain_keeps_its_order():
    preds = (frozenset(), frozenset({0}), frozenset({1}))
    tensors = (DagTensor(5, 0, frozenset({1})), DagTensor(7, 1, frozenset({2})))
    result = reorder(ScheduleProblem(preds, tensors))
    assert result.method == "original" and result.order == (0, 1, 2)


@st.composite
def random_dags(draw):
    n = draw(st.integers(2, 7))
    preds = tuple(frozenset(draw(st.sets(st.integers(0, v - 1), max_size=2)) if v else set()) for v in range(n))
    tensors = []
    for v in range(n):
        readers = [w for w in range(v + 1, n) if v in preds[w]]
        tensors.append(DagTensor(draw(st.integers(1, 100)), v, frozenset(readers)))
    return ScheduleProblem(preds, tuple(tensors))


@settings(max_examples=60, deadline=None)
@given(random_dags())
def test_exact_matches_brute_force_and_greedy_is_valid(problem):
    order, peak = exact_order(problem)
    assert is_topological(problem, order)
    assert peak == peak_of_order(problem, order) == brute_force_peak(problem)
    greedy = greedy_order(problem)
    assert is_topological(problem, greedy)
    assert peak_of_order(problem, greedy) >= peak
    result = reorder(problem)
    assert result.peak <= peak_of_order(problem, range(problem.num_nodes))


def test_state_cap_falls_back_to_greedy():
    n = 14  # 14 independent nodes: 2^14 down-sets
    problem = ScheduleProblem(tuple(frozenset() for _ in range(n)),
                              tuple(DagTensor(10 + i, i, frozenset()) for i in range(n)))
    assert exact_order(problem, state_cap=100) is None
    assert reorder(problem, state_cap=100).method in ("greedy", "original")
