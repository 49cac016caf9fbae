"""Pareto front and hypervolume on hand-checked cases."""

from __future__ import annotations

import pytest

from graphopt.tune.pareto import front_indices, hypervolume, reference_point


def test_front_drops_dominated_and_duplicate_points() -> None:
    points = [(1, 5), (2, 2), (3, 3), (5, 1), (2, 2)]
    assert front_indices(points) == [0, 1, 3]


def test_hypervolume_2d_by_hand() -> None:
    # staircase under (1,5), (2,2), (5,1) inside the box to (6,6): 1*5 ... computed by columns
    hv = hypervolume([(1, 5), (2, 2), (5, 1)], (6, 6))
    assert hv == pytest.approx((2 - 1) * (6 - 5) + (5 - 2) * (6 - 2) + (6 - 5) * (6 - 1))


def test_hypervolume_3d_single_and_pair() -> None:
    assert hypervolume([(1, 1, 1)], (2, 3, 4)) == pytest.approx(1 * 2 * 3)
    # two boxes [0,2]x[0,1]x[0,1] and [0,1]x[0,2]x[0,1] overlap in a unit cube: 2 + 2 - 1
    assert hypervolume([(0, 1, 0), (1, 0, 0)], (2, 2, 1)) == pytest.approx(3.0)


def test_points_outside_the_box_add_nothing() -> None:
    assert hypervolume([(3, 0)], (2, 2)) == 0.0
    assert hypervolume([(1, 1), (3, 0)], (2, 2)) == pytest.approx(1.0)


def test_reference_point_is_the_worst_plus_margin() -> None:
    assert reference_point([(1, 10), (4, 2)], margin=0.1) == pytest.approx((4.4, 11.0))
