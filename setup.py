"""Finds graphopt's packages and builds the one compiled helper: the exact placement search's inner loop.

Packages: graphopt is three folders, graphopt/ and the top-level passes/ and
runtime/, installed as graphopt.passes and graphopt.runtime (pyproject.toml's
package-dir). Every folder with an __init__.py under them is a package
(packages() below), so a new subpackage needs no configuration. Everything else
(metadata, the package-dir mapping, tool settings) lives in pyproject.toml.

The extension is optional: without a C++ compiler the build carries on and
graphopt uses the pure-Python search (with a loud warning).

The CUDA swap engine (cuda/, loaded by graphopt.runtime.cuda_swap for CUDA
artifacts with swaps) is built beside it when nvcc exists, with cuda/Makefile
(ARCH from $GRAPHOPT_CUDA_ARCH, default sm_90), into the graphopt.runtime
package directory; without nvcc the install says so in one line and goes on.
"""

import os
import shutil
import subprocess
import tomllib
from pathlib import Path

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent


def packages() -> list[str]:
    """Each folder pyproject.toml's package-dir maps and every folder with an __init__.py
    below it, named as installed (passes/swap_cpsat.py -> graphopt.passes.swap_cpsat)."""
    package_dir = tomllib.loads((HERE / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    found = []
    for name, folder in package_dir.items():
        found += [name] + [f"{name}.{sub}" for sub in find_packages(str(HERE / folder))]
    return sorted(found)


class OptionalBuildExt(build_ext):
    """A failed compile is a warning, not a failed install."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - any compiler failure
            print(f"warning: graphopt's native placement search was not built ({exc}); using pure Python")
        build_swap_engine(Path(self.get_ext_fullpath("graphopt.runtime._probe")).parent)

    def build_extension(self, ext) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001
            print(f"warning: could not build {ext.name} ({exc}); using pure Python")


def build_swap_engine(package_dir: Path) -> None:
    """nvcc present: build cuda/ into package_dir (a failure is a loud warning, like
    the C++ extension's: CPU use must still install); absent: one note, no error."""
    nvcc = shutil.which(os.environ.get("NVCC", "nvcc"))
    if nvcc is None:
        print("note: nvcc not found: the CUDA swap engine (libgraphopt_swap.so) was not built; "
              "CPU artifacts are unaffected, CUDA artifacts with swaps will not load")
        return
    package_dir.mkdir(parents=True, exist_ok=True)
    out = package_dir.resolve() / "libgraphopt_swap.so"
    arch = os.environ.get("GRAPHOPT_CUDA_ARCH", "sm_90")
    cuda_dir = Path(__file__).resolve().parent / "cuda"
    command = ["make", "-s", "-B", "-C", str(cuda_dir), f"NVCC={nvcc}", f"ARCH={arch}", f"OUT={out}"]
    try:
        done = subprocess.run(command, check=False, capture_output=True, text=True)
    except OSError as exc:  # no make
        print(f"warning: the CUDA swap engine was not built ({exc}); CUDA artifacts with swaps will not load")
        return
    if done.returncode != 0:
        tail = " ".join(done.stderr.split())[-400:]
        print(f"warning: the CUDA swap engine failed to build ({tail}); CUDA artifacts with swaps will not load")
        return
    print(f"built the CUDA swap engine {out} ({arch})")


setup(
    packages=packages(),
    ext_modules=[
        Extension(
            "graphopt.passes._dsa_native",
            sources=["passes/_native/dsa.cpp"],
            language="c++",
            extra_compile_args=["-O2", "-std=c++17"],
        )
    ],
    cmdclass={"build_ext": OptionalBuildExt},
)
