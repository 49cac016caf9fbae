"""The kernel records as a table of an RDB: the tuning study's SQLite file or PostgreSQL server.

    graphopt_kernel_records(workload, target, cpu, record)   primary key (workload, target, cpu)

Why a table: tuners on many machines write at once, and a JSON-lines file on a
shared disk cannot take concurrent writers from several hosts safely (flock is not
reliable over NFS); an RDB serializes them. `record` is the same JSON object as a
line of kernels.jsonl, so export is a copy. A write replaces the key's row in one
transaction (delete, insert); two machines racing on one key both succeed in turn
or the loser's insert hits the primary key and is retried: the last writer wins,
whole. URLs are read as `graphopt tune --storage` reads them (postgresql:// goes
through psycopg 3); a bad or unreachable URL is one TuningDBError line.
"""

from __future__ import annotations

import json
from pathlib import Path

from graphopt.errors import first_line
from graphopt.kernels.tuning.db import Key, Record, TuningDBError, parse_record
from graphopt.tune.storage import masked, sqlalchemy_url, table_exists

TABLE = "graphopt_kernel_records"
SCHEMES = ("sqlite", "postgresql", "postgres")
WRITE_ATTEMPTS = 5


class RecordTable:
    def __init__(self, url: str) -> None:
        import sqlalchemy as sa

        scheme = url.partition("://")[0].split("+")[0]
        if scheme not in SCHEMES:
            raise TuningDBError(f"bad tuning db {masked(url)!r}: expected a directory, sqlite:///FILE or "
                                "postgresql://...")
        if scheme == "sqlite":
            _check_sqlite(url)
        self.url = url
        meta = sa.MetaData()
        self.table = sa.Table(TABLE, meta, sa.Column("workload", sa.String(64), primary_key=True),
                              sa.Column("target", sa.String(200), primary_key=True),
                              sa.Column("cpu", sa.String(200), primary_key=True),
                              sa.Column("record", sa.Text, nullable=False))
        engine = {"connect_args": {"timeout": 60}} if scheme == "sqlite" else {"pool_pre_ping": True}
        try:
            self.engine = sa.create_engine(sqlalchemy_url(url), **engine)
            meta.create_all(self.engine, checkfirst=True)
        except ModuleNotFoundError as exc:
            raise TuningDBError(f"cannot open {masked(url)}: database driver {exc.name!r} is not installed") from None
        except Exception as exc:  # noqa: BLE001  (SQLAlchemy/driver errors of every kind mean "cannot open")
            if not self._exists():  # two machines creating the table at once: the other one won
                raise TuningDBError(f"cannot open tuning db {masked(url)}: {first_line(exc)}") from None

    def _exists(self) -> bool:
        return table_exists(self.engine, TABLE)

    def read(self) -> dict[Key, Record]:
        import sqlalchemy as sa

        try:
            with self.engine.connect() as conn:
                rows = conn.execute(sa.select(self.table.c.record)).all()
        except Exception as exc:  # noqa: BLE001
            raise TuningDBError(f"cannot read tuning db {masked(self.url)}: {first_line(exc)}") from None
        records = {}
        for (text,) in rows:
            try:
                record = parse_record(json.loads(text), f"{masked(self.url)} table {TABLE}")
            except json.JSONDecodeError as exc:
                raise TuningDBError(f"tuning db {masked(self.url)} table {TABLE} is corrupt: {exc.msg}") from None
            records[record.key] = record
        return records

    def write(self, record: Record) -> None:
        """Replaces the row of `record.key` in one transaction (retried when a concurrent writer won)."""
        import sqlalchemy as sa

        t = self.table
        match = (t.c.workload == record.workload) & (t.c.target == record.target) & (t.c.cpu == record.cpu)
        values = {"workload": record.workload, "target": record.target, "cpu": record.cpu,
                  "record": json.dumps(record.row(), sort_keys=True)}
        for attempt in range(WRITE_ATTEMPTS):
            try:
                with self.engine.begin() as conn:
                    conn.execute(sa.delete(t).where(match))
                    conn.execute(sa.insert(t).values(**values))
                return
            except sa.exc.IntegrityError:
                if attempt == WRITE_ATTEMPTS - 1:
                    raise TuningDBError(f"tuning db {masked(self.url)}: could not write {record.workload} "
                                        f"after {WRITE_ATTEMPTS} attempts (concurrent writers)") from None
            except Exception as exc:  # noqa: BLE001
                raise TuningDBError(f"cannot write tuning db {masked(self.url)}: {first_line(exc)}") from None


def _check_sqlite(url: str) -> None:
    path = url.partition(":///")[2]
    if not path or path == ":memory:":
        raise TuningDBError(f"bad tuning db {url!r}: a table needs a file (sqlite:///PATH)")
    if not Path(path).parent.is_dir():
        raise TuningDBError(f"bad tuning db {url!r}: directory {Path(path).parent} does not exist")
