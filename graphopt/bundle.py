"""A runtime-only bundle: compiled artifacts plus exactly what runs them, nothing of the compiler.

    DIR/run.py            launcher: python DIR/run.py --input NAME=FILE.npy [--artifact NAME]
    DIR/bundle.json       what is inside: artifacts, Python versions it runs on, sizes
    DIR/artifacts/NAME/   each artifact, as compiled (its hashes are checked at load)
    DIR/site/             the import root: graphopt (runtime only), tvm, tvm_ffi,
                          typing_extensions, and for CUDA the swap engine and libcudart

Which Python modules go in is measured, not guessed: a subprocess imports
graphopt.runtime (with its CPU and CUDA swap modules) under runtime-only TVM
(TVM_USE_RUNTIME_LIB=1, the mode the launcher uses) and lists what it loaded;
the bundle takes every file of each package that was touched, so a lazy import
of a sibling module cannot miss. Native libraries are TVM's runtime (never the
258 MB compiler), TVM-FFI's library and its Python extension.

TVM-FFI's extension (tvm_ffi/core.cpython-3XX-*.so) is tied to one CPython
minor version; everything else is version-neutral. For each extra Python
version asked for (`python_versions`, default 3.12, the GPU machine's), the
matching extension is taken from TVM-FFI's wheel for that version, downloaded
with pip (`--only-binary`) into a cache unless a wheel directory supplies it.
Python picks the extension whose tag is its own, so one bundle runs on both.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from graphopt.artifact import FALLBACK, load_manifest, refuse_foreign_target, swap_into_place
from graphopt.errors import ArtifactError, InputError

FORMAT = "graphopt-bundle"
SITE = "site"
ARTIFACTS = "artifacts"
TRACE_MODULES = ("graphopt.runtime", "graphopt.runtime.session", "graphopt.runtime.swap",
                 "graphopt.runtime.cuda_swap", "tvm.runtime.vm", "tvm_ffi.stream")
VENDORED_TOP = ("typing_extensions",)  # pure Python, needed by tvm_ffi, maybe absent on the target
TVM_LIBS = ("libtvm_runtime.so",)
TVM_CUDA_LIBS = ("libtvm_runtime_cuda.so",)
FFI_LIBS = ("libtvm_ffi.so", "libtvm_ffi_testing.so")  # core.*.so links both
CUDART_DIRS = ("/usr/local/cuda/lib64", "/usr/local/cuda/targets/x86_64-linux/lib")


@dataclass(frozen=True)
class BundleResult:
    path: Path
    total_bytes: int
    python_tags: list[str]
    artifacts: dict[str, dict]
    notes: list[str]


def make_bundle(artifacts: list[Path], out_dir: Path, python_versions: tuple[str, ...] = ("3.12",),
                wheel_dir: Path | None = None) -> BundleResult:
    """Writes the bundle atomically (temp sibling, renamed into place)."""
    out_dir = Path(out_dir).resolve()
    refuse_foreign_target(out_dir, "bundle.json", "bundle", InputError)
    manifests = _check_artifacts(artifacts)
    needs_cuda = any(m["target"].get("kind") == "cuda" for m in manifests.values())
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        notes: list[str] = []
        for art in artifacts:
            shutil.copytree(art, tmp / ARTIFACTS / art.name)
        tags = _write_site(tmp / SITE, needs_cuda, python_versions, wheel_dir, notes)
        _write_launcher(tmp)
        info = _describe(tmp, manifests, tags, notes)
        (tmp / "bundle.json").write_text(json.dumps(info, indent=1, sort_keys=True))
        swap_into_place(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return BundleResult(out_dir, info["total_bytes"], tags, info["artifacts"], notes)


def _check_artifacts(artifacts: list[Path]) -> dict[str, dict]:
    if not artifacts:
        raise InputError("no artifact to bundle")
    names = [Path(a).name for a in artifacts]
    if len(set(names)) != len(names):
        raise InputError(f"artifact directory names must differ inside a bundle: {', '.join(names)}")
    manifests = {Path(a).name: load_manifest(Path(a)) for a in artifacts}
    for name, manifest in manifests.items():
        if FALLBACK in manifest["files"]:  # the bundle ships TVM's runtime, not onnxruntime
            raise InputError(f"{name} runs nodes as onnxruntime fallback kernels, which a runtime-only bundle "
                             "cannot load; recompile with --no-fallback to see which ops, or deploy with the "
                             "graphopt package")
    return manifests


# ---------------------------------------------------------------- Python modules


def traced_module_files() -> dict[str, Path]:
    """Module name -> file, for what importing the runtime loads under runtime-only TVM."""
    code = ("import importlib, json, sys\n"
            f"for name in {list(TRACE_MODULES)!r}: importlib.import_module(name)\n"
            "tops = ('graphopt', 'tvm', 'tvm_ffi') + " + repr(VENDORED_TOP) + "\n"
            "print(json.dumps({n: getattr(m, '__file__', None) for n, m in list(sys.modules.items())"
            " if n.split('.')[0] in tops}))")
    env = {**os.environ, "TVM_USE_RUNTIME_LIB": "1"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise ArtifactError(f"cannot trace the runtime's imports: {(done.stderr.strip().splitlines() or ['?'])[-1]}")
    return {name: Path(f) for name, f in json.loads(done.stdout).items() if f}


def _package_roots() -> dict[str, Path]:
    """Installed location of each top-level package the bundle copies from."""
    import tvm_ffi
    import typing_extensions

    import graphopt
    from graphopt import runtime as graphopt_runtime

    tvm_root = Path(tvm_ffi.__file__).resolve().parent.parent / "tvm"
    if not (tvm_root / "__init__.py").is_file():  # tvm installed elsewhere: ask it (loads the compiler, once)
        import tvm

        tvm_root = Path(tvm.__file__).resolve().parent
    return {"graphopt": Path(graphopt.__file__).resolve().parent,
            "graphopt.runtime": Path(graphopt_runtime.__file__).resolve().parent,
            "tvm": tvm_root, "tvm_ffi": Path(tvm_ffi.__file__).resolve().parent,
            "typing_extensions": Path(typing_extensions.__file__).resolve()}


def _destination(name: str, file: Path, roots: dict[str, Path]) -> Path | None:
    """Where a traced module's directory goes under site/ (graphopt.runtime lives in runtime/)."""
    file = file.resolve()
    for prefix in ("graphopt.runtime", "graphopt", "tvm_ffi", "tvm"):
        root = roots[prefix]
        if (name == prefix or name.startswith(prefix + ".")) and file.is_relative_to(root):
            return Path(*prefix.split(".")) / file.parent.relative_to(root)
    return None


def _copy_python(site: Path, roots: dict[str, Path]) -> None:
    """graphopt: exactly the traced modules (the compiler must stay out); tvm and
    tvm_ffi: every .py file of each package directory a traced module lives in."""
    dirs: dict[Path, Path] = {}
    for name, file in traced_module_files().items():
        dest = _destination(name, file, roots) if name.split(".")[0] not in VENDORED_TOP else None
        if dest is None or file.suffix != ".py":
            continue
        if name.split(".")[0] == "graphopt":
            (site / dest).mkdir(parents=True, exist_ok=True)
            shutil.copy2(file, site / dest / file.name)
        else:
            dirs[file.resolve().parent] = dest
    for source, dest in dirs.items():
        (site / dest).mkdir(parents=True, exist_ok=True)
        for py in source.glob("*.py"):
            shutil.copy2(py, site / dest / py.name)
    for top in VENDORED_TOP:
        shutil.copy2(roots[top], site / roots[top].name)


# ---------------------------------------------------------------- native libraries


def _write_site(site: Path, needs_cuda: bool, python_versions: tuple[str, ...], wheel_dir: Path | None,
                notes: list[str]) -> list[str]:
    roots = _package_roots()
    _copy_python(site, roots)
    (site / "tvm" / "lib").mkdir(parents=True, exist_ok=True)
    (site / "tvm_ffi" / "lib").mkdir(parents=True, exist_ok=True)
    for lib in TVM_LIBS + (TVM_CUDA_LIBS if needs_cuda else ()):
        shutil.copy2(roots["tvm"] / "lib" / lib, site / "tvm" / "lib" / lib)
    for lib in FFI_LIBS:
        shutil.copy2(roots["tvm_ffi"] / "lib" / lib, site / "tvm_ffi" / "lib" / lib)
    for core in roots["tvm_ffi"].glob("core.cpython-*.so"):
        shutil.copy2(core, site / "tvm_ffi" / core.name)
    for version in python_versions:
        if _python_tag(version) not in _core_tags(site):
            _add_core_from_wheel(site, version, wheel_dir, notes)
    if needs_cuda:
        _add_cuda(site, roots, notes)
    return sorted(_core_tags(site))


def _core_tags(site: Path) -> set[str]:
    return {re.sub(r"core\.cpython-(\d+)-.*", r"cp\1", p.name) for p in (site / "tvm_ffi").glob("core.cpython-*.so")}


def _python_tag(version: str) -> str:
    if not re.fullmatch(r"3\.\d+", version):
        raise InputError(f"--python {version!r}: expected a version like 3.12")
    return "cp" + version.replace(".", "")


def _ffi_version() -> str:
    from importlib.metadata import version

    return version("apache-tvm-ffi")


def _add_core_from_wheel(site: Path, version: str, wheel_dir: Path | None, notes: list[str]) -> None:
    """Takes tvm_ffi/core.cpython-3XX from TVM-FFI's wheel for that Python, same TVM-FFI version."""
    tag, ffi = _python_tag(version), _ffi_version()
    cache = Path(wheel_dir) if wheel_dir else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "graphopt" / "wheels"
    wheel = _find_wheel(cache, ffi, tag) or _download_wheel(cache, ffi, version, notes)
    if wheel is None:
        return
    with zipfile.ZipFile(wheel) as zf:
        members = [n for n in zf.namelist() if re.fullmatch(rf"tvm_ffi/core\.cpython-{tag[2:]}-[^/]*\.so", n)]
        if not members:
            raise ArtifactError(f"{wheel}: has no tvm_ffi/core extension for {tag}")
        (site / members[0]).write_bytes(zf.read(members[0]))
    notes.append(f"Python {version}: tvm_ffi extension from {wheel.name}")


def _find_wheel(cache: Path, ffi: str, tag: str) -> Path | None:
    found = sorted(cache.glob(f"apache_tvm_ffi-{ffi}-{tag}-{tag}-*.whl")) if cache.is_dir() else []
    return found[0] if found else None


def _download_wheel(cache: Path, ffi: str, version: str, notes: list[str]) -> Path | None:
    """pip download of the binary wheel only; a failure is a loud note, the bundle then
    runs only on the Python versions it has (run.py says which)."""
    cache.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--quiet", f"apache-tvm-ffi=={ffi}", "--no-deps",
               "--only-binary=:all:", "--python-version", version, "--platform", "manylinux_2_28_x86_64",
               "-d", str(cache)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wheel = _find_wheel(cache, ffi, _python_tag(version))
    if done.returncode != 0 or wheel is None:
        last = (done.stderr.strip().splitlines() or ["no wheel"])[-1]
        notes.append(f"WARNING: Python {version} unsupported by this bundle: no apache-tvm-ffi {ffi} wheel ({last})")
        print(f"warning: {notes[-1]}", file=sys.stderr)
        return None
    return wheel


def _add_cuda(site: Path, roots: dict[str, Path], notes: list[str]) -> None:
    """The swap engine and the libcudart TVM's CUDA runtime was linked against."""
    from graphopt.runtime.cuda_swap import LIBRARY_NAME, library_path

    runtime_dir = site / "graphopt" / "runtime"
    try:
        shutil.copy2(library_path(), runtime_dir / LIBRARY_NAME)
    except ArtifactError:
        _build_engine(runtime_dir / LIBRARY_NAME, notes)
    soname = _cudart_soname(roots["tvm"] / "lib" / TVM_CUDA_LIBS[0])
    source = _find_cudart(soname)
    if source is None:
        notes.append(f"WARNING: {soname} not found here; the GPU machine must provide it")
        print(f"warning: {notes[-1]}", file=sys.stderr)
        return
    shutil.copy2(source, runtime_dir / soname)
    notes.append(f"{soname} from {source}")


def _build_engine(out: Path, notes: list[str]) -> None:
    """No installed engine: build it from the source tree's cuda/ when nvcc exists."""
    cuda_dir = Path(__file__).resolve().parent.parent / "cuda"
    nvcc = shutil.which(os.environ.get("NVCC", "nvcc"))  # as setup.py's build (which cannot import this)
    if nvcc is None or not (cuda_dir / "Makefile").is_file():
        notes.append("WARNING: no swap engine (not installed, no nvcc): CUDA artifacts with swaps will not load")
        print(f"warning: {notes[-1]}", file=sys.stderr)
        return
    arch = os.environ.get("GRAPHOPT_CUDA_ARCH", "sm_90")
    done = subprocess.run(["make", "-s", "-B", "-C", str(cuda_dir), f"NVCC={nvcc}", f"ARCH={arch}", f"OUT={out.resolve()}"],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ArtifactError(f"building the swap engine failed: {' '.join(done.stderr.split())[-300:]}")
    notes.append(f"swap engine built from {cuda_dir} ({arch})")


def _cudart_soname(cuda_runtime: Path) -> str:
    found = re.search(rb"libcudart\.so\.\d+", cuda_runtime.read_bytes())
    if found is None:
        raise ArtifactError(f"{cuda_runtime}: cannot tell which libcudart it needs")
    return found.group().decode()


def _find_cudart(soname: str) -> Path | None:
    dirs = [os.environ.get("CUDA_HOME", "") + "/lib64", *os.environ.get("LD_LIBRARY_PATH", "").split(":"),
            *CUDART_DIRS]
    for d in dirs:
        path = Path(d) / soname
        if d and path.is_file():
            return path.resolve()
    return None


# ---------------------------------------------------------------- launcher and description


def _write_launcher(root: Path) -> None:
    template = Path(__file__).resolve().parent / "bundle_launcher.py"
    shutil.copy2(template, root / "run.py")


def _describe(root: Path, manifests: dict[str, dict], tags: list[str], notes: list[str]) -> dict:
    sizes = {str(p.relative_to(root)): p.stat().st_size for p in sorted(root.rglob("*")) if p.is_file()}
    return {
        "format": FORMAT,
        "format_version": 1,
        "artifacts": {name: {"id": m["id"], "target": m["target"], "train": "train" in m}
                      for name, m in manifests.items()},
        "python_tags": tags,
        "tvm": manifests[next(iter(manifests))]["versions"].get("tvm"),
        "tvm_ffi": _ffi_version(),
        "notes": notes,
        "total_bytes": sum(sizes.values()),
        "largest_files": dict(sorted(sizes.items(), key=lambda kv: -kv[1])[:8]),
    }


__all__ = ["BundleResult", "make_bundle", "traced_module_files"]
