"""Artifacts shared between nodes through the study's RDB, by content id.

    graphopt_artifacts(build_id, content_id, built_by, stored_at)   primary key build_id
    graphopt_artifact_files(content_id, name, data)                 primary key (content_id, name)

Why the RDB: it is the one store every node of a tuning cluster already reaches
(the study's PostgreSQL), it outlives the Ray cluster (an object in Ray's store
dies with it), and it needs no file system shared between hosts. A node's
artifact cache (graphopt.tune.cache) stays a local directory; this table is what
nodes see of each other's:

    lookup   the build id a trial will produce -> the content id built for it, if any node built it
    fetch    that content id's files -> a temporary directory in the node's cache, checked
             (format, every file's sha-256, the content id) before it is renamed into place:
             a row changed in the database is refused, never measured
    publish  after a build: the files (manifest.json and every file it hashes) and then the
             build id's row, in one transaction, so a row is never visible without its files

So a compile whose artifact exists anywhere in the shared cache is never run again:
the node fetches it instead. The one way an id is built twice: two nodes that start
the same configuration at the same moment (neither found a row; the per-id lock of
graphopt.tune.cache keeps the workers of one node apart, and the samplers seldom
draw one configuration twice at once). Both publish; the first row stays, the
second is dropped. Files are stored raw, one row each (PostgreSQL's limit is 1 GB
per file).

Which storages get a table: `artifact_table_for(url)` (PostgreSQL and MySQL). A SQLite
file or a journal lives on one machine or a shared disk, and so does the cache
directory beside it: every worker already sees every artifact, and a copy in the
database would only store each twice.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from functools import lru_cache
from pathlib import Path

from graphopt.artifact import MANIFEST, load_manifest, swap_into_place
from graphopt.errors import ArtifactError, first_line
from graphopt.tune.errors import StorageError
from graphopt.tune.storage import masked, sqlalchemy_url, table_exists

INDEX, FILES = "graphopt_artifacts", "graphopt_artifact_files"
SHARED_SCHEMES = ("postgresql", "postgres", "mysql")


def artifact_table_for(url: str | None) -> ArtifactTable | None:
    """The shared table of a study storage reached from several machines; None for SQLite/journal."""
    if url is None or url.partition("://")[0].split("+")[0] not in SHARED_SCHEMES:
        return None
    return _open(url)


@lru_cache(maxsize=4)
def _open(url: str) -> ArtifactTable:
    return ArtifactTable(url)


class ArtifactTable:
    """The two tables in one RDB (created when missing); every failure to reach it is a StorageError line."""

    def __init__(self, url: str) -> None:
        import sqlalchemy as sa
        from sqlalchemy.dialects import mysql

        self.url = url
        meta = sa.MetaData()
        self.index = sa.Table(INDEX, meta, sa.Column("build_id", sa.String(64), primary_key=True),
                              sa.Column("content_id", sa.String(64), nullable=False),
                              sa.Column("built_by", sa.String(200), nullable=False),
                              sa.Column("stored_at", sa.Float, nullable=False))
        data = sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql")  # MySQL's BLOB stops at 64 KB
        self.files = sa.Table(FILES, meta, sa.Column("content_id", sa.String(64), primary_key=True),
                              sa.Column("name", sa.String(200), primary_key=True),
                              sa.Column("data", data, nullable=False))
        engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}
        try:
            self.engine = sa.create_engine(sqlalchemy_url(url), **engine)
        except Exception as exc:  # noqa: BLE001  (a bad URL or a missing driver)
            raise StorageError(f"cannot open the artifact table in {masked(url)}: {first_line(exc)}") from None
        try:
            meta.create_all(self.engine, checkfirst=True)
        except Exception as exc:  # noqa: BLE001
            if not self._exists():  # not just another node creating the tables at the same moment
                raise StorageError(f"cannot open the artifact table in {masked(url)}: {first_line(exc)}") from None

    def lookup(self, build_id: str) -> str | None:
        """The content id some node built for `build_id` (None: nobody has)."""
        import sqlalchemy as sa

        rows = self._read(sa.select(self.index.c.content_id).where(self.index.c.build_id == build_id))
        return rows[0][0] if rows else None

    def fetch(self, content_id: str, build_id: str, out_dir: Path) -> None:
        """Writes the artifact `content_id` to `out_dir`, checked before it is renamed into place."""
        import sqlalchemy as sa

        rows = self._read(sa.select(self.files.c.name, self.files.c.data).where(self.files.c.content_id == content_id))
        names = {name for name, _ in rows}
        if MANIFEST not in names or not all(map(_plain, names)):
            raise ArtifactError(f"shared artifact {content_id[:12]} in {masked(self.url)} is incomplete or has "
                                "unsafe file names; refusing it")
        tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.fetch.", dir=out_dir.parent))
        try:
            for name, data in rows:
                (tmp / name).write_bytes(data)
            try:
                manifest = load_manifest(tmp, verify=True, expect_id=content_id)
            except ArtifactError as exc:  # said of the database's copy, not of a temporary directory
                raise ArtifactError(f"shared artifact {content_id[:12]} in {masked(self.url)} is refused: "
                                    f"{str(exc).removeprefix(f'{tmp}: ')}") from None
            if manifest.get("build_id") != build_id:
                raise ArtifactError(f"shared artifact {content_id[:12]} is not a build of {build_id[:12]}; refusing it")
            swap_into_place(tmp, out_dir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def publish(self, build_id: str, content_id: str, art_dir: Path, built_by: str) -> bool:
        """Stores the artifact's files, then its build id's row, in one transaction; False when
        another node stored that row first (the table keeps the first)."""
        import sqlalchemy as sa

        manifest = load_manifest(art_dir, verify=False, expect_id=content_id)
        names = [MANIFEST, *sorted(manifest["files"])]
        try:
            with self.engine.begin() as conn:
                stored = set(conn.execute(sa.select(self.files.c.name)
                                          .where(self.files.c.content_id == content_id)).scalars())
                for name in (n for n in names if n not in stored):
                    conn.execute(sa.insert(self.files).values(content_id=content_id, name=name,
                                                              data=(art_dir / name).read_bytes()))
                conn.execute(sa.insert(self.index).values(build_id=build_id, content_id=content_id,
                                                          built_by=built_by, stored_at=time.time()))
        except sa.exc.IntegrityError:
            return False
        except sa.exc.SQLAlchemyError as exc:
            raise StorageError(f"cannot store artifact {content_id[:12]} in {masked(self.url)}: "
                               f"{first_line(exc)}") from None
        return True

    def _read(self, statement) -> list:
        import sqlalchemy as sa

        try:
            with self.engine.connect() as conn:
                return list(conn.execute(statement).all())
        except sa.exc.SQLAlchemyError as exc:
            raise StorageError(f"cannot read the artifact table in {masked(self.url)}: {first_line(exc)}") from None

    def _exists(self) -> bool:
        return table_exists(self.engine, FILES)


def _plain(name: str) -> bool:
    """A file name that stays inside the directory it is written to."""
    return bool(name) and name not in (".", "..") and "/" not in name and "\\" not in name and "\0" not in name
