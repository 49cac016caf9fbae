"""A bundle runs its artifact where the compiler cannot even be imported, with the same outputs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from graphopt.cli import main
from tests.conftest import compile_example, random_feeds

SIZE_LIMIT = 60 * 2**20
# The child Python sees the bundle and numpy only: -I (no env vars, no user site),
# -S (no site-packages), then numpy's directory alone is added to sys.path.
ISOLATED = """
import importlib.util, json, runpy, sys
sys.path[:0] = [{numpy_dir!r}]
sys.argv = ["run.py", "--input", "input=" + {feed!r}, "--output-dir", {out!r}]
try:
    runpy.run_path({run!r}, run_name="__main__")
except SystemExit as exc:
    assert not exc.code, exc.code
import tvm, graphopt
reachable = [m for m in ("onnx", "onnxruntime", "ortools", "graphopt.compiler", "graphopt.lowering", "graphopt.transforms", "tvm.relax")
             if importlib.util.find_spec(m) is not None]
print(json.dumps({{"tvm": tvm.__file__, "graphopt": graphopt.__file__, "reachable": reachable}}))
"""


@pytest.fixture(scope="module")
def bundled(tmp_path_factory):
    work = tmp_path_factory.mktemp("bundle")
    model = compile_example(work, "residual_branch_net", time_limit=2.0)
    feeds = random_feeds(model)
    np.save(work / "input.npy", feeds["input"])
    assert main(["bundle", str(work / "art"), "-o", str(work / "bundle"), "--python", "3.11"]) == 0
    return work, feeds


def _numpy_only_dir(root: Path, python: str) -> Path:
    """A directory holding only numpy (links), the one package the target machine brings."""
    code = "import numpy, os; print(os.path.dirname(os.path.dirname(numpy.__file__)))"
    site = Path(subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout.strip())
    root.mkdir(exist_ok=True)
    for name in ("numpy", "numpy.libs"):
        if (site / name).exists() and not (root / name).exists():
            (root / name).symlink_to(site / name)
    return root


def _run_isolated(python: str, work: Path, bundle: Path, tag: str) -> tuple[dict, np.ndarray]:
    out = work / f"out-{tag}"
    code = ISOLATED.format(numpy_dir=str(_numpy_only_dir(work / f"numpy-{tag}", python)),
                           feed=str(work / "input.npy"), out=str(out), run=str(bundle / "run.py"))
    done = subprocess.run([python, "-I", "-S", "-c", code], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"},
                          cwd=work, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), np.load(out / "logits.npy")


def test_bundle_runs_without_the_compiler_and_matches_the_runtime(bundled):
    import graphopt.runtime

    work, feeds = bundled
    bundle = work / "bundle"
    seen, logits = _run_isolated(sys.executable, work, bundle, "same")
    assert Path(seen["tvm"]).is_relative_to(bundle) and Path(seen["graphopt"]).is_relative_to(bundle)
    assert seen["reachable"] == []
    expected = graphopt.runtime.load(work / "art").run(feeds)["logits"]
    np.testing.assert_array_equal(logits, expected)


def test_bundle_is_small_and_has_no_compiler_library(bundled):
    work, _ = bundled
    bundle = work / "bundle"
    info = json.loads((bundle / "bundle.json").read_text())
    total = sum(p.stat().st_size for p in bundle.rglob("*") if p.is_file() and p.name != "bundle.json")
    assert info["total_bytes"] == total < SIZE_LIMIT  # also: running it wrote nothing into it
    names = {p.name for p in bundle.rglob("*")}
    assert "libtvm_compiler.so" not in names and "compiler.py" not in names
    assert f"cp{sys.version_info.major}{sys.version_info.minor}" in info["python_tags"]


def test_bundle_refuses_to_overwrite_a_foreign_directory(bundled, tmp_path, capsys):
    work, _ = bundled
    (tmp_path / "keep.txt").write_text("mine")
    assert main(["bundle", str(work / "art"), "-o", str(tmp_path)]) == 2
    assert "not a graphopt bundle" in capsys.readouterr().err
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_bundle_rejects_a_missing_artifact(tmp_path, capsys):
    assert main(["bundle", str(tmp_path / "nope"), "-o", str(tmp_path / "b")]) == 2
    assert "no such artifact" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_launcher_refuses_a_python_it_has_no_extension_for(bundled, tmp_path):
    work, _ = bundled
    copy = tmp_path / "b"
    shutil.copytree(work / "bundle", copy)
    info = json.loads((copy / "bundle.json").read_text())
    info["python_tags"] = ["cp399"]
    (copy / "bundle.json").write_text(json.dumps(info))
    done = subprocess.run([sys.executable, str(copy / "run.py")], capture_output=True, text=True, check=False)
    assert done.returncode != 0 and "runs on cp399" in done.stderr


PY312 = os.environ.get("GRAPHOPT_TEST_PY312")  # a Python 3.12 with numpy, like the GPU machine's


@pytest.mark.skipif(not PY312, reason="set GRAPHOPT_TEST_PY312 to a Python 3.12 that has numpy")
def test_bundle_for_python_312_runs_there(bundled):
    """The GPU machine has Python 3.12: TVM-FFI's cp312 extension comes from its wheel (pip, cached)."""
    work, feeds = bundled
    bundle = work / "bundle312"
    wheels = os.environ.get("GRAPHOPT_TEST_WHEELS")
    argv = ["bundle", str(work / "art"), "-o", str(bundle), "--python", "3.12"]
    assert main(argv + (["--wheel-dir", wheels] if wheels else [])) == 0
    seen, logits = _run_isolated(PY312, work, bundle, "py312")
    assert seen["reachable"] == []
    import graphopt.runtime

    np.testing.assert_array_equal(logits, graphopt.runtime.load(work / "art").run(feeds)["logits"])


PINNED = """
import runpy, sys
sys.path[:0] = [{numpy_dir!r}]
sys.argv = ["run.py", "--input", "input=" + {feed!r}, *{extra!r}]
runpy.run_path({run!r}, run_name="__main__")
"""


def _launch_isolated(work: Path, bundle: Path, *extra: str) -> subprocess.CompletedProcess:
    code = PINNED.format(numpy_dir=str(_numpy_only_dir(work / "numpy-same", sys.executable)),
                         feed=str(work / "input.npy"), run=str(bundle / "run.py"), extra=list(extra))
    return subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin"}, cwd=work, timeout=120, check=False)


def test_bundle_pins_and_refuses_a_key_it_cannot_check(bundled, tmp_path):
    """A bundle carries no `cryptography`: a pinned id works there; a trusted key refuses in one
    line (never a silently skipped check)."""
    cryptography = pytest.importorskip("cryptography")
    del cryptography
    from graphopt.signing import generate_keypair

    work, _ = bundled
    bundle = work / "bundle"
    ident = json.loads((bundle / "artifacts" / "art" / "manifest.json").read_text())["id"]
    assert _launch_isolated(work, bundle, "--artifact", f"art@{ident[:12]}").returncode == 0
    wrong = _launch_isolated(work, bundle, "--artifact", f"art@{'0' * 64}")
    assert wrong.returncode == 2 and wrong.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "is not the pinned" in wrong.stderr
    _private, public, _kid = generate_keypair(tmp_path / "ops")
    keyed = _launch_isolated(work, bundle, "--trusted-key", str(public))
    lines = keyed.stderr.strip().splitlines()
    assert keyed.returncode == 2 and len(lines) == 1 and "needs the Python package 'cryptography'" in lines[0], lines
