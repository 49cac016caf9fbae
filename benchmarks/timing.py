"""Side-by-side timing on a noisy shared machine: warm up, interleave A B A B, take
medians, report the spread of the per-round ratios."""

from __future__ import annotations

import statistics
from collections.abc import Callable


def _quartiles(values: list[float]) -> tuple[float, float]:
    if len(values) < 2:
        return values[0], values[0]
    q = statistics.quantiles(values, n=4)
    return q[0], q[2]


def balanced_orders(count: int, rounds: int) -> list[list[int]]:
    """The order of `count` engines in each of `rounds` rounds: a Williams design, cycled.

    Why not a plain rotation (a b c, b c a, c a b): it keeps the cyclic order, so every engine
    always runs right after the same other engine, and whatever that one leaves behind (spinning
    worker threads, a cold cache, a busy memory bus) lands on the same engine in every round. That
    biased two identical artifacts by 1.06x in one run. In a Williams design each engine runs first
    equally often and follows every other engine equally often over one cycle (`count` rounds
    when `count` is even, 2 x `count` when odd): take rounds as a multiple of `cycle_length`."""
    first = [0]
    low, high = 1, count - 1
    while len(first) < count:
        first.append(low)
        low += 1
        if len(first) < count:
            first.append(high)
            high -= 1
    rows = [[(e + shift) % count for e in first] for shift in range(count)]
    if count % 2 == 1:
        rows += [list(reversed(row)) for row in rows]
    return [rows[r % len(rows)] for r in range(rounds)]


def cycle_length(count: int) -> int:
    """Rounds after which balanced_orders has balanced first positions and predecessors."""
    return count if count % 2 == 0 else 2 * count


def plan_repeats(seconds_per_run: float, budget_s: float, max_rounds: int = 7,
                 max_per_round: int = 5) -> tuple[int, int]:
    """(rounds, runs per round) that fit A and B in about `budget_s`: slow models get
    fewer runs, never fewer than 3 rounds (a median and a spread need them)."""
    runs = max(int(budget_s / max(seconds_per_run, 1e-6) / 2), 3)
    per_round = max(1, min(max_per_round, runs // max_rounds))
    rounds = max(3, min(max_rounds, runs // per_round))
    return rounds, per_round


def interleaved_ratio(run_a: Callable[[], float], run_b: Callable[[], float], rounds: int = 7,
                      per_round: int = 5, warmup: int = 1) -> dict:
    """Each callable runs once and returns its own seconds. Per round, A and B each
    run `per_round` times (order alternating between rounds); a round's ratio is
    median(A)/median(B). Returns medians and the inter-quartile range of the ratios."""
    for _ in range(warmup):
        run_a()
        run_b()
    a_all, b_all, ratios = [], [], []
    for r in range(rounds):
        order = (run_a, run_b) if r % 2 == 0 else (run_b, run_a)
        samples = {id(f): [f() for _ in range(per_round)] for f in order}
        a, b = statistics.median(samples[id(run_a)]), statistics.median(samples[id(run_b)])
        a_all.append(a)
        b_all.append(b)
        ratios.append(a / b)
    low, high = _quartiles(ratios)
    return {"a_median": statistics.median(a_all), "b_median": statistics.median(b_all),
            "ratio_median": statistics.median(ratios), "ratio_iqr": high - low, "ratios": ratios,
            "rounds": rounds, "per_round": per_round}
