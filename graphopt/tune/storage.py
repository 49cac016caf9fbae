"""Where a study lives: SQLite by default, any Optuna RDB URL, or a journal file.

    (default)                     sqlite:///STUDY_DIR/study.db (embedded, one file)
    sqlite:///PATH                one file; fine for the workers of one machine
    postgresql://USER@HOST/DB     workers on several machines, through psycopg 3 (a dependency);
                                  postgresql+DRIVER:// picks another driver, mysql:// works the same way
    journal:PATH  or  PATH.journal  Optuna's append-only journal file (NFS-friendly)

RDB storages get a heartbeat, so a trial whose worker was killed is marked
failed after the grace period and its configuration can be drawn again; every
finished trial is already committed and survives. A malformed or unreachable URL
is a StorageError of one line (passwords are masked), raised before any work.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from graphopt.errors import first_line
from graphopt.tune.errors import StorageError

RDB_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql")
HEARTBEAT_SECONDS = 5
GRACE_SECONDS = 30


def default_url(study_dir: Path) -> str:
    return f"sqlite:///{Path(study_dir).resolve() / 'study.db'}"


def masked(url: str) -> str:
    """The URL with any password replaced, for messages."""
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in creds:
        return url
    return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"


def journal_path(url: str) -> Path | None:
    if url.startswith("journal:"):
        return Path(url[len("journal:"):])
    if url.endswith((".journal", ".log")) and "://" not in url:
        return Path(url)
    return None


def open_storage(url: str):
    """An Optuna storage for `url`; every failure to open it is a StorageError."""
    journal = journal_path(url)
    if journal is not None:
        return _journal(journal)
    scheme = url.partition("://")[0].split("+")[0] if "://" in url else ""
    if scheme not in RDB_SCHEMES:
        raise StorageError(f"bad --storage {masked(url)!r}: expected sqlite:///FILE, postgresql://..., "
                           "mysql://... or journal:FILE")
    if scheme == "sqlite":
        _check_sqlite_path(url)
    return _rdb(url, scheme)


def table_exists(engine, table: str) -> bool:
    """Whether `table` exists in the database behind a SQLAlchemy engine (False when it cannot be told).

    Why: two machines creating the same table at once make one of them fail; that one checks
    whether the other's table is there before calling it an error."""
    import sqlalchemy as sa

    try:
        return sa.inspect(engine).has_table(table)
    except Exception:  # noqa: BLE001  (any driver error: cannot be told)
        return False


def sqlalchemy_url(url: str) -> str:
    """`url` with PostgreSQL's driver made explicit: SQLAlchemy's default for a bare postgresql://
    is psycopg2 and it does not know postgres:// at all; graphopt installs psycopg (3)."""
    scheme, sep, rest = url.partition("://")
    if sep and scheme in ("postgresql", "postgres"):
        return f"postgresql+psycopg://{rest}"
    return url


def _journal(path: Path):
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    if not path.parent.is_dir():
        raise StorageError(f"bad --storage: directory {path.parent} of journal file {path.name} does not exist")
    try:
        return JournalStorage(JournalFileBackend(str(path)))
    except Exception as exc:  # noqa: BLE001  (optuna raises OSError, ValueError...: all mean "cannot open")
        raise StorageError(f"cannot open journal {path}: {first_line(exc)}") from None


def _check_sqlite_path(url: str) -> None:
    path = url.partition(":///")[2]
    if not path or path == ":memory:":
        raise StorageError(f"bad --storage {url!r}: a study needs a file (sqlite:///PATH)")
    if not Path(path).parent.is_dir():
        raise StorageError(f"bad --storage {url!r}: directory {Path(path).parent} does not exist")


def _rdb(url: str, scheme: str):
    import optuna

    engine = {"connect_args": {"timeout": 60}} if scheme == "sqlite" else {"pool_pre_ping": True}
    try:
        with warnings.catch_warnings():  # the heartbeat is marked experimental; it is what resumption relies on
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(sqlalchemy_url(url), engine_kwargs=engine,
                                              heartbeat_interval=HEARTBEAT_SECONDS, grace_period=GRACE_SECONDS)
    except ModuleNotFoundError as exc:
        raise StorageError(f"cannot open {masked(url)}: database driver {exc.name!r} is not installed") from None
    except Exception as exc:  # noqa: BLE001  (SQLAlchemy/driver errors of every kind mean "cannot open")
        raise StorageError(f"cannot open storage {masked(url)}: {first_line(exc)}") from None
