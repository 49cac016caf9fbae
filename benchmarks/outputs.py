"""Default places for benchmark results that never overwrite a stored one.

A run without an explicit output path used to write `results/latency-DATE.json`
(and swap.md, placement.md, ...) over the committed result of an earlier run of
the same day. A path the user names is written as asked; a default one gets the
first free `-2`, `-3`, ... suffix instead.
"""

from __future__ import annotations

from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def unused(path: Path, suffixes: tuple[str, ...] = ()) -> Path:
    """`path`, or `path` with the first free `-N` added to its stem. With
    `suffixes`, `path` is a stem and it is taken only when no `path + suffix` exists."""
    def taken(candidate: Path) -> bool:
        return any(Path(f"{candidate}{s}").exists() for s in suffixes) if suffixes else candidate.exists()

    if not taken(path):
        return path
    stem, suffix = (path, "") if suffixes else (path.with_suffix(""), path.suffix)
    n = 2
    while taken(Path(f"{stem}-{n}{suffix}")):
        n += 1
    return Path(f"{stem}-{n}{suffix}")
