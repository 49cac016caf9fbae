"""A frozen copy of graphopt's source for one conformance run.

The working tree is shared with engineers editing it during the run. Workers live
for many cases, and Python imports a module when first needed: a worker that
imported `graphopt.errors` before an edit and `runtime/fallback.py` after it mixes
two versions (seen 2026-12-06: 171 cases "crashed" on an ImportError no version
of the tree had). So a run copies graphopt/, passes/ and runtime/ once, at its
start, laid out as an installed wheel (passes/ and runtime/ inside graphopt/),
and its workers import graphopt from that copy only: every case measures the
same code, identified by the copy's content hash.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from benchmarks.conformance_cases import REPO

# where each folder of the checkout goes inside the copy (the wheel's layout, pyproject's package-dir)
LAYOUT = {"graphopt": "graphopt", "passes": "graphopt/passes", "runtime": "graphopt/runtime"}


def take(dest: Path) -> str:
    """Copies the source into `dest` (which must not exist); returns its content sha256, 12 digits."""
    for folder, inside in LAYOUT.items():
        shutil.copytree(REPO / folder, dest / inside, ignore=shutil.ignore_patterns("__pycache__"))
    return content_hash(dest)


def content_hash(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]
