"""The tuning database: one JSON object per line in DIR/kernels.jsonl.

Why JSON lines: a reader needs nothing but the standard library, a person can
read and diff it, and a few hundred kernels make a file of tens of kilobytes.
Every change rewrites the whole file to a temporary file in DIR and renames it
over the old one (atomic on POSIX), under an exclusive lock on DIR/.lock, after
re-reading what other processes committed meanwhile: a crash or a concurrent
tuner can never leave half a line or drop a committed record. A line that does
not parse is a TuningDBError naming the file and line: the CLI prints it as
one line and exits 2, and the file is left as it is.

A record: {"workload", "target", "rule", "knobs", "seconds", "default_seconds",
"trials", "kernel", "threads", "tuned_at"}. knobs == {} means the rule's default
was best; the kernel is still recorded, so it is never tuned again.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import tempfile
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from graphopt.errors import GraphoptError

FILE = "kernels.jsonl"
REQUIRED = ("workload", "target", "rule", "knobs")


class TuningDBError(GraphoptError):
    """The tuning database is missing, unreadable or corrupt."""


@dataclass(frozen=True)
class Record:
    workload: str
    target: str
    rule: str
    knobs: dict
    seconds: float | None = None
    default_seconds: float | None = None
    trials: int = 0
    kernel: str = ""
    threads: int | None = None
    tuned_at: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        return self.workload, self.target


class TuningDB:
    """Records keyed by (workload, target); `commit` persists one atomically."""

    def __init__(self, directory: Path, records: dict[tuple[str, str], Record]) -> None:
        self.directory = directory
        self.records = records

    @classmethod
    def open(cls, directory: str | Path, create: bool = False) -> TuningDB:
        directory = Path(directory)
        if directory.exists() and not directory.is_dir():
            raise TuningDBError(f"tuning db {directory} is not a directory")
        if not directory.exists():
            if not create:
                raise TuningDBError(f"no tuning db at {directory} (create one with `graphopt tune-kernels`)")
            directory.mkdir(parents=True)
        return cls(directory, _read(directory / FILE))

    def get(self, workload: str, target: str) -> Record | None:
        return self.records.get((workload, target))

    def commit(self, record: Record) -> None:
        """Adds or replaces one record and rewrites the file atomically."""
        with _locked(self.directory):
            self.records = {**_read(self.directory / FILE), record.key: record}
            _write(self.directory / FILE, self.records.values())

    def __len__(self) -> int:
        return len(self.records)

    def content_sha256(self) -> str:
        """Hash of the records (sorted by key, canonical JSON): the same choices give the
        same hash whatever the file's line order; it enters the artifact id."""
        digest = hashlib.sha256()
        for key in sorted(self.records):
            digest.update(json.dumps(asdict(self.records[key]), sort_keys=True, separators=(",", ":")).encode())
            digest.update(b"\n")
        return digest.hexdigest()


def _read(path: Path) -> dict[tuple[str, str], Record]:
    if not path.exists():
        return {}
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TuningDBError(f"cannot read tuning db {path}: {exc}") from None
    records = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        record = _parse(line, path, number)
        records[record.key] = record
    return records


def _parse(line: str, path: Path, number: int) -> Record:
    try:
        raw = json.loads(line)
    except json.JSONDecodeError as exc:
        raise TuningDBError(f"tuning db {path} is corrupt at line {number}: {exc.msg}") from None
    if not isinstance(raw, dict) or any(k not in raw for k in REQUIRED) or not isinstance(raw["knobs"], dict):
        raise TuningDBError(f"tuning db {path} is corrupt at line {number}: needs {', '.join(REQUIRED)}")
    known = {k: raw[k] for k in Record.__dataclass_fields__ if k in raw and k != "extra"}
    extra = {k: v for k, v in raw.items() if k not in Record.__dataclass_fields__}
    try:
        return Record(**known, extra=extra)
    except TypeError as exc:
        raise TuningDBError(f"tuning db {path} is corrupt at line {number}: {exc}") from None


def _write(path: Path, records) -> None:
    lines = []
    for r in sorted(records, key=lambda r: (r.target, r.workload)):
        row = {k: v for k, v in asdict(r).items() if k != "extra"}
        lines.append(json.dumps({**row, **r.extra}, sort_keys=True))
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".kernels.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write("\n".join(lines) + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def _locked(directory: Path):
    with open(directory / ".lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
