"""Builds the one compiled helper: the exact placement search's inner loop.

Everything else (metadata, packages, the package-dir mapping) lives in
pyproject.toml. The extension is optional: without a C++ compiler the build
carries on and graphopt uses the pure-Python search (with a loud warning).
"""

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    """A failed compile is a warning, not a failed install."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - any compiler failure
            print(f"warning: graphopt's native placement search was not built ({exc}); using pure Python")

    def build_extension(self, ext) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001
            print(f"warning: could not build {ext.name} ({exc}); using pure Python")


setup(
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
