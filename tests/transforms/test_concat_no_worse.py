"""Concatenation in place never raises the peak: where eliding a concatenation would grow the
lower bound (the bundled demo: an early branch keeps the whole concatenated buffer alive), it
stays a copy, and the record says how many were kept for memory."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

from graphopt.compiler import compile_model
from graphopt.examples.models import EXAMPLES, residual_branch_net
from graphopt.options import CompileOptions
from tests.conftest import compile_run_check


def _plans(model: onnx.ModelProto, tmp_path: Path) -> tuple[dict, dict]:
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    on = compile_model(path, tmp_path / "on", CompileOptions(time_limit=2.0)).plan
    off = compile_model(path, tmp_path / "off", CompileOptions(time_limit=2.0, concat_in_place=False)).plan
    return on, off


def test_the_demo_keeps_its_concatenation_and_its_bound(tmp_path: Path) -> None:
    """Before: in place raised the demo's plan from 360,448 B (its bound) to 393,216 B."""
    on, off = _plans(residual_branch_net(), tmp_path)
    assert on["concat_in_place"] == {"elided": 0, "concatenations": 1, "kept_for_memory": 1}
    assert on["arena_bytes"] == off["arena_bytes"] == on["lower_bound_bytes"]


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_in_place_never_raises_the_bound(name: str, tmp_path: Path) -> None:
    on, off = _plans(EXAMPLES[name](), tmp_path)
    assert on["lower_bound_bytes"] <= off["lower_bound_bytes"]
    assert on["arena_bytes"] <= off["arena_bytes"]


def test_a_concatenation_that_lowers_the_peak_is_still_elided(tmp_path: Path) -> None:
    from tests.transforms.test_concat_in_place import dense_block

    plan = compile_run_check(dense_block(), tmp_path)
    assert plan["concat_in_place"] == {"elided": 2, "concatenations": 2}
