"""`graphopt.passes` and `graphopt.runtime` in a source checkout that was never installed.

passes/ and runtime/ are top-level folders of the repository (the design fixes the
layout) installed as graphopt.passes and graphopt.runtime (pyproject.toml's
package-dir). An install resolves them: a wheel holds graphopt/passes/ itself, and
an editable install's import hook maps them. A checkout put on PYTHONPATH has no
such hook, so `import graphopt.passes` failed there. This finder answers for exactly
those two names, only in a checkout (setup.py beside graphopt/, no graphopt/passes/),
and only after every other finder: an install's own mapping always wins. Appending the
repository root to graphopt.__path__ instead would also make graphopt.tests,
graphopt.benchmarks and graphopt.setup importable.
"""

from __future__ import annotations

import sys
from importlib.machinery import ModuleSpec
from importlib.util import spec_from_file_location
from pathlib import Path

MAPPED = ("passes", "runtime")


class CheckoutFinder:
    """A meta path finder for graphopt.passes / graphopt.runtime in a source checkout."""

    def __init__(self, package: str, root: Path) -> None:
        self.folders = {f"{package}.{name}": root / name for name in MAPPED}

    def find_spec(self, fullname: str, path=None, target=None) -> ModuleSpec | None:
        folder = self.folders.get(fullname)
        if folder is None or not (folder / "__init__.py").is_file():
            return None
        return spec_from_file_location(fullname, folder / "__init__.py", submodule_search_locations=[str(folder)])


def find_mapped_folders(package: str, package_file: str) -> None:
    """Installs the finder when `package` is imported from a checkout (see the module doc)."""
    root = Path(package_file).resolve().parent.parent
    if not (root / "setup.py").is_file() or (root / package / MAPPED[0]).exists():
        return
    if not any(isinstance(f, CheckoutFinder) for f in sys.meta_path):
        sys.meta_path.append(CheckoutFinder(package, root))
