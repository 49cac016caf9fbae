"""What a study tunes, stored inside the study itself.

The whole setup (model, objectives, space, limits, cache directory) is a study
user attribute, so `graphopt tune --join --storage URL --study NAME` needs nothing
else: a worker on another shell or machine reads it from the shared storage and
works on exactly the same problem. The model's sha-256 is stored too, so a worker
that sees a different file under the same path refuses to join.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from graphopt.tune.errors import StorageError

ATTR = "graphopt_tune"
OBJECTIVES = ("latency", "peak_memory", "loss")
UNITS = {"latency": "ms", "peak_memory": "bytes", "loss": ""}


@dataclass(frozen=True)
class StudyConfig:
    model: str
    model_sha256: str
    objectives: tuple[str, ...]
    space: dict
    cache_dir: str
    trials: int
    train: bool = False
    data: str | None = None
    memory_limit: int | None = None
    target: str = "llvm"
    repeat: int = 10
    warmup: int = 2
    steps: int = 5
    sampler: str = "tpe"
    seed: int | None = None
    extra: dict = field(default_factory=dict)

    def to_attr(self) -> dict:
        return {**asdict(self), "objectives": list(self.objectives)}

    @classmethod
    def from_attr(cls, raw: dict) -> StudyConfig:
        return cls(**{**raw, "objectives": tuple(raw["objectives"])})

    def same_problem(self, other: StudyConfig) -> str | None:
        """Why `other` cannot continue this study (None: it can)."""
        for name in ("model_sha256", "objectives", "train", "target", "space"):
            if getattr(self, name) != getattr(other, name):
                return f"its {name.replace('_', ' ')} differs"
        return None


def read(study) -> StudyConfig:
    raw = study.user_attrs.get(ATTR)
    if raw is None:
        raise StorageError(f"study {study.study_name!r} was not created by graphopt tune")
    return StudyConfig.from_attr(raw)


def check_model(config: StudyConfig) -> None:
    """Refuses to work on a model file that is not the one the study was created for."""
    from graphopt.artifact import sha256_file

    path = Path(config.model)
    if not path.is_file():
        raise StorageError(f"the study's model {path} is not on this machine (same path needed to join)")
    if sha256_file(path) != config.model_sha256:
        raise StorageError(f"{path} changed since the study was created (sha-256 differs)")
