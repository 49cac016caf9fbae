"""MiniMalloc CSV in and out: round trips, the toy file's named ids, bad input."""

from __future__ import annotations

import pytest

from graphopt.plan.csv_io import (
    read_problem,
    read_solution,
    write_problem,
    write_solution,
)
from graphopt.plan.placement import Placement
from graphopt.plan.problem import Buffer, MemoryProblem

PROBLEM = MemoryProblem((Buffer(3, 0, 4, 100, alignment=1), Buffer(7, 2, 9, 50, alignment=1)), name="p")


def test_problem_round_trip(tmp_path):
    path = tmp_path / "p.csv"
    write_problem(PROBLEM, path)
    assert path.read_text().splitlines()[0] == "id,lower,upper,size"
    assert read_problem(path).buffers == PROBLEM.buffers


def test_alignment_parameter(tmp_path):
    write_problem(PROBLEM, tmp_path / "p.csv")
    assert {b.alignment for b in read_problem(tmp_path / "p.csv", alignment=64).buffers} == {64}


def test_solution_round_trip(tmp_path):
    placed = Placement.from_offsets(PROBLEM, {3: 0, 7: 100}, "hand")
    write_solution(PROBLEM, placed, tmp_path / "s.csv")
    problem, back = read_solution(tmp_path / "s.csv")
    assert problem.buffers == PROBLEM.buffers
    assert back.offsets == placed.offsets and back.arena_bytes == 150


def test_named_ids_survive(alloc_dir, tmp_path):
    problem = read_problem(alloc_dir / "input.12.csv")
    assert [b.name for b in problem.buffers] == ["b1", "b2", "b3", "b4", "b5"]
    assert [b.id for b in problem.buffers] == [0, 1, 2, 3, 4]
    write_problem(problem, tmp_path / "again.csv")
    assert (tmp_path / "again.csv").read_text() == (alloc_dir / "input.12.csv").read_text()


@pytest.mark.parametrize(
    "text, where",
    [
        ("id,lower,upper\n0,1,2\n", ":1:"),
        ("id,lower,upper,size\n0,1,2,8\n1,1,x,8\n", ":3:"),
        ("id,lower,upper,size\n0,1,2\n", ":2:"),
        ("id,lower,upper,size\n0,5,5,8\n", ":2:"),
        ("id,lower,upper,size\n0,1,2,0\n", ":2:"),
        ("", "bad.csv"),
    ],
)
def test_bad_csv_names_the_line(tmp_path, text, where):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(ValueError) as caught:
        read_problem(path)
    assert where in str(caught.value) and "\n" not in str(caught.value)


def test_duplicate_ids_rejected(tmp_path):
    path = tmp_path / "dup.csv"
    path.write_text("id,lower,upper,size\n0,1,2,8\n0,3,4,8\n")
    with pytest.raises(ValueError, match="unique"):
        read_problem(path)


def test_solution_needs_offsets(tmp_path):
    write_problem(PROBLEM, tmp_path / "p.csv")
    with pytest.raises(ValueError, match="no offset column"):
        read_solution(tmp_path / "p.csv")
