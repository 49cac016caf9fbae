"""What a compile accepts: CompileOptions, and TrainOptions for a training step.

TrainOptions extends CompileOptions, so every compile option exists in training
too, and `check()` says in one line which combination is refused (an option is
never silently ignored). What goes into the artifact id is `as_manifest()`:
every field that can change the artifact, the tuning database by its content hash.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from graphopt.errors import InputError

DEFAULT_TIME_LIMIT = 10.0
DEFAULT_OPTIMIZER = "sgd:lr=0.1"
STEP_COSTS = ("analytic", "measured")
KERNEL_LIBRARIES = ("auto", "tvm", "onednn")  # who computes a kernel: graphopt.kernels.onednn.choose
SWAP_MODELS = ("rich", "plain")  # graphopt.plan.swap: the rich model adds boundary copy-ins, extends, rebuilds


@dataclass(frozen=True)
class CompileOptions:
    """An inference compile; the defaults are what `graphopt compile` uses."""

    target: str = "llvm"
    planner: str = "auto"
    # dims are ints; a (lo, hi) pair (graphopt.frontend.ranges.DimRange) makes a range compile
    input_shapes: dict[str, tuple] = field(default_factory=dict)
    # inputs fixed at compile time, name -> values (graphopt.frontend.input_values); checked per call
    input_values: dict[str, tuple] = field(default_factory=dict)
    time_limit: float = DEFAULT_TIME_LIMIT
    reorder: bool = True
    schedules: bool = True
    tuning_db: Path | None = None  # a `graphopt tune-kernels` database; kernels only, never the plan
    concat_in_place: bool = True  # producers write into their concatenation (graphopt.transforms.concat_in_place)
    fold: bool = True  # fold shape arithmetic for the fixed shapes (onnxslim)
    # compile a model whose tensors cannot fit this machine's memory (graphopt.plan.memory_limit).
    # Not in as_manifest, so not in the artifact id: it only decides whether the compile goes on,
    # and the artifact it writes is byte for byte the one a larger machine writes without it.
    allow_huge_arena: bool = False
    # nodes TVM cannot import run as onnxruntime kernels inside the plan (graphopt.frontend.fallback);
    # False refuses such a model instead
    fallback: bool = True
    # which library computes each convolution/matmul (graphopt.kernels.onednn.choose): "auto" follows the
    # tuning database's per-kernel record (TVM without one), "tvm" or "onednn" force one for every kernel
    kernel_library: str = "auto"

    @property
    def training(self) -> bool:
        return False

    @property
    def ranged(self) -> bool:
        """Some input dim is a range (graphopt.frontend.ranges): one artifact for every shape in it."""
        return any(not isinstance(d, int) for dims in self.input_shapes.values() for d in dims) and _has_ranges(
            self.input_shapes)

    def check(self) -> None:
        """Refuses, in one line, a combination this compile cannot honour."""
        check_kernel_options(self.target, self.schedules, self.tuning_db)
        if self.kernel_library not in KERNEL_LIBRARIES:
            raise InputError(f"--kernel-library {self.kernel_library!r}: choose {', '.join(KERNEL_LIBRARIES)}")
        if self.kernel_library != "auto" and (self.target != "llvm" or not self.schedules or self.training
                                              or self.ranged):
            raise InputError("--kernel-library tvm|onednn is supported for fixed-shape inference on --target llvm "
                             "with schedules on")
        if self.ranged and (self.training or self.target != "llvm"):
            raise InputError("a shape range (LO..HI) is supported for inference on --target llvm only")
        if self.input_values and (self.training or self.ranged):
            raise InputError("--input-value is supported for fixed-shape inference compiles only")

    def as_manifest(self) -> dict:
        shapes = {k: _dims_record(v) for k, v in sorted(self.input_shapes.items())}
        record = {"planner": self.planner, "input_shapes": shapes, "time_limit": self.time_limit,
                  "reorder": self.reorder, "schedules": self.schedules, "concat_in_place": self.concat_in_place,
                  "tuning_db_sha256": tuning_db_sha256(self.tuning_db)}
        if not self.fold:
            record["fold"] = False
        if self.input_values:  # recorded only when given, so other artifacts' ids stay put
            record["input_values"] = {k: list(v) for k, v in sorted(self.input_values.items())}
        if not self.fallback:  # recorded only when off, so the ids of models without fallback kernels stay put
            record["fallback"] = False
        if self.kernel_library != "auto":  # recorded only when forced, so every other artifact's id stays put
            record["kernel_library"] = self.kernel_library
        return record


@dataclass(frozen=True)
class TrainOptions(CompileOptions):
    """A training step (`graphopt compile --train`): forward, loss, backward, update.

    Concatenation in place is off: a training step's concatenations feed the
    backward pass, and the swap rewrite does not move views of a concatenation, so
    `concat_in_place=True` is refused rather than half-honoured.
    `memory_budget` is bytes or 'NN%' of the no-swap arena."""

    concat_in_place: bool = False
    loss: str = "cross_entropy"
    optimizer: str = DEFAULT_OPTIMIZER
    memory_budget: str | None = None
    swap_planner: str = "ours"
    swap_model: str = "rich"  # SWAP_MODELS
    link_bandwidth: float | None = None  # bytes/s; None: the cost model's PCIe 5 x16 default
    link_latency: float | None = None  # seconds
    step_costs: str = "analytic"  # or "measured": profile a no-swap build on this machine first
    frozen: tuple[str, ...] = ()  # weights kept fixed (graphopt.train.parameters)

    @property
    def training(self) -> bool:
        return True

    def check(self) -> None:
        super().check()
        if self.concat_in_place:
            raise InputError("concatenation in place is not supported with --train (use --no-concat-in-place)")
        if self.step_costs not in STEP_COSTS:
            raise InputError(f"--step-costs {self.step_costs!r}: choose analytic or measured")
        if self.swap_model not in SWAP_MODELS:
            raise InputError(f"--swap-model {self.swap_model!r}: choose rich or plain")

    def as_manifest(self) -> dict:
        record = super().as_manifest()
        record.pop("concat_in_place")
        return {**record, "train": True, "loss": self.loss, "optimizer": self.optimizer, "fold": self.fold,
                "memory_budget": self.memory_budget, "swap_planner": self.swap_planner,
                "link_bandwidth": self.link_bandwidth, "link_latency": self.link_latency,
                "step_costs": self.step_costs,
                **({"frozen": sorted(self.frozen)} if self.frozen else {}),  # older artifact ids stay put
                # recorded only under a budget (the only plans it changes), so unbudgeted artifact ids stay put
                **({"swap_model": self.swap_model} if self.memory_budget is not None else {})}


def _has_ranges(shapes: dict) -> bool:
    from graphopt.frontend.ranges import has_ranges

    return has_ranges(shapes)


def _dims_record(dims: tuple) -> list:
    """An input's dims as the manifest records them: numbers, and `LO..HI` text for a range
    (fixed shapes record exactly as before, so their artifact ids do not move)."""
    if all(isinstance(d, int) for d in dims):
        return list(dims)
    from graphopt.frontend.ranges import as_dim

    return [d if isinstance(d, int) else str(as_dim(d)) for d in dims]


def check_kernel_options(target_kind: str, schedules: bool, tuning_db: Path | None) -> None:
    """A tuning database holds choices of graphopt's CPU schedule rules: it needs them."""
    if tuning_db is not None and (not schedules or target_kind != "llvm"):
        raise InputError("a tuning db applies to the default CPU schedules: it needs --target llvm "
                         "without --no-schedules")


def tuning_db_sha256(directory: Path | None) -> str | None:
    """The content hash of a tuning database (None without one): a tuned build and an
    untuned one, or builds with two different databases, get different artifact ids."""
    if directory is None:
        return None
    from graphopt.kernels.tuning.db import TuningDB

    return TuningDB.open(directory).content_sha256()
