"""The tuner on a range compile's symbolic kernels: timed at a nominal point, checked at a second one,
recorded under a key that says so, and applied by a range compile (graphopt.kernels.tuning.search)."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort

from graphopt.cli import main
from graphopt.examples.range_models import batch_mlp


def _symbolic_gemm_workloads(model: onnx.ModelProto) -> tuple:
    """(target, [workload keys of the range compile's symbolic GEMM kernels])."""
    from graphopt.frontend import prepare_model
    from graphopt.frontend.importer import to_relax
    from graphopt.frontend.ranges import DimRange
    from graphopt.kernels.schedules import has_symbolic_shape, schedule_kernel
    from graphopt.kernels.tuning.search import tasks_of
    from graphopt.lowering.lower import legalize
    from graphopt.lowering.target import make_target

    target = make_target("llvm")
    mod = legalize(to_relax(prepare_model(model, {"x": (DimRange(1, 32), 64)}).model).mod, target)
    with target:
        return target, [t.workload for t in tasks_of(mod)
                        if has_symbolic_shape(t.func) and schedule_kernel(t.func, target)[1] == "gemm"]


def test_tune_kernels_measures_symbolic_kernels_at_a_nominal_point(tmp_path, capsys, monkeypatch):
    """tune-kernels on a batch range: the symbolic GEMMs get trials (they were skipped as "symbolic shape"),
    their keys end in @n32 and the records say where they were timed and checked."""
    from graphopt.kernels.schedules import common
    from graphopt.kernels.tuning import search

    monkeypatch.setattr(search, "MIN_TUNED_ITERATIONS", 1000)
    # AVX-512's register file on any host: its 68 seeds, half of them refused by a matmul, once ended the
    # search before the first trial (on AVX-512 hosts only: AVX2 has 34)
    monkeypatch.setattr(common, "vector_registers", lambda target: 32)
    onnx.save(batch_mlp(), tmp_path / "m.onnx")
    db = tmp_path / "db"
    assert main(["tune-kernels", str(tmp_path / "m.onnx"), "--input-shape", "x=1..32x64", "--trials", "8",
                 "--db", str(db), "--quiet"]) == 0
    capsys.readouterr()
    records = [json.loads(line) for line in (db / "kernels.jsonl").read_text().splitlines()]
    symbolic = [r for r in records if r["workload"].endswith("@n32")]
    assert len(symbolic) >= 2, records  # the two matmuls at least
    measured = [r for r in symbolic if "skipped" not in r]
    assert len(measured) >= 2 and all(r["trials"] >= 2 and r["default_seconds"] > 0 for r in measured), symbolic
    assert all(r["symbols_at"] == 32 and r["checked_at"] == [32, 3] for r in measured), measured


def test_a_recorded_choice_for_a_symbolic_kernel_is_applied_and_right_across_the_range(tmp_path):
    """A record far from the rule's own choice (2-row tiles) for the symbolic GEMMs is applied by the range
    compile, and the artifact still matches ONNX Runtime at both corners and odd batches."""
    from graphopt.compiler import CompileOptions, compile_model
    from graphopt.frontend.ranges import DimRange
    from graphopt.kernels.tuning.db import Record, TuningDB
    from graphopt.kernels.tuning.workload import target_key
    from graphopt.runtime.session import load

    model = batch_mlp()
    target, workloads = _symbolic_gemm_workloads(model)
    assert len(workloads) == 2 and all(w.endswith("@n32") for w in workloads)
    db = TuningDB.open(tmp_path / "db", create=True)
    for workload in workloads:
        db.commit(Record(workload, target_key(target), "gemm", {"rows": 2, "vectors": 1}))
    result = compile_model(model, tmp_path / "art", CompileOptions(input_shapes={"x": (DimRange(1, 32), 64)},
                                                                   tuning_db=tmp_path / "db"))
    assert result.plan["shape_range"]["kernels"]["by_rule"].get("gemm tuned") == 2, result.plan["shape_range"]
    session, reference = load(result.artifact), ort.InferenceSession(model.SerializeToString())
    rng = np.random.default_rng(0)
    for batch in (1, 3, 7, 32):
        x = rng.standard_normal((batch, 64)).astype(np.float32)
        np.testing.assert_allclose(session.run({"x": x})["y"], reference.run(None, {"x": x})[0], rtol=1e-4, atol=1e-5)
