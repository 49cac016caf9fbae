"""The lower bound against its definition, step by step."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from graphopt.analysis.lower_bound import live_bytes_per_step, lower_bound
from graphopt.plan.problem import Buffer, MemoryProblem


def test_half_open_lifetimes_do_not_add_up():
    p = MemoryProblem((Buffer(0, 0, 2, 10), Buffer(1, 2, 4, 20), Buffer(2, 1, 3, 5)))
    assert live_bytes_per_step(p) == [10, 15, 25, 20]
    assert lower_bound(p) == 25


def test_empty_problem():
    assert lower_bound(MemoryProblem(())) == 0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 15), st.integers(1, 6), st.integers(1, 100)), min_size=1, max_size=25))
def test_matches_definition(rows):
    p = MemoryProblem(tuple(Buffer(i, s, s + d, size) for i, (s, d, size) in enumerate(rows)))
    per_step = [sum(b.size for b in p.buffers if b.start <= t < b.end) for t in range(p.num_steps)]
    assert live_bytes_per_step(p) == per_step
    assert lower_bound(p) == max(per_step)
