"""The validator must reject each kind of broken placement, and nothing else."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graphopt.plan.placement import Placement
from graphopt.plan.problem import Buffer, MemoryProblem
from graphopt.plan.validator import assert_valid, validate

# Two buffers live together in [2, 4); the third starts exactly when the first ends.
PROBLEM = MemoryProblem(
    (Buffer(0, 0, 4, 64, alignment=64), Buffer(1, 2, 6, 128, alignment=64), Buffer(2, 4, 8, 64, alignment=64))
)


def placement(offsets: dict[int, int]) -> Placement:
    return Placement.from_offsets(PROBLEM, offsets, "hand")


def test_valid_placement_with_reuse_after_half_open_end():
    report = validate(PROBLEM, placement({0: 0, 1: 64, 2: 0}))
    assert report.valid, report.errors
    assert report.arena_bytes == 192 and report.lower_bound == 192


def test_overlap_in_time_and_address_is_caught():
    report = validate(PROBLEM, placement({0: 0, 1: 0, 2: 128}))
    assert not report.valid
    assert any("overlap" in e and "0" in e and "1" in e for e in report.errors)


def test_misalignment_is_caught():
    report = validate(PROBLEM, placement({0: 0, 1: 96, 2: 0}))
    assert not report.valid
    assert any("alignment" in e for e in report.errors)


def test_out_of_arena_is_caught():
    report = validate(PROBLEM, Placement({0: 0, 1: 64, 2: 0}, 128, "hand"))
    assert not report.valid
    assert any("past the arena" in e for e in report.errors)


def test_arena_larger_than_height_is_reported():
    report = validate(PROBLEM, Placement({0: 0, 1: 64, 2: 0}, 256, "hand"))
    assert not report.valid
    assert any("differs from the height" in e for e in report.errors)


def test_missing_negative_and_unknown_offsets_are_caught():
    report = validate(PROBLEM, Placement({0: -64, 1: 64, 7: 0}, 192, "hand"))
    text = " | ".join(report.errors)
    assert not report.valid
    assert "buffer 2: no offset" in text and "negative offset" in text and "unknown buffer id 7" in text


def test_assert_valid_raises_one_line():
    with pytest.raises(ValueError) as caught:
        assert_valid(PROBLEM, placement({0: 0, 1: 0, 2: 128}))
    assert "\n" not in str(caught.value) and "hand" in str(caught.value)


def test_errors_are_capped():
    many = MemoryProblem(tuple(Buffer(i, 0, 1, 8, alignment=1) for i in range(30)))
    report = validate(many, Placement.from_offsets(many, {i: 0 for i in range(30)}, "stack"))
    assert not report.valid and len(report.errors) == 20


def _brute_force_valid(problem: MemoryProblem, offsets: dict[int, int]) -> bool:
    """The O(n^2) definition, written independently of the validator."""
    for a, b in itertools.combinations(problem.buffers, 2):
        in_time = a.start < b.end and b.start < a.end
        in_space = offsets[a.id] < offsets[b.id] + b.size and offsets[b.id] < offsets[a.id] + a.size
        if in_time and in_space:
            return False
    return all(offsets[b.id] >= 0 and offsets[b.id] % b.alignment == 0 for b in problem.buffers)


@st.composite
def placed_problems(draw):
    n = draw(st.integers(1, 12))
    buffers = []
    for i in range(n):
        start = draw(st.integers(0, 10))
        end, size = start + draw(st.integers(1, 6)), draw(st.integers(1, 8))
        buffers.append(Buffer(i, start, end, size, alignment=draw(st.sampled_from([1, 2, 4]))))
    problem = MemoryProblem(tuple(buffers))
    offsets = {i: draw(st.integers(0, 24)) for i in range(n)}
    return problem, offsets


@settings(max_examples=300, deadline=None)
@given(placed_problems())
def test_agrees_with_brute_force(case):
    problem, offsets = case
    report = validate(problem, Placement.from_offsets(problem, offsets, "random"))
    assert report.valid == _brute_force_valid(problem, offsets)
