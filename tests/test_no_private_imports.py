"""Nothing in the graphopt package imports a private name (`_x`) from another module.

A leading underscore says "internal to this module": once a second module imports
it, renaming or changing it silently breaks that importer. Whatever two modules
share is made public under a name that explains it, or moved where it belongs.

Read with `ast` (nothing is imported), over every .py file of the package: graphopt/
plus the folders the build maps into it (passes/ -> graphopt.passes, runtime/ ->
graphopt.runtime). Flagged, for graphopt and third-party (standard library included)
modules alike:

* `from M import _x`, `from M._m import x`, `import M._m` (relative imports too);
* `mod._x` where `mod` was bound by an import of a module (`import M as mod`,
  `from graphopt.pkg import mod`), through submodules (`graphopt.passes._x`);
* `importlib.import_module("M._m")` and `getattr(mod, "_x")` with literal names.

Dunder names (`__version__`, `__file__`) are public. A module's own names are not
"from another module". Exceptions live in ALLOWED, one reason each, keyed by the
importing file, and a stale entry fails too, so the list stays as short as it can.
"""

from __future__ import annotations

import ast
import functools
import runpy
import tomllib
from pathlib import Path
from unittest import mock

REPO = Path(__file__).resolve().parents[1]

# (importing file, dotted name) -> why this private name may be used there.
ALLOWED: dict[tuple[str, str], str] = {
    ("passes/native.py", "graphopt.passes._dsa_native"):
        "the compiled half of native.py (named by setup.py; _json/json convention): native.py is its one wrapper",
    ("graphopt/frontend/importer.py", "tvm.relax.frontend.onnx.onnx_frontend._get_convert_map"):
        "TVM (pinned 0.27) has no public list of the ONNX ops its Relax importer converts; "
        "tests/frontend/test_importer.py::test_supported_ops_come_from_tvm catches a change",
    ("runtime/tvm_rt.py", "tvm.base._LOADED_LIBS"):
        "TVM's documented registry of loaded libraries for downstream extensions (tvm/base.py), "
        "used the same way by its own CUDA backend; no public accessor",
}


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def first_private(dotted: str) -> str | None:
    """The dotted prefix up to the first private part of `dotted`, or None."""
    parts = dotted.split(".")
    for i, part in enumerate(parts):
        if is_private(part):
            return ".".join(parts[: i + 1])
    return None


@functools.cache
def package_dirs() -> dict[str, Path]:
    """Package name -> folder, as the build maps them: pyproject.toml's package-dir, then the
    package_dir setup.py hands to setuptools (run with setup() stubbed out: nothing is built);
    neither: setuptools' default, the folder of the same name."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    mapping = dict(config.get("tool", {}).get("setuptools", {}).get("package-dir") or {})
    if (REPO / "setup.py").exists():
        captured: dict = {}
        with mock.patch("setuptools.setup", lambda **kwargs: captured.update(kwargs)):
            runpy.run_path(str(REPO / "setup.py"), run_name="setup")
        mapping.update(captured.get("package_dir") or {})
    mapping = mapping or {"graphopt": "graphopt"}
    return {pkg: REPO / folder for pkg, folder in mapping.items() if pkg.split(".")[0] == "graphopt"}


def package_files() -> dict[Path, str]:
    """Every .py file of the package -> its module name (a package's __init__.py -> the package)."""
    files: dict[Path, str] = {}
    for pkg, folder in package_dirs().items():
        for path in sorted(folder.rglob("*.py")):
            rel = path.relative_to(folder).with_suffix("").parts
            if any(part.startswith(".") or part == "__pycache__" for part in rel):
                continue
            parts = pkg.split(".") + list(rel)
            if parts[-1] == "__init__":
                parts.pop()
            files.setdefault(path, ".".join(parts))
    return files


def package_modules(files: dict[Path, str]) -> set[str]:
    """Module names of the package, compiled extensions (`name.<abi>.so`) included."""
    modules = set(files.values())
    for pkg, folder in package_dirs().items():
        for path in folder.rglob("*"):
            if path.suffix in (".so", ".pyd") and path.parent.joinpath("__init__.py").exists():
                rel = path.relative_to(folder).parent.parts + (path.name.split(".")[0],)
                modules.add(".".join([pkg, *rel]))
    return modules


def is_graphopt(module: str) -> bool:
    return module == "graphopt" or module.startswith("graphopt.")


class Finder(ast.NodeVisitor):
    """Collects (line, dotted private name) for one file of module `module`."""

    def __init__(self, module: str, is_package: bool, modules: set[str]) -> None:
        self.module = module
        self.package = module if is_package else module.rpartition(".")[0]
        self.modules = modules
        self.bound: dict[str, str] = {}  # local name -> the module an import bound it to
        self.found: list[tuple[int, str]] = []

    def is_own(self, dotted: str) -> bool:
        """A name this module defines itself (its own privates are fine; its private submodules are not)."""
        return dotted.rpartition(".")[0] == self.module and dotted not in self.modules

    def check(self, node: ast.AST, dotted: str) -> None:
        private = first_private(dotted)
        if private and not self.is_own(private):
            self.found.append((node.lineno, private))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.check(node, alias.name)
            if alias.asname:
                self.bound[alias.asname] = alias.name
            else:
                top = alias.name.split(".")[0]
                self.bound[top] = top

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base = self.package.split(".")
            base = base[: len(base) - (node.level - 1)]
            source = ".".join(base + ([node.module] if node.module else []))
        else:
            source = node.module or ""
        for alias in node.names:
            if alias.name == "*":
                self.check(node, source)
                continue
            full = f"{source}.{alias.name}"
            self.check(node, full)
            if is_graphopt(full) and full in self.modules:
                self.bound[alias.asname or alias.name] = full
            elif not is_graphopt(source):
                # Third-party: whether it is a module is unknown without importing it;
                # a private attribute reached through it is flagged either way.
                self.bound[alias.asname or alias.name] = full

    def visit_Attribute(self, node: ast.Attribute) -> None:
        chain: list[str] = []
        inner: ast.expr = node
        while isinstance(inner, ast.Attribute):
            chain.append(inner.attr)
            inner = inner.value
        if isinstance(inner, ast.Name) and inner.id in self.bound:
            self.check_chain(node, self.bound[inner.id], reversed(chain))
            return  # the inner Attribute nodes are this same chain
        self.generic_visit(node)

    def check_chain(self, node: ast.AST, current: str, attrs) -> None:
        """Walk `current.a.b...`: through submodules for graphopt, every part for third-party."""
        for attr in attrs:
            current = f"{current}.{attr}"
            if is_private(attr):
                if not self.is_own(current):
                    self.found.append((node.lineno, current))
                return
            if is_graphopt(current) and current not in self.modules:
                return  # a public attribute of a graphopt module: what it holds is its own business

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        literal = node.args[0].value if node.args and isinstance(node.args[0], ast.Constant) else None
        if name in ("import_module", "__import__") and isinstance(literal, str):
            self.check(node, literal)
        if (name == "getattr" and len(node.args) >= 2 and isinstance(node.args[0], ast.Name)
                and node.args[0].id in self.bound and isinstance(node.args[1], ast.Constant)
                and isinstance(node.args[1].value, str)):
            self.check_chain(node, self.bound[node.args[0].id], [node.args[1].value])
        self.generic_visit(node)


def find_private_imports() -> list[tuple[str, int, str]]:
    files = package_files()
    modules = package_modules(files)
    found = []
    for path, module in files.items():
        finder = Finder(module, path.name == "__init__.py", modules)
        finder.visit(ast.parse(path.read_text(), filename=str(path)))
        rel = path.relative_to(REPO).as_posix()
        found += [(rel, line, name) for line, name in finder.found]
    return sorted(set(found))


def test_scans_the_whole_package():
    modules = set(package_files().values())
    assert {"graphopt", "graphopt.passes.native", "graphopt.runtime.session", "graphopt.frontend.importer"} <= modules


def test_finder_catches_each_form():
    source = """
import graphopt.passes._dsa_native
import graphopt.passes.native as native
from graphopt.examples import models
from graphopt.cli import _shape_arg
from ._sibling import x
from . import _helper, __version__
import tvm
from tvm.relax import frontend
native._load()
models.EXAMPLES
graphopt.passes.native._FN
tvm.relax._ffi_api.x
frontend._private()
getattr(models, "_Builder")
importlib.import_module("graphopt.plan._secret")
self._own()
_local_name
"""
    modules = {"graphopt", "graphopt.passes", "graphopt.passes.native", "graphopt.examples", "graphopt.examples.models"}
    finder = Finder("graphopt.train.models", False, modules)
    finder.visit(ast.parse(source))
    assert [name for _, name in finder.found] == [
        "graphopt.passes._dsa_native", "graphopt.cli._shape_arg", "graphopt.train._sibling",
        "graphopt.train._helper", "graphopt.passes.native._load", "graphopt.passes.native._FN",
        "tvm.relax._ffi_api", "tvm.relax.frontend._private", "graphopt.examples.models._Builder",
        "graphopt.plan._secret",
    ]


def test_finder_tells_own_names_from_private_submodules():
    source = """
from graphopt.train import _own_helper
from . import _impl
from ._impl import helper
"""
    finder = Finder("graphopt.train", True, {"graphopt.train", "graphopt.train._impl"})
    finder.visit(ast.parse(source))
    assert [name for _, name in finder.found] == ["graphopt.train._impl", "graphopt.train._impl"]


def test_no_private_imports():
    found = find_private_imports()
    used = {(path, name) for path, _, name in found}
    bad = [f"{path}:{line}: {name}" for path, line, name in found if (path, name) not in ALLOWED]
    stale = [f"{path}: {name}" for path, name in ALLOWED if (path, name) not in used]
    assert not bad, ("private names imported from another module (make them public under a name that "
                     "explains them, or move them where they belong):\n  " + "\n  ".join(bad))
    assert not stale, "ALLOWED entries no longer needed (remove them):\n  " + "\n  ".join(stale)
