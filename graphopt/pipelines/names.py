"""Names that become paths: components, branches, staging areas, files inside components.

A component's name is a path: when a downstream step runs, the component's output
is copied to `tmp/run-*/in/<component>/`, and a command component gets it as
GRAPHOPT_IN_<NAME>. The files of a dataset or output tree are paths under that
folder. So every such name is checked where it enters the store (add-component,
stage, commit, init, branch) and again where it is joined to a path (the executor,
`ObjectStore.materialize`), before anything is written: a refused name is one line
(BadNameError, exit 2) and the repository is left as it was. Branch and staging-area
names are not paths (they live in SQLite and in version names `branch@schema.n`);
they follow the same rule so that none is ever an unsafe path or an option.

    component, branch, area   [A-Za-z0-9][A-Za-z0-9._-]*, at most 100 characters:
                              no separators, no `..`, no absolute paths, no NUL or
                              control characters, not an option (`-x`) or hidden (`.x`)
    a new component           may not differ from another of its chain only in case or
                              in `.`/`-`/`_` ("Data" and "data", "a-b" and "a_b"): they
                              would share a folder on a case-insensitive file system
                              and an environment variable
    a chain being run         (the executor's last check, laxer so that names committed
                              before these rules still run) each name one safe path
                              segment, no two equal ignoring case
    file in a component       one path segment (a dataset file) or a relative path of
                              segments (an output tree): no `/` at either end, no empty,
                              `.` or `..` segment, no NUL, backslash or control
                              characters, at most 255 bytes a segment; a dataset's files
                              unique ignoring case (one would replace the other)
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from graphopt.pipelines.errors import BadNameError

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")
MAX_NAME = 100
MAX_SEGMENT_BYTES = 255
MAX_PATH_BYTES = 1024


def _show(name: object) -> str:
    text = repr(name)
    return text if len(text) <= 60 else text[:57] + "..."


def check_name(what: str, name: object) -> str:
    """`name` if it is a valid component/branch/area name, else BadNameError (one line)."""
    if not isinstance(name, str) or not name:
        raise BadNameError(f"{what} name must not be empty")
    if len(name) > MAX_NAME:
        raise BadNameError(f"{what} name {_show(name)} is too long ({len(name)} characters, at most {MAX_NAME})")
    if not NAME_RE.match(name):
        why = " (it becomes a folder name)" if what == "component" else ""
        raise BadNameError(f"bad {what} name {_show(name)}: use letters, digits, '.', '_' and '-', "
                           f"starting with a letter or digit{why}")
    return name


def key(name: str) -> str:
    """What a component name is on disk and in the environment: case and `.-_` folded."""
    return "".join(c if c.isalnum() else "_" for c in name).upper()


def check_new_component(name: str, existing: Iterable[str]) -> str:
    """A name to add to a chain holding `existing`: valid, and not a near-twin of another."""
    check_name("component", name)
    for other in existing:
        if other != name and key(other) == key(name):
            raise BadNameError(f"component names {other!r} and {name!r} differ only in case or in '.', '-', '_'; "
                               f"rename one (they would share a folder and GRAPHOPT_IN_{key(name)})")
    return name


def check_chain(names: Iterable[str]) -> None:
    """The last line, where names are joined to paths: each one a safe folder name, no two the
    same ignoring case. Laxer than `check_name` on purpose: a chain committed before names were
    checked (with a space, say) still runs; one that would leave its folder never does."""
    seen: dict[str, str] = {}
    for name in names:
        check_file_name(name, what="component")
        other = seen.setdefault(name.casefold(), name)
        if other != name:
            raise BadNameError(f"component names {other!r} and {name!r} differ only in case; rename one")


def check_file_name(name: object, nested: bool = False, what: str = "file") -> str:
    """A file name inside a component: one segment, or (`nested`) a relative path of segments."""
    if not isinstance(name, str) or not name:
        raise BadNameError(f"{what} name must not be empty")
    if len(name.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        raise BadNameError(f"{what} name {_show(name)} is too long")
    if any(ord(c) < 32 or ord(c) == 127 for c in name) or "\\" in name:
        raise BadNameError(f"bad {what} name {_show(name)}: no control characters, NUL or backslashes")
    segments = name.split("/")
    if len(segments) > 1 and not nested:
        raise BadNameError(f"bad {what} name {_show(name)}: no '/' in it (it becomes one folder or file name)")
    for seg in segments:
        if seg in ("", ".", ".."):
            raise BadNameError(f"bad {what} name {_show(name)}: an absolute path or a '', '.' or '..' part")
        if len(seg.encode("utf-8", "surrogatepass")) > MAX_SEGMENT_BYTES:
            raise BadNameError(f"{what} name {_show(name)} has a part longer than {MAX_SEGMENT_BYTES} bytes")
    return name


def check_file_names(names: Iterable[str], nested: bool = False) -> None:
    """Every file name valid, and no two equal ignoring case (one would overwrite the other)."""
    seen: dict[str, str] = {}
    for name in names:
        check_file_name(name, nested)
        other = seen.get(name.casefold())
        seen[name.casefold()] = name
        if other is not None:
            raise BadNameError(f"two files named {name!r} (one would replace the other); rename one" if other == name
                               else f"file names {other!r} and {name!r} differ only in case; rename one")
