"""Every example model: compile, run, match ONNX Runtime, valid plan, arena <= TVM stock."""

import pytest

from graphopt.examples.models import EXAMPLES
from tests.conftest import compile_run_check


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example_compiles_and_matches_onnx_runtime(name, tmp_path):
    plan = compile_run_check(EXAMPLES[name](), tmp_path)
    assert plan["num_tensors"] > 0

