"""The tuning database: records keyed by (workload, target, CPU), in a JSON-lines file or an RDB table.

    DIR                       DIR/kernels.jsonl: one JSON object per line (what `compile
                              --tuning-db DIR` reads; one machine, or one CPU's export)
    sqlite:///FILE            the table `graphopt_kernel_records` in an RDB: the tuning
    postgresql://USER@HOST/DB study's database, written by many machines at once
                              (db_table.py)

Why the CPU is in the key: a kernel's time is only comparable with times taken on
the same CPU model (clock, caches, SIMD width; graphopt.cluster.node). Every record
says which CPU measured it (`cpu`, "model name/vector bits"), the tuner reads and
writes only its own node's records, and a choice never mixes two CPUs. Records from
before this field have cpu "" and are taken as they are.

The file: every change rewrites it to a temporary file in DIR and renames it over
the old one (atomic on POSIX), under an exclusive lock on DIR/.lock, after
re-reading what other processes committed meanwhile: a crash or a concurrent
tuner can never leave half a line or drop a committed record. A line that does
not parse is a TuningDBError naming the file and line: the CLI prints it as one
line and exits 2, and the file is left as it is. The table: one row per key,
replaced in one transaction (db_table.py says how concurrent writers are kept apart).

A record: {"workload", "target", "rule", "knobs", "seconds", "default_seconds",
"trials", "kernel", "threads", "tuned_at", "cpu"}. knobs == {} means the rule's default
was best; the kernel is still recorded, so it is never tuned again on that CPU.
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
Key = tuple[str, str, str]


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
    cpu: str = ""  # the CPU that measured it (graphopt.cluster.node.node_cpu); "" before CPUs were recorded

    @property
    def key(self) -> Key:
        return self.workload, self.target, self.cpu

    def row(self) -> dict:
        """The record as one JSON object (extra fields at the top level; no empty cpu, so records
        from before the field hash and export exactly as they did)."""
        row = {k: v for k, v in asdict(self).items() if k != "extra" and not (k == "cpu" and not v)}
        return {**row, **self.extra}


def is_url(location: str | Path) -> bool:
    return "://" in str(location)


class TuningDB:
    """Records keyed by (workload, target, cpu); `commit` persists one atomically."""

    def __init__(self, location: str | Path, records: dict[Key, Record], table=None) -> None:
        self.location = location
        self.directory = None if table is not None else Path(location)
        self.records = records
        self._table = table

    @classmethod
    def open(cls, location: str | Path, create: bool = False) -> TuningDB:
        """A directory (JSON lines) or an RDB URL (a table of the study's database)."""
        if is_url(location):
            from graphopt.kernels.tuning.db_table import RecordTable

            table = RecordTable(str(location))
            return cls(str(location), table.read(), table)
        directory = Path(location)
        if directory.exists() and not directory.is_dir():
            raise TuningDBError(f"tuning db {directory} is not a directory")
        if not directory.exists():
            if not create:
                raise TuningDBError(f"no tuning db at {directory} (create one with `graphopt tune-kernels`)")
            directory.mkdir(parents=True)
        return cls(directory, _read(directory / FILE))

    def get(self, workload: str, target: str, cpu: str | None = None) -> Record | None:
        """The record measured on `cpu` (or from before CPUs were recorded). cpu=None (what compile
        asks): this node's record, else a legacy one, else the only CPU's (an export is one CPU's)."""
        if cpu is not None:
            return self.records.get((workload, target, cpu)) or self.records.get((workload, target, ""))
        from graphopt.cluster.node import node_cpu

        found = self.get(workload, target, node_cpu())
        if found is not None:
            return found
        others = [r for (w, t, _c), r in self.records.items() if (w, t) == (workload, target)]
        return others[0] if len(others) == 1 else None

    def refresh(self) -> None:
        """Re-reads what other processes and machines committed."""
        self.records = self._table.read() if self._table is not None else _read(self.directory / FILE)

    def commit(self, record: Record) -> None:
        """Adds or replaces one record (file: rewritten atomically; table: one transaction)."""
        if self._table is not None:
            self._table.write(record)
            self.records = {**self._table.read(), record.key: record}
            return
        with _locked(self.directory):
            self.records = {**_read(self.directory / FILE), record.key: record}
            _write(self.directory / FILE, self.records.values())

    def export_jsonl(self, directory: str | Path, cpu: str) -> int:
        """Writes DIR/kernels.jsonl with the records of one CPU (and legacy ones): what
        `compile --tuning-db DIR` reads on a machine of that CPU. Returns the count."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        chosen = [r for r in self.records.values() if r.cpu in (cpu, "")]
        with _locked(directory):
            _write(directory / FILE, chosen)
        return len(chosen)

    def cpus(self) -> list[str]:
        return sorted({r.cpu for r in self.records.values()})

    def __len__(self) -> int:
        return len(self.records)

    def content_sha256(self) -> str:
        """Hash of the records (sorted by key, canonical JSON): the same choices give the
        same hash whatever the file's line order; it enters the artifact id."""
        digest = hashlib.sha256()
        for key in sorted(self.records):
            row = asdict(self.records[key])
            if not row["cpu"]:
                del row["cpu"]
            digest.update(json.dumps(row, sort_keys=True, separators=(",", ":")).encode())
            digest.update(b"\n")
        return digest.hexdigest()


def parse_record(raw: object, where: str) -> Record:
    """A Record from one decoded JSON object; TuningDBError (naming `where`) if it is not one."""
    if not isinstance(raw, dict) or any(k not in raw for k in REQUIRED) or not isinstance(raw["knobs"], dict):
        raise TuningDBError(f"tuning db {where} is corrupt: needs {', '.join(REQUIRED)}")
    known = {k: raw[k] for k in Record.__dataclass_fields__ if k in raw and k != "extra"}
    extra = {k: v for k, v in raw.items() if k not in Record.__dataclass_fields__}
    try:
        return Record(**known, extra=extra)
    except TypeError as exc:
        raise TuningDBError(f"tuning db {where} is corrupt: {exc}") from None


def _read(path: Path) -> dict[Key, Record]:
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
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            raise TuningDBError(f"tuning db {path} is corrupt at line {number}: {exc.msg}") from None
        record = parse_record(raw, f"{path} at line {number}")
        records[record.key] = record
    return records


def _write(path: Path, records) -> None:
    lines = [json.dumps(r.row(), sort_keys=True) for r in sorted(records, key=lambda r: (r.target, r.workload, r.cpu))]
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
