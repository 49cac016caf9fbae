"""MiniMalloc's CSV format: `id,lower,upper,size[,offset]`, one buffer a row.

The lifetime `[lower, upper)` is half-open, as in `Buffer`. The files carry no
alignment, so every buffer read gets `alignment` (1 by default: the published
instances were solved byte-exact). Ids are kept when every id is an integer;
otherwise (e.g. `b1`, `b2` in MiniMalloc's toy example) buffers are numbered in
row order and the original id is kept as the buffer's name, which is what gets
written back, so both kinds of file survive a round trip.
"""

from __future__ import annotations

import csv
from pathlib import Path

from graphopt.plan.placement import Placement
from graphopt.plan.problem import Buffer, MemoryProblem

PROBLEM_HEADER = ["id", "lower", "upper", "size"]
SOLUTION_HEADER = PROBLEM_HEADER + ["offset"]


def _read_rows(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and (line number, cells) rows, blank lines skipped."""
    with open(path, newline="") as f:
        rows = [(n, row) for n, row in enumerate(csv.reader(f), start=1) if row]
    if not rows:
        raise ValueError(f"{path}: empty file, expected header {','.join(PROBLEM_HEADER)}")
    header = [c.strip() for c in rows[0][1]]
    if header not in (PROBLEM_HEADER, SOLUTION_HEADER):
        raise ValueError(f"{path}:1: header {','.join(header)!r}, expected {','.join(PROBLEM_HEADER)}[,offset]")
    return header, rows[1:]


def _parse_row(path: Path, line: int, cells: list[str], width: int) -> list[int | str]:
    """The id as text, then the integer columns; errors name the line."""
    if len(cells) != width:
        raise ValueError(f"{path}:{line}: expected {width} columns, got {len(cells)}")
    try:
        return [cells[0].strip()] + [int(c) for c in cells[1:]]
    except ValueError:
        raise ValueError(f"{path}:{line}: non-integer value in {','.join(cells)!r}") from None


def _buffers(path: Path, parsed: list[tuple[int, list]], alignment: int) -> tuple[Buffer, ...]:
    """Builds buffers, keeping integer ids or numbering rows when ids are names."""
    numeric = all(cells[0].lstrip("-").isdigit() for _, cells in parsed)
    buffers = []
    for index, (line, cells) in enumerate(parsed):
        ident, lower, upper, size = cells[:4]
        bid, name = (int(ident), "") if numeric else (index, ident)
        try:
            buffers.append(Buffer(bid, lower, upper, size, alignment=alignment, name=name))
        except ValueError as e:
            raise ValueError(f"{path}:{line}: {e}") from None
    return tuple(buffers)


def _read(path: str | Path, alignment: int) -> tuple[MemoryProblem, dict[int, int] | None]:
    """Problem, plus offsets when the file has the fifth column."""
    path = Path(path)
    header, rows = _read_rows(path)
    parsed = [(line, _parse_row(path, line, cells, len(header))) for line, cells in rows]
    buffers = _buffers(path, parsed, alignment)
    try:
        problem = MemoryProblem(buffers, name=path.stem)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
    if len(header) == len(PROBLEM_HEADER):
        return problem, None
    return problem, {b.id: cells[4] for b, (_, cells) in zip(buffers, parsed)}


def read_problem(path: str | Path, alignment: int = 1) -> MemoryProblem:
    """Reads `id,lower,upper,size` rows (an `offset` column, if present, is ignored)."""
    return _read(path, alignment)[0]


def read_solution(path: str | Path, alignment: int = 1) -> tuple[MemoryProblem, Placement]:
    """Reads a file with the `offset` column: the problem and its placement."""
    problem, offsets = _read(path, alignment)
    if offsets is None:
        raise ValueError(f"{path}:1: no offset column, this is a problem, not a solution")
    return problem, Placement.from_offsets(problem, offsets, planner=f"csv:{Path(path).name}")


def _ids(problem: MemoryProblem) -> list[str]:
    """Names when every buffer has a distinct, non-numeric one (as read), else ids."""
    names = [b.name for b in problem.buffers]
    usable = all(n and not n.lstrip("-").isdigit() and "," not in n and n == n.strip() for n in names)
    if usable and len(set(names)) == len(names):
        return names
    return [str(b.id) for b in problem.buffers]


def write_problem(problem: MemoryProblem, path: str | Path) -> None:
    """Writes `id,lower,upper,size` rows (alignment is not part of the format)."""
    with open(path, "w", newline="") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(PROBLEM_HEADER)
        for ident, b in zip(_ids(problem), problem.buffers):
            out.writerow([ident, b.start, b.end, b.size])


def write_solution(problem: MemoryProblem, placement: Placement, path: str | Path) -> None:
    """Writes the problem's rows with each buffer's offset as a fifth column."""
    missing = [b.id for b in problem.buffers if b.id not in placement.offsets]
    if missing:
        raise ValueError(f"placement has no offset for buffer(s) {missing[:5]}")
    with open(path, "w", newline="") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(SOLUTION_HEADER)
        for ident, b in zip(_ids(problem), problem.buffers):
            out.writerow([ident, b.start, b.end, b.size, placement.offsets[b.id]])
