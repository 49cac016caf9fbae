"""Content-addressed object store: `objects/ab/cdef...`, named by the sha-256 of the bytes.

Why this shape (git/DVC): equal outputs are stored once whatever run produced
them, and a name is its own checksum, so corruption is detectable anywhere.

Writes go to `tmp/` on the same filesystem, are fsync'ed, made read-only and then
linked into place, and the directory holding the new name is fsync'ed too (so the
name survives a power cut before any metadata row names it); a process killed
mid-write leaves only a temp file (ignored by fsck, removed by gc), never a
half-written object under its final name. Reads re-hash the bytes and refuse a
mismatch.

A *tree* is a small JSON object `{"format": "graphopt-tree", "files": {name: id}}`
describing a directory of outputs; its id is that of its JSON bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from graphopt.pipelines.errors import BadNameError, ComponentRunError, CorruptObjectError, MissingObjectError
from graphopt.pipelines.names import check_file_name

TREE_FORMAT = "graphopt-tree"
CHUNK = 1 << 20


def canonical(obj) -> bytes:
    """Canonical JSON bytes: equal values hash equal across processes and runs."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fsync_dir(path: Path) -> None:
    """Makes the names in directory `path` durable (a link, a rename or an unlink there)."""
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError:  # a file system that cannot sync directories: nothing more to do
        pass
    finally:
        os.close(fd)


class ObjectStore:
    """Objects under `root/objects`, temp files under `root/tmp`."""

    def __init__(self, root: Path) -> None:
        self.objects = Path(root) / "objects"
        self.tmp = Path(root) / "tmp"

    def path(self, oid: str) -> Path:
        return self.objects / oid[:2] / oid[2:]

    def has(self, oid: str) -> bool:
        return self.path(oid).is_file()

    def put_bytes(self, data: bytes) -> str:
        oid = sha256_bytes(data)
        if not self.has(oid):
            self._install(oid, lambda f: f.write(data))
        return oid

    def put_file(self, src: Path) -> str:
        digest = hashlib.sha256()
        with open(src, "rb") as f:
            for chunk in iter(lambda: f.read(CHUNK), b""):
                digest.update(chunk)
        oid = digest.hexdigest()
        if not self.has(oid):
            def copy(out) -> None:
                with open(src, "rb") as f:
                    for chunk in iter(lambda: f.read(CHUNK), b""):
                        out.write(chunk)
            self._install(oid, copy)
            if self.hash_of(self.path(oid)) != oid:  # the source changed while we copied it
                self.path(oid).unlink()
                raise CorruptObjectError(f"{src} changed while it was being stored; retry")
        return oid

    def _install(self, oid: str, write) -> None:
        """temp file -> fsync -> read-only -> link under its name (atomic, first writer wins)."""
        self.tmp.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix="obj-", dir=self.tmp)
        try:
            with os.fdopen(fd, "wb") as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp_name, 0o444)
            final = self.path(oid)
            try:
                final.parent.mkdir(parents=True)
                fsync_dir(self.objects)  # the new fan-out folder's name
            except FileExistsError:
                pass
            try:
                os.link(tmp_name, final)
            except FileExistsError:
                pass  # another process stored the same bytes first
            fsync_dir(final.parent)  # the object's name, before any row can name it
        finally:
            os.unlink(tmp_name)

    @staticmethod
    def hash_of(path: Path) -> str:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(CHUNK), b""):
                digest.update(chunk)
        return digest.hexdigest()

    def read_bytes(self, oid: str) -> bytes:
        """The object's bytes, re-hashed: a missing or corrupt object is an error naming it."""
        path = self.path(oid)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise MissingObjectError(f"object {oid} is missing from {self.objects}") from None
        if sha256_bytes(data) != oid:
            raise CorruptObjectError(f"object {oid} is corrupt (sha-256 mismatch); run `graphopt pipeline fsck`")
        return data

    def verify(self, oid: str) -> bool:
        return self.has(oid) and self.hash_of(self.path(oid)) == oid

    def size(self, oid: str) -> int:
        return self.path(oid).stat().st_size

    def ids(self) -> Iterator[str]:
        if not self.objects.is_dir():
            return
        for sub in sorted(self.objects.iterdir()):
            if sub.is_dir() and len(sub.name) == 2:
                for f in sorted(sub.iterdir()):
                    yield sub.name + f.name

    def delete(self, oid: str) -> None:
        path = self.path(oid)
        os.chmod(path, 0o644)
        path.unlink()

    # --- trees: a directory of outputs ---------------------------------------------------

    def put_tree_files(self, files: dict[str, str]) -> str:
        """Stores a tree whose files are already objects; returns the tree id."""
        return self.put_bytes(canonical({"format": TREE_FORMAT, "files": dict(sorted(files.items()))}))

    def put_dir(self, directory: Path) -> str:
        """Stores every file under `directory` (recursively) and the tree naming them.

        A symbolic link is refused, not followed: an output holds its own bytes, and
        the store never copies in a file from outside the folder it was given.
        """
        files = {}
        for path in sorted(Path(directory).rglob("*")):
            name = path.relative_to(directory).as_posix()
            if path.is_symlink():
                raise ComponentRunError(f"output {name!r} is a symbolic link; outputs must be regular files")
            if path.is_file():
                try:
                    check_file_name(name, nested=True)
                except BadNameError as exc:
                    raise ComponentRunError(f"output file: {exc}") from None
                files[name] = self.put_file(path)
        return self.put_tree_files(files)

    def read_tree(self, tree_id: str) -> dict[str, str]:
        try:
            tree = json.loads(self.read_bytes(tree_id))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise CorruptObjectError(f"object {tree_id} is not a tree") from None
        if not isinstance(tree, dict) or tree.get("format") != TREE_FORMAT:
            raise CorruptObjectError(f"object {tree_id} is not a tree")
        return tree["files"]

    def materialize(self, tree_id: str, dest: Path) -> Path:
        """Copies a tree's files into `dest`, verifying every blob on the way.

        Copies, not hard links: components may run as root, where a read-only
        mode would not stop them from writing into a shared object.
        """
        dest = Path(dest)
        files = self.read_tree(tree_id)
        for name in files:  # all names first: nothing is written for a tree naming a path outside `dest`
            try:
                check_file_name(name, nested=True)
            except BadNameError as exc:
                raise CorruptObjectError(f"tree {tree_id} names an unsafe path ({exc}); "
                                         f"run `graphopt pipeline fsck`") from None
        for name, oid in files.items():
            target = dest / name
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(self.read_bytes(oid))
            except (NotADirectoryError, IsADirectoryError, FileExistsError):
                raise CorruptObjectError(f"tree {tree_id} names {name!r} both as a file and a folder") from None
        return dest

    def tree_bytes(self, tree_id: str) -> int:
        return sum(self.size(oid) for oid in self.read_tree(tree_id).values())
