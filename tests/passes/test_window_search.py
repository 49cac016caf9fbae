"""The rolling window search for big pieces: every plan valid, fixed buffers respected."""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.training_traces import training_trace
from graphopt.analysis.lower_bound import lower_bound
from graphopt.passes import bnb, native, window_search
from graphopt.passes.auto import Auto
from graphopt.passes.best_fit import OverlapIndex, ProblemArrays, offsets_by_id, place_in_order
from graphopt.passes.smartpool import by_start
from graphopt.plan.placement import Placement
from graphopt.plan.problem import Buffer, MemoryProblem
from graphopt.plan.validator import assert_valid

needs_native = pytest.mark.skipif(not native.around_available(), reason="native search not built")


@pytest.fixture
def small_windows(monkeypatch):
    """Windows of a few dozen buffers, so that small traces cross many of them."""
    monkeypatch.setattr(window_search, "WINDOW", 40)
    monkeypatch.setattr(window_search, "LOOKAHEAD", 40)


def placement(problem: MemoryProblem, arrays: ProblemArrays, offsets: np.ndarray) -> Placement:
    return Placement.from_offsets(problem, offsets_by_id(arrays, offsets), "window_search")


def test_peel_stacks_exactly_the_whole_span_buffers():
    problem = MemoryProblem((Buffer(0, 0, 9, 5, 1), Buffer(1, 2, 4, 3, 1), Buffer(2, 0, 9, 7, 4)))
    full, offsets, top = window_search.peel(ProblemArrays.of(problem))
    assert full.tolist() == [0, 2]
    assert offsets.tolist() == [0, 8]  # 5 rounded up to the alignment 4
    assert top == 15


def test_peak_time_holds_the_lower_bound_and_mirroring_twice_is_identity():
    problem = training_trace(600, seed=5)
    arrays = ProblemArrays.of(problem)
    t = window_search.peak_time(arrays, np.arange(len(problem)))
    live = (arrays.starts <= t) & (arrays.ends > t)
    assert int(arrays.sizes[live].sum()) == lower_bound(problem)
    back = window_search.mirrored(window_search.mirrored(arrays))
    assert (back.starts == arrays.starts).all() and (back.ends == arrays.ends).all()


@st.composite
def split_problems(draw):
    """A random problem and which of its buffers are fixed (already placed)."""
    n = draw(st.integers(2, 14))
    buffers = []
    for i in range(n):
        start = draw(st.integers(0, 10))
        buffers.append(Buffer(i, start, start + draw(st.integers(1, 6)), draw(st.integers(1, 16)),
                              alignment=draw(st.sampled_from([1, 2, 8]))))
    return MemoryProblem(tuple(buffers)), draw(st.lists(st.booleans(), min_size=n, max_size=n))


@needs_native
@settings(max_examples=60, deadline=None)
@given(split_problems(), st.integers(0, 40))
def test_search_around_fixed_buffers_never_overlaps_them(case, slack):
    problem, fixed_mask = case
    arrays = ProblemArrays.of(problem)
    offsets = place_in_order(arrays, OverlapIndex(arrays), by_start(arrays))
    fixed = np.nonzero(fixed_mask)[0]
    free = np.nonzero(~np.array(fixed_mask))[0]
    held = (arrays.starts[fixed], arrays.ends[fixed], offsets[fixed], arrays.sizes[fixed])
    cap = int((offsets + arrays.sizes).max()) + slack
    status, found, _ = native.fits_around(arrays.starts[free], arrays.ends[free], arrays.sizes[free],
                                          arrays.aligns[free], "TLA", cap, 5.0, 0, held)
    assert status in (0, 1)
    if status == 1:
        offsets[free] = found
        assert_valid(problem, placement(problem, arrays, offsets))
        assert int((offsets + arrays.sizes).max()) <= cap


@needs_native
@pytest.mark.parametrize("seed", [0, 3])
def test_a_pass_places_every_buffer_validly(small_windows, seed):
    problem = training_trace(500, seed=seed)
    arrays = ProblemArrays.of(problem)
    lb = lower_bound(problem)
    offsets = window_search.place_windows(arrays, lb, time.perf_counter() + 30, limit=2**62)
    assert offsets is not None and (offsets >= 0).all()
    assert_valid(problem, placement(problem, arrays, offsets))


@needs_native
def test_a_pass_below_the_bound_fails():
    problem = training_trace(400, seed=1)
    arrays = ProblemArrays.of(problem)
    assert window_search.place_windows(arrays, lower_bound(problem) - 1, time.perf_counter() + 30) is None


@needs_native
@pytest.mark.parametrize("seed", [1, 2])
def test_improve_beats_start_order_best_fit(small_windows, seed):
    problem = training_trace(600, seed=seed)
    arrays = ProblemArrays.of(problem)
    greedy = place_in_order(arrays, OverlapIndex(arrays), by_start(arrays))
    offsets = window_search.improve(arrays, lower_bound(problem), time.perf_counter() + 20)
    assert_valid(problem, placement(problem, arrays, offsets))
    assert (offsets + arrays.sizes).max() <= (greedy + arrays.sizes).max()


@needs_native
def test_auto_sends_a_big_piece_to_the_window_search(small_windows, monkeypatch):
    monkeypatch.setattr(bnb, "MAX_EXACT", 100)
    problem = training_trace(700, seed=4)
    calls = []
    real = bnb.improve
    monkeypatch.setattr(bnb, "improve", lambda *a: calls.append(len(a[0].sizes)) or real(*a))
    plan = Auto().plan(problem, time_limit=10)
    assert_valid(problem, plan)
    assert calls == [len(problem)]


def test_without_the_compiled_search_big_pieces_fall_back_to_best_fit(monkeypatch):
    monkeypatch.setattr(native, "_AROUND", None)
    monkeypatch.setattr(bnb, "MAX_EXACT", 100)
    problem = training_trace(400, seed=6)
    assert window_search.improve(ProblemArrays.of(problem), lower_bound(problem), time.perf_counter() + 5) is None
    plan = bnb.BranchAndBound().plan(problem, time_limit=5)
    assert_valid(problem, plan)
    assert plan.arena_bytes >= lower_bound(problem)


@needs_native
def test_a_window_whose_search_fails_takes_its_lookahead_offsets_validly(small_windows, monkeypatch):
    """The fallback's claim (an earlier search's lookahead offsets stay valid) judged by the validator."""
    problem = training_trace(600, seed=2)
    arrays = ProblemArrays.of(problem)
    cap = int((place_in_order(arrays, OverlapIndex(arrays), by_start(arrays)) + arrays.sizes).max())
    real_search, real_ahead, calls, taken = window_search._search_window, window_search._from_ahead, [], []
    monkeypatch.setattr(window_search, "_search_window",
                        lambda *a: None if calls.append(1) or len(calls) % 2 == 0 else real_search(*a))
    monkeypatch.setattr(window_search, "_from_ahead", lambda *a: taken.append(real_ahead(*a)) or taken[-1])
    offsets = window_search.place_windows(arrays, cap, time.perf_counter() + 30)
    assert offsets is not None and any(found is not None for found in taken)
    assert_valid(problem, placement(problem, arrays, offsets))


@needs_native
def test_the_first_search_looks_ahead_on_both_sides_of_the_peak(small_windows, monkeypatch):
    problem = training_trace(600, seed=3)
    arrays = ProblemArrays.of(problem)
    peak = window_search.peak_time(arrays, np.arange(len(problem)))
    real, first = window_search._search_window, []
    monkeypatch.setattr(window_search, "_search_window", lambda a, idx, *r: first.append(idx) or real(a, idx, *r))
    window_search.place_windows(arrays, lower_bound(problem), time.perf_counter() + 30, peak, limit=2**62)
    assert (arrays.ends[first[0]] <= peak).any() and (arrays.starts[first[0]] > peak).any()
