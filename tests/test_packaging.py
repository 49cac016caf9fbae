"""The installed package holds every subpackage: each folder with an __init__.py under graphopt/,
passes/ and runtime/ (the last two installed as graphopt.passes and graphopt.runtime), and no name
whose folder is gone. setup.py finds them under pyproject.toml's package-dir; nothing lists them by hand."""

import os
import runpy
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = {"graphopt": "graphopt", "graphopt.passes": "passes", "graphopt.runtime": "runtime"}


def on_disk() -> set[str]:
    """Installed names of every folder with an __init__.py under the three source folders."""
    names = set()
    for name, folder in FOLDERS.items():
        base = ROOT / folder
        for init in base.rglob("__init__.py"):
            names.add(".".join((name, *init.parent.relative_to(base).parts)))
    return names


@pytest.fixture()
def setup_args(monkeypatch) -> dict:
    """The keyword arguments setup.py passes to setuptools.setup (nothing is built)."""
    setuptools = pytest.importorskip("setuptools")
    captured: dict = {}
    monkeypatch.setattr(setuptools, "setup", lambda **kwargs: captured.update(kwargs))
    runpy.run_path(str(ROOT / "setup.py"), run_name="setup")
    return captured


def test_every_package_folder_is_packaged(setup_args):
    packaged = set(setup_args.get("packages", ()))
    assert on_disk() - packaged == set(), "folders with an __init__.py that the wheel would leave out"
    assert packaged - on_disk() == set(), "packaged names without a folder (a build stops on them)"


def test_pyproject_maps_passes_and_runtime_and_lists_no_packages():
    """A hand-written packages list in pyproject.toml would replace setup.py's and go stale."""
    setuptools_table = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert setuptools_table["package-dir"] == FOLDERS
    assert "packages" not in setuptools_table


def test_a_checkout_without_an_install_finds_the_mapped_folders() -> None:
    """graphopt.passes and graphopt.runtime import from the repository's passes/ and runtime/
    with no install's import hook (graphopt/checkout.py): the editable finder is removed first."""
    code = ("import sys; sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f)]; "
            "sys.modules.pop('graphopt', None); "
            "import graphopt.passes.base, graphopt.runtime.signature; "
            "print(graphopt.passes.__file__); print(graphopt.runtime.__file__); "
            "import importlib.util; print(importlib.util.find_spec('graphopt.tests'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout.split()
    assert out == [str(ROOT / "passes" / "__init__.py"), str(ROOT / "runtime" / "__init__.py"), "None"]
