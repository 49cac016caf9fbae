"""The rich swap model executed for real: a schedule with a boundary copy-in, an extended
input and a chained rebuild runs in the training step with every swapped-out or dropped
tensor poisoned (NaN), and the losses are bit-identical to the unbudgeted step."""

from __future__ import annotations

import numpy as np
import pytest

from graphopt.passes import swap_registry
from graphopt.passes.swap_singa import InfeasibleBudget
from graphopt.plan.swap import Extend, Rebuild, Recompute, Swap, SwapProblem, SwapSchedule
from graphopt.plan.swap_validator import validate_swaps
from graphopt.train.models import mlp
from tests.train.test_train_step import _batch, _compiled, _poisoned_steps


def _dead_inputs(sp: SwapProblem, buffer: int, step: int) -> list[int]:
    ends = {b.id: b.end for b in sp.problem.buffers}
    return [i for i in sp.recompute_inputs[buffer] if ends[i] <= step]


def _recompute_options(sp: SwapProblem) -> list[tuple[Recompute, list[int]]]:
    """Recomputes whose producer reads an input dead where it runs, with those inputs."""
    out = []
    for b in sp.problem.buffers:
        if b.id in sp.recompute_inputs:
            for gap in sp._idle(b, 2):
                dead = _dead_inputs(sp, b.id, gap.before)
                if dead:
                    out.append((Recompute(b.id, gap.after, gap.before), dead))
    return out


def rich_schedule(sp: SwapProblem) -> SwapSchedule:
    """A valid schedule with one chained rebuild, one extend and one boundary copy-in, if the
    step has them to offer (the test fails otherwise: the model would not exercise them)."""
    options = _recompute_options(sp)
    chained = next((r, dead) for r, dead in options
                   if any(i in sp.recompute_inputs and not _dead_inputs(sp, i, r.before) for i in dead))
    rebuilds = tuple(Rebuild(i, chained[0].before) for i in chained[1] if i in sp.recompute_inputs)
    extends = tuple(Extend(i, chained[0].before) for i in chained[1] if i not in sp.recompute_inputs)
    used = {chained[0].buffer, *chained[1]}
    if not extends:
        extended, dead = next((r, dead) for r, dead in options if r.buffer not in used and not set(dead) & used)
        extends = tuple(Extend(i, extended.before) for i in dead)
        recomputes, used = (chained[0], extended), used | {extended.buffer, *dead}
    else:
        recomputes = (chained[0],)
    reads = {i for r in recomputes for i in sp.recompute_inputs[r.buffer]}
    for b in sp.problem.buffers:
        if b.id in used or b.id in reads or (sp.swappable and b.id not in sp.swappable):
            continue
        for gap in sp._idle(b, 2):
            swap = Swap(b.id, gap.after, gap.after + 1, gap.before, gap.before)
            schedule = SwapSchedule((swap,), "rich-by-hand", recomputes=recomputes, rebuilds=rebuilds,
                                    extends=extends)
            if validate_swaps(sp, schedule).valid:
                return schedule
    raise AssertionError("no boundary swap fits beside the chained recompute")


class _ByHand:
    name = "rich-by-hand"

    def plan(self, sp: SwapProblem, time_limit: float = 10.0, starts: tuple = ()) -> SwapSchedule:
        if not sp.rich:  # "ours" tries the plain model first (graphopt.train.swapping.model_schedules): refuse
            raise InfeasibleBudget("the plain model is not what this test runs")
        return rich_schedule(sp)


def test_rich_schedule_runs_bit_identical(tmp_path_factory, monkeypatch) -> None:
    model = mlp(batch=64, hidden=(64, 64, 64, 64))
    plain = _compiled(tmp_path_factory, model, "plain_rich", optimizer="sgd:lr=0.1")
    monkeypatch.setattr(swap_registry, "get_swap_planner", lambda name: _ByHand())
    budget = str(10 * plain.session.plan["arena_bytes"])  # the schedule is by hand: any budget holds it
    rich = _compiled(tmp_path_factory, model, "rich", optimizer="sgd:lr=0.1", memory_budget=budget)
    plan = rich.session.plan
    assert plan["swap_model"] == "rich" and plan["rebuilds"] and plan["extends"]
    assert any(s["load_at"] == s["before"] for s in plan["swaps"])
    feeds = _batch(plain)
    with_rich, stats = _poisoned_steps(rich, feeds, 4)
    dropped = sum(r["bytes"] for r in plan["recomputes"]) + sum(r["bytes"] for r in plan["rebuilds"])
    assert stats["bytes_dropped"] == 4 * dropped
    assert stats["bytes_out"] == 4 * sum(s["bytes"] for s in plan["swaps"])
    without = [plain.step(feeds) for _ in range(4)]
    np.testing.assert_array_equal(with_rich, without)


if __name__ == "__main__":
    pytest.main([__file__])
