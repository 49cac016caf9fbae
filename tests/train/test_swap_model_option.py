"""`--swap-model rich|plain`: a training option (rich by default), refused without --train or
with an unknown name, recorded in the manifest only under a budget (unbudgeted ids stay put)."""

from __future__ import annotations

import argparse

import pytest

from graphopt.cli import compile as compile_cli
from graphopt.errors import InputError
from graphopt.options import TrainOptions


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    compile_cli.register(parser.add_subparsers())
    return parser.parse_args(["compile", "m.onnx", "-o", "out", *argv])


def test_swap_model_defaults_to_rich_and_is_a_training_knob() -> None:
    assert compile_cli.options_from_args(_args("--train")).swap_model == "rich"
    assert compile_cli.options_from_args(_args("--train", "--swap-model", "plain")).swap_model == "plain"
    with pytest.raises(InputError, match="--swap-model applies to a training step"):
        compile_cli.options_from_args(_args("--swap-model", "plain"))
    with pytest.raises(InputError, match="choose rich or plain"):
        TrainOptions(swap_model="fancy").check()


def test_manifest_records_the_swap_model_only_under_a_budget() -> None:
    assert "swap_model" not in TrainOptions().as_manifest()
    budgeted = TrainOptions(memory_budget="60%", swap_model="plain").as_manifest()
    assert budgeted["swap_model"] == "plain"
    assert TrainOptions(memory_budget="60%").as_manifest() != budgeted
