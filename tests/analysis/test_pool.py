"""The caching-pool baseline: hand-computed traces, and never below the bound."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from graphopt.analysis.lower_bound import lower_bound
from graphopt.analysis.pool import MiB, caching_pool_peak, naive_bytes
from graphopt.plan.csv_io import read_problem
from graphopt.plan.problem import Buffer, MemoryProblem


def problem(*rows: tuple[int, int, int]) -> MemoryProblem:
    return MemoryProblem(tuple(Buffer(i, s, e, size) for i, (s, e, size) in enumerate(rows)))


def test_cached_block_too_small_forces_new_segment():
    # t0: A 1000 -> 1024 (seg 1). t1: B 512 (seg 2). t2: A freed first, C 1500 -> 1536
    # does not fit the cached 1024: seg 3. Reserved 1024 + 512 + 1536.
    p = problem((0, 2, 1000), (1, 3, 512), (2, 4, 1500))
    assert lower_bound(p) == 2012
    assert caching_pool_peak(p) == 3072
    assert naive_bytes(p) == 3012


def test_split_then_coalesce_reuses_one_segment():
    # A takes a 2048 segment; after it ends B and C split it; when both end they
    # merge back with the cached tail, so D (2048) fits without a new segment.
    p = problem((0, 1, 2048), (1, 2, 512), (1, 2, 512), (2, 3, 2048))
    assert caching_pool_peak(p) == 2048


def test_free_before_alloc_at_same_step():
    p = problem((0, 1, 4096), (1, 2, 4096))
    assert caching_pool_peak(p) == 4096


def test_best_fit_prefers_smallest_block():
    # Two cached blocks (1024 and 4096, separate segments); 1024 takes the small
    # one, so the later 4096 still fits: nothing new is reserved.
    p = problem((0, 1, 1024), (0, 1, 4096), (1, 3, 1024), (2, 3, 4096))
    assert caching_pool_peak(p) == 5120


def test_large_segment_rounding():
    assert caching_pool_peak(problem((0, 1, 1000)), segment_round=2 * MiB) == 2 * MiB


@st.composite
def problems(draw):
    n = draw(st.integers(1, 30))
    rows = []
    for _ in range(n):
        start = draw(st.integers(0, 20))
        rows.append((start, start + draw(st.integers(1, 8)), draw(st.integers(1, 5000))))
    return problem(*rows)


@settings(max_examples=200, deadline=None)
@given(problems())
def test_pool_never_below_lower_bound(p):
    peak = caching_pool_peak(p)
    assert peak >= lower_bound(p)
    assert peak <= sum(-(-b.size // 512) * 512 for b in p.buffers)  # never worse than no reuse


def test_pool_on_real_trace(alloc_dir):
    p = read_problem(alloc_dir / "real" / "mindspore_resnet50.csv")
    assert lower_bound(p) <= caching_pool_peak(p) <= naive_bytes(p) + 512 * len(p)
