"""The exact search: native and pure-Python twins agree, plans are valid, proofs hold."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graphopt.analysis.lower_bound import lower_bound
from graphopt.passes import native
from graphopt.passes.bnb import BranchAndBound, height_grain
from graphopt.passes.decompose import piece_lower_bound, split_timeline
from graphopt.passes.dsa_python import fits_python
from graphopt.passes.dsa_search import PREORDERS, Instance, fits
from graphopt.plan.csv_io import read_problem
from graphopt.plan.placement import Placement
from graphopt.plan.problem import Buffer, MemoryProblem
from graphopt.plan.validator import assert_valid


@st.composite
def problems(draw, max_buffers: int = 9, alignments=(1, 2, 8)):
    n = draw(st.integers(1, max_buffers))
    buffers = []
    for i in range(n):
        start = draw(st.integers(0, 12))
        end = start + draw(st.integers(1, 6))
        buffers.append(Buffer(i, start, end, draw(st.integers(1, 16)), alignment=draw(st.sampled_from(alignments))))
    return MemoryProblem(tuple(buffers))


def instance(problem: MemoryProblem) -> Instance:
    cols = [np.array([getattr(b, a) for b in problem.buffers], dtype=np.int64)
            for a in ("start", "end", "size", "alignment")]
    return Instance(*cols)


def brute_force_optimum(problem: MemoryProblem) -> int:
    """Smallest height over canonical placements of every buffer order (tiny problems only)."""
    best = None
    for order in itertools.permutations(problem.buffers):
        offsets: dict[int, int] = {}
        for b in order:
            low = 0
            busy = sorted((offsets[o.id], offsets[o.id] + o.size) for o in problem.buffers
                          if o.id in offsets and o.overlaps_in_time(b))
            for lo, hi in busy:  # first aligned gap that fits
                if low + b.size <= lo:
                    break
                low = max(low, -(-hi // b.alignment) * b.alignment)
            offsets[b.id] = low
        height = max(offsets[b.id] + b.size for b in problem.buffers)
        best = height if best is None else min(best, height)
    return best


def placement_of(problem: MemoryProblem, offsets: np.ndarray) -> Placement:
    return Placement.from_offsets(problem, dict(zip((b.id for b in problem.buffers), offsets.tolist())), "test")


@settings(max_examples=60, deadline=None)
@given(problems(max_buffers=6))
def test_search_finds_the_optimum_and_proves_below_it(problem):
    optimum = brute_force_optimum(problem)
    inst = instance(problem)
    status, offsets = fits(inst, optimum, 5.0)
    assert status == 1
    assert_valid(problem, placement_of(problem, offsets))
    assert fits(inst, optimum - 1, 5.0)[0] == 0
    placed = BranchAndBound().plan(problem, 2.0)
    assert_valid(problem, placed)
    assert placed.arena_bytes == optimum and placed.optimal


@pytest.mark.skipif(not native.available(), reason="native search not built")
@settings(max_examples=60, deadline=None)
@given(problems(max_buffers=12), st.sampled_from(PREORDERS + ("ZTW", "WAT", "AWT")), st.integers(0, 20))
def test_native_and_python_twins_agree(problem, keys, slack):
    inst = instance(problem)
    cap = lower_bound(problem) + slack
    args = (inst.starts, inst.ends, inst.sizes, inst.aligns, keys, cap, 5.0, 0)
    n_status, n_offsets, n_nodes = native.fits_native(*args)
    p_status, p_offsets, p_nodes = fits_python(*args)
    assert n_status == p_status and n_nodes == p_nodes
    if n_status == 1:
        assert (n_offsets == p_offsets).all()
        assert_valid(problem, placement_of(problem, n_offsets))


def _random_instance(seed: int, n: int = 24) -> Instance:
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, 30, n)
    return Instance(starts, starts + rng.integers(1, 12, n), rng.integers(1, 40, n), rng.choice([1, 1, 2, 8], n))


@pytest.mark.skipif(not native.available(), reason="native search not built")
@pytest.mark.parametrize("seed", [0, 3, 6])
def test_twins_agree_on_deep_searches(seed):
    """Same status, node count and offsets on searches thousands of nodes deep:
    at the optimum (found by the native search) and just below it."""
    inst = _random_instance(seed)
    for keys in ("TWA", "TLA"):
        lo, hi = piece_lower_bound(inst.starts, inst.ends, inst.sizes), int(inst.sizes.sum())
        while lo < hi:
            mid = (lo + hi) // 2
            status = native.fits_native(inst.starts, inst.ends, inst.sizes, inst.aligns, keys, mid, 5.0, 0)[0]
            lo, hi = (lo, mid) if status == 1 else (mid + 1, hi)
        for cap in (lo - 1, lo):
            args = (inst.starts, inst.ends, inst.sizes, inst.aligns, keys, cap, 20.0, 8000)
            n_status, n_offsets, n_nodes = native.fits_native(*args)
            p_status, p_offsets, p_nodes = fits_python(*args)
            assert (n_status, n_nodes) == (p_status, p_nodes)
            if n_status == 1:
                assert (n_offsets == p_offsets).all()


@settings(max_examples=30, deadline=None)
@given(problems(max_buffers=6, alignments=(1, 2, 8, 12)), st.sampled_from([2, 4, 6]))
def test_planner_with_coarse_sizes_is_optimal(problem, factor):
    """Sizes with a common factor: the planner's caps step by height_grain and
    its certificate still matches the brute-force optimum."""
    scaled = MemoryProblem(tuple(Buffer(b.id, b.start, b.end, b.size * factor, alignment=b.alignment)
                                 for b in problem.buffers))
    optimum = brute_force_optimum(scaled)
    placed = BranchAndBound().plan(scaled, 2.0)
    assert_valid(scaled, placed)
    assert placed.arena_bytes == optimum and placed.optimal


def test_height_grain_keeps_aligned_tops_on_the_grain():
    assert height_grain(np.array([6, 12]), np.array([1, 4])) == 2
    assert height_grain(np.array([6, 12]), np.array([1, 3])) == 6
    assert height_grain(np.array([8, 24]), np.array([1, 16, 4])) == 8
    assert height_grain(np.array([7]), np.array([1])) == 7


def test_python_fallback_plans_a_hard_instance_validly(alloc_dir, monkeypatch):
    problem = read_problem(alloc_dir / "C.1048576.csv")
    monkeypatch.setattr(native, "_FN", None)
    monkeypatch.setattr(native, "_warned", False)
    with pytest.warns(RuntimeWarning, match="pure-Python"):
        placed = BranchAndBound().plan(problem, 3.0)
    assert_valid(problem, placed)


def test_split_timeline_pieces_never_share_time():
    starts = np.array([0, 1, 5, 5, 9])
    ends = np.array([2, 5, 7, 9, 10])
    pieces = split_timeline(starts, ends)
    assert [sorted(p.tolist()) for p in pieces] == [[0, 1], [2, 3], [4]]
    assert piece_lower_bound(starts, ends, np.array([1, 2, 3, 4, 5])) == 7


@pytest.mark.parametrize("name", ["A.1048576", "C.1048576"])
def test_challenging_instances_reach_the_bound(alloc_dir, name):
    problem = read_problem(alloc_dir / f"{name}.csv")
    placed = BranchAndBound().plan(problem, 8.0)
    assert_valid(problem, placed)
    assert placed.arena_bytes == lower_bound(problem) and placed.optimal


def test_real_trace_reaches_the_bound_fast(alloc_dir):
    problem = read_problem(alloc_dir / "real" / "mindspore_resnet50.csv")
    placed = BranchAndBound().plan(problem, 5.0)
    assert_valid(problem, placed)
    assert placed.arena_bytes == lower_bound(problem) and placed.seconds < 3.0
