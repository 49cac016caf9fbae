"""An artifact's identity covers its content; callers pin it, operators sign it.

The attack under test: whoever can write an artifact folder swaps model.so or params.npz
for another artifact's and rewrites the manifest's `files` and ids consistently (what
`forge` does). The hash checks alone cannot see that; a pinned content id
(`expect_id`, `ART@ID`) or a trusted key must refuse it, in one line, before the library
is loaded, in the runtime, the CLI, the service, the tuner and the pipeline store.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import graphopt.runtime
from graphopt import artifact
from graphopt.cli import main
from graphopt.compiler import compile_model
from graphopt.errors import ArtifactError, GraphoptError, InputError
from graphopt.options import CompileOptions

pytest.importorskip("cryptography")

# same signature, other weights and code: swapping either file changes the answer
SCALES = {"a": 1.0, "b": -2.0}
ACTIVATIONS = {"a": "Relu", "b": "Sigmoid"}


def _model(name: str) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])
    w = numpy_helper.from_array((np.arange(16, dtype=np.float32).reshape(4, 4) - 7) * SCALES[name], "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["h"]),
                               helper.make_node(ACTIVATIONS[name], ["h"], ["y"])], "trust", [x], [y], [w])
    return helper.make_model(graph, ir_version=10, opset_imports=[helper.make_opsetid("", 17)])


def _expected(name: str, x: np.ndarray) -> np.ndarray:
    w = (np.arange(16, dtype=np.float32).reshape(4, 4) - 7) * SCALES[name]
    return np.maximum(x @ w, 0)


@pytest.fixture(scope="module")
def arts(tmp_path_factory) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("trust")
    out = {}
    for name in SCALES:
        onnx.save(_model(name), work / f"{name}.onnx")
        out[name] = compile_model(work / f"{name}.onnx", work / f"art_{name}", CompileOptions(time_limit=1.0)).artifact
        out[f"{name}.onnx"] = work / f"{name}.onnx"
    return out


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> dict[str, Path]:
    from graphopt.signing import generate_keypair

    work = tmp_path_factory.mktemp("keys")
    out = {}
    for who in ("ops", "mallory"):
        private, public, _kid = generate_keypair(work / who)
        out[f"{who}.key"], out[f"{who}.pub"] = private, public
    return out


@pytest.fixture(autouse=True)
def _no_ambient_keys(monkeypatch):
    monkeypatch.delenv("GRAPHOPT_TRUSTED_KEYS", raising=False)


FEEDS = {"x": np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32)}


def _id(art: Path) -> str:
    return json.loads((Path(art) / artifact.MANIFEST).read_text())["id"]


def forge(victim: Path, donor: Path, dst: Path, files=(artifact.LIBRARY, artifact.PARAMS),
          keep_signature: bool = True) -> Path:
    """The attack: victim's folder with donor's files, manifest `files` and ids rewritten to match."""
    shutil.copytree(victim, dst)
    if not keep_signature:
        (dst / artifact.SIGNATURE).unlink(missing_ok=True)
    for name in files:
        shutil.copy2(donor / name, dst / name)
    path = dst / artifact.MANIFEST
    manifest = json.loads(path.read_text())
    manifest["files"] = {n: artifact.sha256_file(dst / n) for n in manifest["files"]}
    path.write_text(json.dumps(artifact.stamp_ids(manifest), indent=1, sort_keys=True))
    return dst


def _signed_copy(arts, keys, dst: Path, name: str = "a", key: str = "ops") -> Path:
    from graphopt.signing import sign_artifact

    shutil.copytree(arts[name], dst)
    sign_artifact(dst, keys[f"{key}.key"])
    return dst


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


# ------------------------------------------------------------------ ids and pins


def test_the_content_id_covers_every_file_and_the_build_id_is_the_prediction(arts):
    from graphopt.identity import predicted_id

    manifest = artifact.load_manifest(arts["a"])
    assert manifest["build_id"] == predicted_id(arts["a.onnx"], CompileOptions(time_limit=1.0))
    assert manifest["id"] == artifact.content_id(manifest) != manifest["build_id"]
    assert set(artifact.REQUIRED_FILES) <= set(manifest["files"])
    edited = {**manifest, "files": {**manifest["files"], artifact.LIBRARY: "0" * 64}}
    assert artifact.content_id(edited) != manifest["id"]  # one file's hash changes the id
    assert artifact.build_id(edited) == manifest["build_id"]  # the cache key does not depend on the bytes


@pytest.mark.parametrize("files", [(artifact.LIBRARY,), (artifact.PARAMS,), (artifact.LIBRARY, artifact.PARAMS)])
def test_a_forged_artifact_is_refused_when_its_id_is_pinned(arts, tmp_path, files):
    pin = _id(arts["a"])
    forged = forge(arts["a"], arts["b"], tmp_path / "forged", files)
    # without a pin the rewritten manifest is consistent and the foreign code runs: the documented
    # limit of hash checks alone
    sess = graphopt.runtime.load(forged)
    assert sess.id != pin
    assert not np.allclose(sess.run(FEEDS)["y"], _expected("a", FEEDS["x"]))
    for expect in (pin, pin[:12], pin.upper()):
        with pytest.raises(ArtifactError, match="is not the pinned") as info:
            graphopt.runtime.load(forged, expect_id=expect)
        assert "\n" not in str(info.value)


def test_the_pin_is_checked_before_the_library_is_loaded(arts, tmp_path, monkeypatch):
    import tvm.runtime

    forged = forge(arts["a"], arts["b"], tmp_path / "forged")
    loaded = []
    monkeypatch.setattr(tvm.runtime, "load_module", lambda *a, **k: loaded.append(a))
    with pytest.raises(ArtifactError, match="pinned"):
        graphopt.runtime.load(forged, expect_id=_id(arts["a"]))
    assert loaded == []


def test_a_file_swapped_after_the_check_is_not_what_loads(arts, tmp_path, monkeypatch):
    """The race: model.so is replaced between the hash check and the load. A pinned load reads
    a private copy hashed as it is made, so the swap is refused, never loaded."""
    from graphopt.runtime import session

    copy = tmp_path / "art"
    shutil.copytree(arts["a"], copy)
    checked = session._check_tvm_version

    def check_then_swap(manifest, path):
        checked(manifest, path)
        for name in (artifact.LIBRARY, artifact.PARAMS):
            shutil.copy2(arts["b"] / name, copy / name)

    monkeypatch.setattr(session, "_check_tvm_version", check_then_swap)
    with pytest.raises(ArtifactError, match="changed after it was verified"):
        graphopt.runtime.load(copy, expect_id=_id(arts["a"]))


def test_a_pinned_artifact_runs_and_matches(arts):
    pin = _id(arts["a"])
    for expect in (pin, pin[:12]):
        sess = graphopt.runtime.load(arts["a"], expect_id=expect)
        assert sess.id == pin and sess.build_id != pin
        np.testing.assert_allclose(sess.run(FEEDS)["y"], _expected("a", FEEDS["x"]), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("pin", ["abc", "0123456789a", "z" * 12, "0" * 65])
def test_a_malformed_pin_is_an_input_error(arts, pin):
    with pytest.raises(InputError, match="12 to 64 hex digits"):
        graphopt.runtime.load(arts["a"], expect_id=pin)


def test_split_pin():
    assert artifact.split_pin("art") == ("art", None)
    assert artifact.split_pin("dir/art@0123456789AB") == ("dir/art", "0123456789ab")
    assert artifact.split_pin("v@1/art") == ("v@1/art", None)  # not all hex after the last @
    assert artifact.split_pin("art@0123456789ab/") == ("art@0123456789ab/", None)  # trailing /: a path
    with pytest.raises(InputError):
        artifact.split_pin("art@abc")


def test_a_manifest_that_stops_hashing_the_library_is_refused_even_unpinned(arts, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(arts["a"], copy)
    manifest = json.loads((copy / artifact.MANIFEST).read_text())
    del manifest["files"][artifact.LIBRARY]
    (copy / artifact.MANIFEST).write_text(json.dumps(artifact.stamp_ids(manifest)))
    with pytest.raises(ArtifactError, match="does not hash model.so"):
        graphopt.runtime.load(copy)


def test_an_artifact_of_the_previous_format_says_recompile(arts, tmp_path):
    copy = tmp_path / "old"
    shutil.copytree(arts["a"], copy)
    manifest = json.loads((copy / artifact.MANIFEST).read_text())
    manifest["format_version"] = 1
    (copy / artifact.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="recompile"):
        graphopt.runtime.load(copy)


# ------------------------------------------------------------------ signatures


def test_keygen_writes_a_private_key_only_its_owner_reads_and_never_overwrites(keys):
    from graphopt.signing import generate_keypair

    assert stat.S_IMODE(os.stat(keys["ops.key"]).st_mode) == 0o600
    with pytest.raises(InputError, match="refusing to overwrite"):
        generate_keypair(keys["ops.key"].with_suffix(""))


def test_a_signed_artifact_runs_with_its_key_and_signing_keeps_the_id(arts, keys, tmp_path):
    signed = _signed_copy(arts, keys, tmp_path / "signed")
    sess = graphopt.runtime.load(signed, expect_id=_id(arts["a"]), trusted_keys=[keys["ops.pub"]])
    np.testing.assert_allclose(sess.run(FEEDS)["y"], _expected("a", FEEDS["x"]), rtol=1e-5, atol=1e-5)
    # a second key adds its signature; either key then suffices
    from graphopt.signing import sign_artifact

    record = sign_artifact(signed, keys["mallory.key"])
    assert len(record["signatures"]) == 2
    graphopt.runtime.load(signed, trusted_keys=[keys["mallory.pub"]])


@pytest.mark.parametrize("keep_signature", [True, False])
def test_a_forged_signed_artifact_is_refused_with_a_trusted_key(arts, keys, tmp_path, keep_signature):
    signed = _signed_copy(arts, keys, tmp_path / "signed")
    forged = forge(signed, arts["b"], tmp_path / "forged", keep_signature=keep_signature)
    says = "changed after signing" if keep_signature else "not signed"
    with pytest.raises(ArtifactError, match=says):
        graphopt.runtime.load(forged, trusted_keys=[keys["ops.pub"]])


def test_a_signature_forged_for_the_new_id_does_not_verify(arts, keys, tmp_path):
    signed = _signed_copy(arts, keys, tmp_path / "signed")
    forged = forge(signed, arts["b"], tmp_path / "forged")
    record = json.loads((forged / artifact.SIGNATURE).read_text())
    record["id"] = _id(forged)  # claims the new id, keeps the old signature bytes
    (forged / artifact.SIGNATURE).write_text(json.dumps(record))
    with pytest.raises(ArtifactError, match="does not verify"):
        graphopt.runtime.load(forged, trusted_keys=[keys["ops.pub"]])


def test_an_unsigned_artifact_is_refused_when_a_key_is_configured(arts, keys, monkeypatch):
    with pytest.raises(ArtifactError, match="not signed"):
        graphopt.runtime.load(arts["a"], trusted_keys=[keys["ops.pub"]])
    monkeypatch.setenv("GRAPHOPT_TRUSTED_KEYS", os.pathsep.join(["", str(keys["ops.pub"])]))
    with pytest.raises(ArtifactError, match="not signed"):
        graphopt.runtime.load(arts["a"])  # the environment alone configures it


def test_the_environment_keys_verify_a_signed_artifact(arts, keys, tmp_path, monkeypatch):
    signed = _signed_copy(arts, keys, tmp_path / "signed")
    monkeypatch.setenv("GRAPHOPT_TRUSTED_KEYS", str(keys["ops.pub"]))
    assert graphopt.runtime.load(signed).id == _id(arts["a"])
    by_mallory = _signed_copy(arts, keys, tmp_path / "mallory", key="mallory")
    with pytest.raises(ArtifactError, match="not signed by a trusted key"):
        graphopt.runtime.load(by_mallory)
    # an explicit key adds to the environment's, never replaces them
    assert graphopt.runtime.load(by_mallory, trusted_keys=[keys["mallory.pub"]]).id == _id(arts["a"])


def test_a_signature_by_an_untrusted_key_is_refused(arts, keys, tmp_path):
    signed = _signed_copy(arts, keys, tmp_path / "signed", key="mallory")
    with pytest.raises(ArtifactError, match="not signed by a trusted key"):
        graphopt.runtime.load(signed, trusted_keys=[keys["ops.pub"]])


def test_a_missing_or_bad_trusted_key_refuses_instead_of_skipping(arts, keys, tmp_path):
    signed = _signed_copy(arts, keys, tmp_path / "signed")
    with pytest.raises(ArtifactError, match="cannot read trusted key"):
        graphopt.runtime.load(signed, trusted_keys=[tmp_path / "absent.pub"])
    (tmp_path / "junk.pub").write_text("not a key")
    with pytest.raises(ArtifactError, match="not a PEM or OpenSSH public key"):
        graphopt.runtime.load(signed, trusted_keys=[tmp_path / "junk.pub"])


def test_without_cryptography_a_configured_key_refuses_in_one_line(arts, keys, tmp_path, monkeypatch):
    signed = _signed_copy(arts, keys, tmp_path / "signed")
    for name in ("cryptography", "cryptography.exceptions", "cryptography.hazmat.primitives",
                 "cryptography.hazmat.primitives.asymmetric"):
        monkeypatch.setitem(sys.modules, name, None)  # import fails, as in a runtime-only bundle
    with pytest.raises(ArtifactError, match="needs the Python package 'cryptography'") as info:
        graphopt.runtime.load(signed, trusted_keys=[keys["ops.pub"]])
    assert "\n" not in str(info.value)
    assert graphopt.runtime.load(signed).id == _id(arts["a"])  # no key configured: no need for it


def test_sign_refuses_an_artifact_whose_files_changed(arts, keys, tmp_path):
    from graphopt.signing import sign_artifact

    copy = tmp_path / "copy"
    shutil.copytree(arts["a"], copy)
    shutil.copy2(arts["b"] / artifact.PARAMS, copy / artifact.PARAMS)
    with pytest.raises(ArtifactError, match="sha-256 mismatch"):
        sign_artifact(copy, keys["ops.key"])
    assert not (copy / artifact.SIGNATURE).exists()


def test_openssh_keys_work_too(arts, tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from graphopt.signing import sign_artifact

    key = ed25519.Ed25519PrivateKey.generate()
    (tmp_path / "id_ed25519").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                            serialization.PrivateFormat.OpenSSH,
                                                            serialization.NoEncryption()))
    (tmp_path / "id_ed25519.pub").write_bytes(key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                                                           serialization.PublicFormat.OpenSSH))
    signed = tmp_path / "signed"
    shutil.copytree(arts["a"], signed)
    sign_artifact(signed, tmp_path / "id_ed25519")
    graphopt.runtime.load(signed, trusted_keys=[tmp_path / "id_ed25519.pub"])


# ------------------------------------------------------------------ the command line


def test_cli_run_with_a_pin_or_a_key(arts, keys, tmp_path, capsys):
    np.save(tmp_path / "x.npy", FEEDS["x"])
    pin = _id(arts["a"])
    forged = forge(arts["a"], arts["b"], tmp_path / "forged")
    assert main(["run", f"{arts['a']}@{pin}", "--input", f"x={tmp_path / 'x.npy'}"]) == 0
    assert main(["run", f"{arts['a']}@{pin[:12]}", "--input", f"x={tmp_path / 'x.npy'}",
                 "--output-dir", str(tmp_path / "out")]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "out" / "y.npy"), _expected("a", FEEDS["x"]), rtol=1e-5, atol=1e-5)
    capsys.readouterr()
    assert main(["run", f"{forged}@{pin}", "--input", f"x={tmp_path / 'x.npy'}"]) == 2
    assert "is not the pinned" in _one_error_line(capsys)
    assert main(["run", f"{forged}@abc", "--input", f"x={tmp_path / 'x.npy'}"]) == 2
    assert "12 to 64 hex digits" in _one_error_line(capsys)
    assert main(["run", str(arts["a"]), "--trusted-key", str(keys["ops.pub"]),
                 "--input", f"x={tmp_path / 'x.npy'}"]) == 2
    assert "not signed" in _one_error_line(capsys)


def test_cli_keygen_sign_and_run_with_the_key(arts, tmp_path, capsys):
    np.save(tmp_path / "x.npy", FEEDS["x"])
    signed = tmp_path / "art"
    shutil.copytree(arts["a"], signed)
    assert main(["keygen", "--out", str(tmp_path / "op")]) == 0
    assert main(["sign", f"{signed}@{_id(signed)}", "--key", str(tmp_path / "op.key")]) == 0
    assert main(["run", str(signed), "--trusted-key", str(tmp_path / "op.pub"),
                 "--input", f"x={tmp_path / 'x.npy'}"]) == 0
    forged = forge(signed, arts["b"], tmp_path / "forged")
    capsys.readouterr()
    assert main(["run", str(forged), "--trusted-key", str(tmp_path / "op.pub"),
                 "--input", f"x={tmp_path / 'x.npy'}"]) == 2
    assert "changed after signing" in _one_error_line(capsys)
    assert main(["sign", f"{forged}@{_id(arts['a'])}", "--key", str(tmp_path / "op.key")]) == 2
    assert "is not the pinned" in _one_error_line(capsys)
    assert main(["keygen", "--out", str(tmp_path / "op")]) == 2
    assert "refusing to overwrite" in _one_error_line(capsys)


def test_cli_serve_refuses_a_pin_mismatch_and_an_unsigned_variant(arts, keys, tmp_path, capsys):
    forged = forge(arts["a"], arts["b"], tmp_path / "forged")
    pin = _id(arts["a"])
    assert main(["serve", "--variant", f"v={forged}@{pin}:0.5", "--port", "0"]) == 2
    assert "is not the pinned" in _one_error_line(capsys)
    assert main(["serve", "--variant", f"v={arts['a']}", "--trusted-key", str(keys["ops.pub"]), "--port", "0"]) == 2
    assert "not signed" in _one_error_line(capsys)


def test_serve_variants_load_pinned(arts):
    from graphopt.serve.variants import VariantSpec, load_variants

    pin = _id(arts["a"])
    spec = VariantSpec.parse(f"v={arts['a']}@{pin[:16]}:0.5")
    assert (spec.path, spec.quality, spec.expect_id) == (arts["a"], 0.5, pin[:16])
    (variant,) = load_variants([spec])
    assert variant.session.id == pin
    with pytest.raises(ArtifactError, match="pinned"):
        load_variants([VariantSpec.parse(f"v={arts['b']}@{pin}")])


# ------------------------------------------------------------------ the tuner and the pipeline store


def _study(arts, cache_dir: Path):
    from graphopt.artifact import sha256_file
    from graphopt.tune.study_config import StudyConfig

    model = arts["a.onnx"]
    return StudyConfig(model=str(model), model_sha256=sha256_file(model), objectives=("latency",),
                       space={"planner": "greedy_by_size", "time_limit": 1.0}, cache_dir=str(cache_dir), trials=2,
                       repeat=1, warmup=0)


def test_the_tuner_refuses_a_cached_artifact_changed_after_it_was_built(arts, tmp_path):
    from graphopt.tune.cache import ArtifactCache
    from graphopt.tune.trial import evaluate

    cfg = _study(arts, tmp_path / "cache")
    cache = ArtifactCache(cfg.cache_dir)
    config = {"planner": "greedy_by_size", "time_limit": 1.0}
    first = evaluate(cfg, config, cache)
    build, content = first.attrs["artifact_id"], first.attrs["content_id"]
    assert first.attrs["compiled"] and cache.recorded_content_id(build) == content
    # a worker killed after the build but before storing its result: the next trial measures the cached artifact
    (cache.root / f"{build}.result.json").unlink()
    again = evaluate(cfg, config, cache)
    assert again.attrs.get("reused_artifact") and again.attrs["content_id"] == content
    (cache.root / f"{build}.result.json").unlink()
    tampered = tmp_path / "tampered"
    forge(cache.artifact(build), arts["b"], tampered)
    shutil.rmtree(cache.artifact(build))
    tampered.rename(cache.artifact(build))
    with pytest.raises(ArtifactError, match="is not the pinned"):
        evaluate(cfg, config, cache)
    assert cache.load_result(build) is None  # nothing measured on it was stored


def test_the_tuner_commits_only_the_artifact_it_built(arts, tmp_path):
    import optuna

    from graphopt.pipelines import init
    from graphopt.tune.cache import ArtifactCache
    from graphopt.tune.commit import commit_choice
    from graphopt.tune.trial import evaluate

    cfg = _study(arts, tmp_path / "cache")
    cache = ArtifactCache(cfg.cache_dir)
    outcome = evaluate(cfg, {"planner": "greedy_by_size", "time_limit": 1.0}, cache)
    trial = optuna.trial.create_trial(params={}, distributions={}, values=[1.0], user_attrs=outcome.attrs)
    build = outcome.attrs["artifact_id"]
    init(tmp_path / "repo").close()
    tampered = forge(cache.artifact(build), arts["b"], tmp_path / "tampered")
    with pytest.raises(ArtifactError, match="is not the pinned"):
        commit_choice(tmp_path / "repo", cfg, trial, tampered, "tune: tampered")
    cid, _reused = commit_choice(tmp_path / "repo", cfg, trial, cache.artifact(build), "tune: chosen")
    assert cid


def _pipeline(arts, root: Path):
    from graphopt.pipelines import init
    from graphopt.pipelines.components import make_spec

    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 4)).astype(np.float32)
    data = root / "files" / "data.npz"
    data.parent.mkdir(parents=True)
    np.savez(data, x_test=x, y_test=_expected("a", x).argmax(axis=1))
    repo = init(root / "repo")
    repo.stage("data", make_spec("dataset", repo.store, files=[data]))
    repo.stage("model", make_spec("model", repo.store, files=[arts["a.onnx"]]))
    repo.stage("compile", make_spec("compile", repo.store, inputs=["model"], params={"time_limit": 1.0}))
    repo.stage("evaluate", make_spec("evaluate", repo.store, inputs=["data", "compile"], params={"repeat": 1}))
    repo.commit("base")
    return repo


def test_the_pipeline_store_evaluates_only_the_artifact_it_stored(arts, tmp_path, monkeypatch):
    from graphopt.pipelines.components import make_spec
    from graphopt.pipelines.objects import ObjectStore

    repo = _pipeline(arts, tmp_path)
    try:
        original = ObjectStore.materialize

        def materialize_then_tamper(self, tree_id, dest):  # someone rewrites the copy before it is loaded
            out = original(self, tree_id, dest)
            if (Path(out) / artifact.MANIFEST).is_file():
                forged = forge(Path(out), arts["b"], Path(str(out) + "-forged"))
                shutil.rmtree(out)
                forged.rename(out)
            return out

        monkeypatch.setattr(ObjectStore, "materialize", materialize_then_tamper)
        repo.stage("evaluate", make_spec("evaluate", repo.store, inputs=["data", "compile"], params={"repeat": 2}))
        with pytest.raises(GraphoptError, match="is not the pinned"):
            repo.commit("evaluate again")
    finally:
        repo.close()


def test_the_pipeline_store_refuses_a_cached_build_that_is_another_artifact(arts, tmp_path):
    from graphopt.pipelines.components import make_spec

    repo = _pipeline(arts, tmp_path)
    try:
        ((build, tree),) = repo.conn.execute("SELECT artifact_id, tree FROM artifacts").fetchall()
        other = repo.store.put_dir(arts["b"])
        repo.conn.execute("UPDATE artifacts SET tree=? WHERE artifact_id=?", (other, build))
        # same options spelled differently: a new spec, the same build id -> the compile cache is asked
        repo.stage("compile", make_spec("compile", repo.store, inputs=["model"],
                                        params={"time_limit": 1.0, "planner": "auto"}))
        with pytest.raises(ArtifactError, match="recorded as build"):
            repo.commit("recompile")
        repo.conn.execute("UPDATE artifacts SET tree=? WHERE artifact_id=?", (tree, build))
        repo.commit("recompile")  # the genuine cached build is reused
    finally:
        repo.close()
