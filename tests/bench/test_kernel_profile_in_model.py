"""benchmarks.kernel_profile --artifact: every kernel of a compiled model timed inside its inferences."""

from __future__ import annotations

import json

from benchmarks.kernel_profile import add_in_model, in_model, markdown
from tests.conftest import compile_example


def test_every_kernel_of_the_plan_is_timed_in_the_model(tmp_path):
    compile_example(tmp_path, "residual_branch_net")
    steps = json.loads((tmp_path / "art" / "plan.json").read_text())["steps"]
    measured = in_model(tmp_path / "art", runs=2)
    assert set(measured) == {name.removesuffix("_prepacked") for name in steps}
    assert all(ms > 0 for ms in measured.values())


def test_in_model_columns_beside_the_time_alone():
    rows = [{"kernel": "conv", "rule": "gemm", "calls": 2, "ms": 0.5, "ms_per_run": 1.0, "share": 0.8, "mb": 1.0,
             "gb_s": 2.0, "gflop_s": 100.0},
            {"kernel": "concat", "rule": "fallback", "calls": 1, "ms": 0.25, "ms_per_run": 0.25, "share": 0.2,
             "mb": 1.0, "gb_s": 4.0, "gflop_s": 0.0}]
    add_in_model(rows, {"conv": 1.5})  # the concatenation is done in place: no kernel in the artifact
    assert rows[0]["in_model/alone"] == 1.5 and rows[1]["ms_per_run_in_model"] is None
    table = markdown(rows).splitlines()
    assert table[0].endswith("in model ms/run | in model/alone |")
    assert table[2].endswith("| 1.500 | 1.50 |") and table[3].endswith("| - | - |")
    assert table[-1].startswith("| total | | | | 1.250 |") and table[-1].endswith("| 1.500 | |")
