"""`--memory-budget min` and the one-line explanation of a budget below the model's floor."""

from __future__ import annotations

import pytest

from graphopt.compiler import compile_model
from graphopt.errors import PlanError
from graphopt.options import TrainOptions
from graphopt.train.models import mlp
from graphopt.train.runner import TrainRunner


def _options(**kw) -> TrainOptions:
    return TrainOptions(fold=False, time_limit=1.0, optimizer="sgd:lr=0.1", **kw)


@pytest.fixture(scope="module")
def least(tmp_path_factory):
    out = tmp_path_factory.mktemp("budget") / "min"
    compile_model(mlp(batch=64, hidden=(64, 64, 64, 64)), out, _options(memory_budget="min"))
    return TrainRunner(out).session.plan


def test_min_budget_plans_at_the_least_fitting_budget(least) -> None:
    search = least["budget_search"]
    assert search["requested"] == "min" and search["probes"]
    fitting = [p for p in search["probes"] if p["fits"]]
    assert least["arena_bytes"] <= least["budget_bytes"] < least["noswap_arena_bytes"]
    assert least["budget_bytes"] == min(p["budget_bytes"] for p in fitting)
    assert least["budget_bytes"] >= search["floor_bytes"]  # the floor is a necessary condition
    assert all(not p["fits"] for p in search["probes"] if p["budget_bytes"] < least["budget_bytes"])


def test_budget_below_the_floor_says_where_and_what_works(least, tmp_path) -> None:
    floor = least["budget_search"]["floor_bytes"]
    with pytest.raises(PlanError) as err:
        compile_model(mlp(batch=64, hidden=(64, 64, 64, 64)), tmp_path / "a", _options(memory_budget=str(floor - 4096)))
    message = str(err.value)
    assert "\n" not in message
    assert f"{floor:,} bytes" in message and f"step {least['budget_search']['binding_step']}" in message
    assert "must stay resident" in message and "--memory-budget min" in message
