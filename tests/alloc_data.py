"""Where the shared placement instances live: `../shared/data/alloc` beside the repo.

Test modules that need them import the `alloc_dir` fixture from here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_ALLOC_DIR = REPO_ROOT.parent / "shared" / "data" / "alloc"
VENDORED_ALLOC_DIR = REPO_ROOT / "tests" / "data" / "alloc"  # a copy, for clones without ../shared
ALLOC_DIR = SHARED_ALLOC_DIR if (SHARED_ALLOC_DIR / "input.12.csv").is_file() else VENDORED_ALLOC_DIR


@pytest.fixture(scope="session")
def alloc_dir() -> Path:
    """The instance folder; skips the test with the path tried when it is absent."""
    if not (ALLOC_DIR / "input.12.csv").is_file():
        pytest.skip(f"shared placement instances not found at {ALLOC_DIR}")
    return ALLOC_DIR
