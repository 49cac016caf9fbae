"""A throwaway PostgreSQL server for the tuner's tests: initdb into a temporary directory, serve on a
unix socket in that directory only (no TCP port to collide with), stop and delete it at the end.

The server binaries are found on PATH or under Debian's /usr/lib/postgresql/VERSION/bin (`make test`
installs them with apt-get when neither has them: .ci/install-postgres). initdb and postgres refuse
to run as root, so under root the server runs as `nobody` (setpriv, from util-linux): it owns its
temporary directory and nothing else. The tests connect through the socket with trust
authentication as the database superuser `graphopt`; every test gets a database of its own.

Without the binaries the PostgreSQL tests fail (the tuner's storage contract covers PostgreSQL);
GRAPHOPT_TEST_NO_POSTGRES=1 skips them (and `make test` then installs nothing), for a developer
machine that has no server on purpose.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

OPT_OUT = "GRAPHOPT_TEST_NO_POSTGRES"
SUPERUSER = "graphopt"
PORT = 5432  # only names the socket file: the socket directory is private to this server
ROOT_RUNS_AS = "nobody"
START_TIMEOUT_S = 60
# a test server: losing it loses nothing, so it never waits for the disk
SETTINGS = ("listen_addresses=''", "fsync=off", "synchronous_commit=off", "full_page_writes=off",
            "shared_buffers=16MB", "max_connections=60")


class NoServer(Exception):
    """No PostgreSQL server binaries on this machine (the message says what to do)."""


def find_binaries() -> tuple[Path, Path]:
    """(initdb, pg_ctl): from PATH, else the newest /usr/lib/postgresql/*/bin (Debian keeps them off PATH)."""
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl:
        return Path(initdb), Path(pg_ctl)
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    for d in map(Path, dirs):
        if os.access(d / "initdb", os.X_OK) and os.access(d / "pg_ctl", os.X_OK):
            return d / "initdb", d / "pg_ctl"
    raise NoServer("PostgreSQL server binaries (initdb, pg_ctl) are not on PATH nor in /usr/lib/postgresql/*/bin: "
                   "`make test` installs them (.ci/install-postgres: apt-get install postgresql); "
                   f"set {OPT_OUT}=1 to skip the PostgreSQL storage tests instead")


def _version_key(path: str) -> tuple:
    version = Path(path).parent.name
    return tuple(int(p) if p.isdigit() else -1 for p in version.split("."))


@dataclass
class Server:
    """A running server; `url(db)` is a storage URL for `graphopt tune --storage`."""

    root: Path
    pg_ctl: Path
    run_as: tuple[int, int] | None  # (uid, gid) when started by root
    _names: itertools.count = field(default_factory=itertools.count)

    @property
    def socket_dir(self) -> Path:
        return self.root

    def url(self, db: str, driver: str = "") -> str:
        scheme = f"postgresql+{driver}" if driver else "postgresql"
        return f"{scheme}://{SUPERUSER}@/{db}?host={self.socket_dir}&port={PORT}"

    def connect(self, db: str = "postgres"):
        import psycopg

        return psycopg.connect(host=str(self.socket_dir), port=PORT, user=SUPERUSER, dbname=db, autocommit=True)

    def new_database(self, prefix: str = "t") -> str:
        name = f"{prefix}_{os.getpid()}_{next(self._names)}"
        with self.connect() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def stop(self) -> None:
        _run(self.run_as, [str(self.pg_ctl), "-D", str(self.root / "data"), "-m", "fast", "-w", "-t", "30", "stop"],
             self.root, check=False)
        shutil.rmtree(self.root, ignore_errors=True)


def start() -> Server:
    """initdb + pg_ctl start; raises NoServer without binaries, RuntimeError (with the log) on failure."""
    initdb, pg_ctl = find_binaries()
    run_as = _unprivileged() if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="graphopt-pg-", dir="/tmp" if os.path.isdir("/tmp") else None))
    if run_as:
        os.chown(root, *run_as)
    data, log = root / "data", root / "server.log"
    try:
        _run(run_as, [str(initdb), "-D", str(data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--no-locale",
                      "--no-sync"], root)
        options = " ".join([f"-c unix_socket_directories='{root}'", f"-p {PORT}", *(f"-c {s}" for s in SETTINGS)])
        _run(run_as, [str(pg_ctl), "-D", str(data), "-l", str(log), "-w", "-t", str(START_TIMEOUT_S),
                      "-o", options, "start"], root)
    except RuntimeError as exc:
        tail = log.read_text(errors="replace")[-2000:] if log.is_file() else ""
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"{exc}\n{tail}") from None
    return Server(root, pg_ctl, run_as)


def _unprivileged() -> tuple[int, int]:
    try:
        entry = pwd.getpwnam(ROOT_RUNS_AS)
    except KeyError:
        raise RuntimeError(f"running as root and there is no user {ROOT_RUNS_AS!r} to run PostgreSQL as") from None
    return entry.pw_uid, entry.pw_gid


def _run(run_as: tuple[int, int] | None, argv: list[str], cwd: Path, check: bool = True) -> None:
    if run_as:
        argv = ["setpriv", f"--reuid={run_as[0]}", f"--regid={run_as[1]}", "--clear-groups", "--", *argv]
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=START_TIMEOUT_S + 30,
                          env={**os.environ, "LC_ALL": "C"})
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited with {proc.returncode}: {(proc.stderr or proc.stdout).strip()}")
