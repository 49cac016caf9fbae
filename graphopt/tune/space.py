"""The search space: which compile (and training) knobs a study varies, and over what.

A space maps knob names to one of
    a fixed value          reorder: true                  (not searched)
    a list of choices      planner: [greedy_by_size, cpsat]
    a range                lr: {low: 0.001, high: 0.1, log: true}   (int range if both ends are ints)
The default space is discrete on purpose: a compile is the unit of cost, and a
finite space lets the sampler never propose a configuration twice (see sampler.py).
A YAML file overrides the default knob by knob; every mistake is a SpaceError
naming the file and the knob, found before any worker starts.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graphopt.options import KERNEL_LIBRARIES, SWAP_MODELS
from graphopt.tune.errors import SpaceError

BOTH, INFER, TRAIN = "both", "inference", "train"
# knob -> (accepted Python types, which compiles it applies to)
KNOBS: dict[str, tuple[tuple[type, ...], str]] = {
    "planner": ((str,), BOTH),
    "time_limit": ((int, float), BOTH),
    "reorder": ((bool,), BOTH),
    "schedules": ((bool,), INFER),
    "concat_in_place": ((bool,), INFER),
    "kernel_library": ((str,), INFER),
    "batch_size": ((int,), BOTH),
    "memory_budget": ((str, int, type(None)), TRAIN),
    "swap_planner": ((str,), TRAIN),
    "swap_model": ((str,), TRAIN),
    "optimizer": ((str,), TRAIN),
    "lr": ((int, float), TRAIN),
}
OPTIMIZERS = ("sgd", "adam")
# knobs whose values are a fixed list of names, as the compile options define them
_CHOICES = {"kernel_library": KERNEL_LIBRARIES, "swap_model": SWAP_MODELS}
_BUDGET = re.compile(r"^\s*\d+(\.\d+)?\s*%?\s*$")


@dataclass(frozen=True)
class Knob:
    """One dimension: `choices` for a categorical knob, else `low`..`high` (a single choice = fixed)."""

    name: str
    choices: tuple | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False

    @property
    def fixed(self) -> bool:
        return self.choices is not None and len(self.choices) == 1

    @property
    def integer(self) -> bool:
        return isinstance(self.low, int) and isinstance(self.high, int)

    def distribution(self):
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        if self.choices is not None:
            return CategoricalDistribution(self.choices)
        if self.integer:
            return IntDistribution(int(self.low), int(self.high), log=self.log)
        return FloatDistribution(float(self.low), float(self.high), log=self.log)

    def describe(self) -> str:
        if self.choices is not None:
            return ", ".join(map(str, self.choices)) if not self.fixed else f"{self.choices[0]} (fixed)"
        return f"{self.low} .. {self.high}{' (log)' if self.log else ''}"


@dataclass(frozen=True)
class Space:
    knobs: tuple[Knob, ...]
    train: bool

    def distributions(self) -> dict:
        """The searched knobs as Optuna distributions (fixed knobs are not searched)."""
        return {k.name: k.distribution() for k in self.knobs if not k.fixed}

    def fixed_values(self) -> dict[str, Any]:
        return {k.name: k.choices[0] for k in self.knobs if k.fixed}

    def grid(self) -> list[dict[str, Any]] | None:
        """Every configuration of the searched knobs, or None when a knob is a range."""
        searched = [k for k in self.knobs if not k.fixed]
        if any(k.choices is None for k in searched):
            return None
        names = [k.name for k in searched]
        return [dict(zip(names, combo)) for combo in itertools.product(*(k.choices for k in searched))]

    def as_dict(self) -> dict[str, Any]:
        """The YAML-shaped form, stored in the study so a joining worker uses the same space."""
        out: dict[str, Any] = {}
        for k in self.knobs:
            if k.choices is not None:
                out[k.name] = k.choices[0] if k.fixed else list(k.choices)
            else:
                out[k.name] = {"low": k.low, "high": k.high, "log": k.log}
        return out


def default_space(train: bool) -> Space:
    """Compile knobs that change the artifact: planner, its time limit, reordering, kernel schedules
    (concat_in_place and kernel_library are knobs too, left at their defaults unless a space file
    names them); with --train: memory budget (swaps), swap planner, optimizer and learning rate
    (swap_model too, left at its default unless named)."""
    if not train:
        raw = {"planner": ["greedy_by_size", "smartpool", "best_of_orderings", "cpsat", "bnb", "auto"],
               "time_limit": [1.0, 4.0], "reorder": [True, False], "schedules": [True, False]}
    else:
        raw = {"planner": ["greedy_by_size", "auto"], "time_limit": 2.0, "reorder": [True, False],
               "memory_budget": [None, "80%", "60%"], "swap_planner": "ours",
               "optimizer": ["sgd", "adam"], "lr": [0.01, 0.05, 0.2]}
    return parse_space(raw, train, "default space")


def load_space(path: Path, train: bool) -> Space:
    """The default space with the knobs of a YAML file replacing (or adding to) it."""
    import yaml

    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise SpaceError(f"cannot read space file {path} ({exc.strerror or exc})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}" if where is not None else ""
        raise SpaceError(f"space file {path} is not valid YAML{at}") from None
    if not isinstance(raw, dict) or not raw:
        raise SpaceError(f"space file {path} must be a mapping of knob names to values, choices or ranges")
    merged = {**default_space(train).as_dict(), **raw}
    return parse_space(merged, train, f"space file {path}")


def from_dict(raw: dict, train: bool) -> Space:
    return parse_space(raw, train, "stored space")


def parse_space(raw: dict, train: bool, where: str) -> Space:
    knobs = tuple(_knob(str(name), spec, train, where) for name, spec in raw.items())
    return Space(knobs, train)


def _knob(name: str, spec: Any, train: bool, where: str) -> Knob:
    if name not in KNOBS:
        raise SpaceError(f"{where}: unknown knob {name!r}; known: {', '.join(KNOBS)}")
    kinds, applies = KNOBS[name]
    if applies == TRAIN and not train:
        raise SpaceError(f"{where}: knob {name!r} applies to training compiles only (use --train)")
    if applies == INFER and train:
        raise SpaceError(f"{where}: knob {name!r} does not apply to training compiles")
    if isinstance(spec, dict) and "choices" in spec:
        spec = spec["choices"]
    if isinstance(spec, dict):
        return _range(name, spec, kinds, where)
    choices = tuple(spec) if isinstance(spec, list) else (spec,)
    if not choices:
        raise SpaceError(f"{where}: knob {name!r} has an empty list of choices")
    if len(set(map(repr, choices))) != len(choices):
        raise SpaceError(f"{where}: knob {name!r} repeats a choice")
    for value in choices:
        _check_value(name, value, kinds, where)
    return Knob(name, choices=choices)


def _range(name: str, spec: dict, kinds: tuple[type, ...], where: str) -> Knob:
    extra = set(spec) - {"low", "high", "log"}
    if extra or "low" not in spec or "high" not in spec:
        raise SpaceError(f"{where}: knob {name!r}: a range is {{low: .., high: .., log: true|false}}")
    low, high, log = spec["low"], spec["high"], spec.get("log", False)
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high))
    if not numeric or not (int in kinds or float in kinds):
        raise SpaceError(f"{where}: knob {name!r} cannot be a numeric range")
    if float not in kinds and not (isinstance(low, int) and isinstance(high, int)):
        raise SpaceError(f"{where}: knob {name!r} takes integers")
    if not low < high or (log and low <= 0) or not isinstance(log, bool):
        raise SpaceError(f"{where}: knob {name!r}: need low < high (and low > 0 with log: true)")
    for value in (low, high):
        _check_value(name, value, kinds, where)
    return Knob(name, low=low, high=high, log=log)


def _check_value(name: str, value: Any, kinds: tuple[type, ...], where: str) -> None:
    if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
        wanted = "/".join("null" if k is type(None) else k.__name__ for k in kinds)
        raise SpaceError(f"{where}: knob {name!r}: {value!r} is not {wanted}")
    problem = _value_problem(name, value)
    if problem:
        raise SpaceError(f"{where}: knob {name!r}: {problem}")


def _value_problem(name: str, value: Any) -> str | None:
    if name == "planner":
        from graphopt.passes.registry import PLANNERS

        return None if value in PLANNERS else f"unknown planner {value!r}; known: {', '.join(PLANNERS)}"
    if name == "swap_planner":
        from graphopt.passes.swap_registry import SWAP_PLANNERS

        return None if value in SWAP_PLANNERS else f"unknown swap planner {value!r}"
    if name in _CHOICES:
        known = _CHOICES[name]
        return None if value in known else f"unknown {name.replace('_', ' ')} {value!r}; choose {', '.join(known)}"
    if name == "optimizer":
        return None if value in OPTIMIZERS else f"unknown optimizer {value!r}; choose {' or '.join(OPTIMIZERS)}"
    if name in ("time_limit", "lr", "batch_size") and value <= 0:
        return f"{value!r} must be positive"
    if name == "memory_budget" and isinstance(value, str) and not _BUDGET.match(value):
        return f"{value!r} is not BYTES or PERCENT%"
    return None
