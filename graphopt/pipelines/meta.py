"""Metadata in SQLite: components, schemas, versions, commits, branches, runs, metrics.

Why SQLite in WAL mode: several processes may commit at once; WAL lets readers
go on while one writer holds the lock, `BEGIN IMMEDIATE` takes the write lock up
front (no deadlocking upgrade from a read), and a busy timeout makes writers wait
their turn instead of failing. Everything a commit writes is in one transaction,
so a killed process leaves either the whole commit or none of it.

Objects are written (and their names fsync'ed) before the rows that name them,
so no row ever points at an object that is not stored (fsck checks this
invariant); `synchronous = FULL` makes every committed transaction (a branch
head, a commit) durable before the call returns.

Staged changes live in *areas* (`staged.area`): a commit takes exactly the rows
of its own area, each identified by the token it was staged with (see
Repository.commit).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SCHEMA_VERSION = 2

DDL = """
CREATE TABLE IF NOT EXISTS state(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS schemas(
  component TEXT NOT NULL, number INTEGER NOT NULL, signature_hash TEXT NOT NULL,
  signature TEXT NOT NULL, PRIMARY KEY(component, number), UNIQUE(component, signature_hash));
CREATE TABLE IF NOT EXISTS versions(
  id INTEGER PRIMARY KEY, component TEXT NOT NULL, name TEXT NOT NULL, branch TEXT NOT NULL,
  schema INTEGER NOT NULL, increment INTEGER NOT NULL, spec_hash TEXT NOT NULL, spec TEXT NOT NULL,
  expects TEXT NOT NULL, created REAL NOT NULL,
  UNIQUE(component, name), UNIQUE(component, spec_hash, schema, expects));
CREATE TABLE IF NOT EXISTS commits(
  id TEXT PRIMARY KEY, branch TEXT NOT NULL, parents TEXT NOT NULL, message TEXT NOT NULL,
  author TEXT NOT NULL, created REAL NOT NULL, pipeline TEXT NOT NULL, metrics TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS branches(name TEXT PRIMARY KEY, head TEXT);
CREATE TABLE IF NOT EXISTS runs(
  key TEXT PRIMARY KEY, component TEXT NOT NULL, spec_hash TEXT NOT NULL, inputs TEXT NOT NULL,
  output TEXT, schema INTEGER, error TEXT, seconds REAL NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS metrics(run_key TEXT NOT NULL, name TEXT NOT NULL, value REAL NOT NULL,
  PRIMARY KEY(run_key, name));
CREATE TABLE IF NOT EXISTS compat(
  component TEXT NOT NULL, spec_hash TEXT NOT NULL, input_schemas TEXT NOT NULL,
  ok INTEGER NOT NULL, reason TEXT NOT NULL, PRIMARY KEY(component, spec_hash, input_schemas));
CREATE TABLE IF NOT EXISTS artifacts(artifact_id TEXT PRIMARY KEY, tree TEXT NOT NULL);
"""
STAGED_DDL = """CREATE TABLE IF NOT EXISTS staged(branch TEXT NOT NULL, area TEXT NOT NULL DEFAULT '',
  component TEXT NOT NULL, position INTEGER, spec TEXT NOT NULL, token TEXT NOT NULL DEFAULT '',
  PRIMARY KEY(branch, area, component))"""
DDL += STAGED_DDL + ";\n"


def connect(path: Path) -> sqlite3.Connection:
    """A connection in autocommit mode; callers group writes with `transaction`."""
    conn = sqlite3.connect(str(path), timeout=60.0, isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA busy_timeout = 60000")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    upgrade(conn)
    return conn


def upgrade(conn: sqlite3.Connection) -> None:
    """Schema 1 -> 2: staged rows gain an area and a token (old rows: the shared area)."""
    columns = {r["name"] for r in conn.execute("PRAGMA table_info(staged)")}
    if not columns or "area" in columns:
        return
    with transaction(conn):
        columns = {r["name"] for r in conn.execute("PRAGMA table_info(staged)")}
        if "area" in columns:  # another process upgraded it first
            return
        conn.execute("ALTER TABLE staged RENAME TO staged_v1")
        conn.execute(STAGED_DDL)
        conn.execute("INSERT INTO staged(branch, area, component, position, spec, token) "
                     "SELECT branch, '', component, position, spec, lower(hex(randomblob(16))) "
                     "FROM staged_v1 ORDER BY rowid")
        conn.execute("DROP TABLE staged_v1")
        conn.execute("UPDATE state SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION),))


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception (or a kill: SQLite's journal)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def create(conn: sqlite3.Connection, branch: str) -> None:
    with transaction(conn):
        for statement in DDL.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute("INSERT OR IGNORE INTO state VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        conn.execute("INSERT OR IGNORE INTO state VALUES ('head', ?)", (branch,))
        conn.execute("INSERT OR IGNORE INTO branches VALUES (?, NULL)", (branch,))


def now() -> float:
    return time.time()
