"""Kernel tuning: the database keeps and reuses records, compile applies them, and
neither the memory plan nor the numbers change with a database."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest

from graphopt.cli import main
from tests.conftest import onnx_runtime_outputs, random_feeds, relative_error
from tests.kernels.test_schedules import conv_zoo


def _record(workload: str, **over):
    from graphopt.kernels.tuning.db import Record

    fields = {"workload": workload, "target": "llvm/x/256/r1", "rule": "gemm", "knobs": {"rows": 2}} | over
    return Record(**fields)


def _kernels(model: onnx.ModelProto):
    """(target, {kernel name: Task}) of the model's legalized, unscheduled kernels."""
    from graphopt.frontend import prepare
    from graphopt.frontend.importer import to_relax
    from graphopt.kernels.tuning.search import tasks_of
    from graphopt.lowering.lower import legalize
    from graphopt.lowering.target import make_target
    from tests.kernels.test_schedules import prepare_model

    target = make_target("llvm")
    mod = legalize(to_relax(prepare_model(model, prepare)).mod, target)
    return target, {t.name: t for t in tasks_of(mod)}


def test_db_roundtrip_and_replace(tmp_path):
    from graphopt.kernels.tuning.db import TuningDB

    db = TuningDB.open(tmp_path / "db", create=True)
    db.commit(_record("a" * 16))
    db.commit(_record("b" * 16, knobs={}, rule="fallback"))
    db.commit(_record("a" * 16, knobs={"rows": 4, "vectors": 1}))
    again = TuningDB.open(tmp_path / "db")
    assert len(again) == 2
    assert again.get("a" * 16, "llvm/x/256/r1").knobs == {"rows": 4, "vectors": 1}
    assert again.get("b" * 16, "llvm/x/256/r1").rule == "fallback"
    assert again.get("a" * 16, "llvm/other/512/r1") is None
    lines = (tmp_path / "db" / "kernels.jsonl").read_text().splitlines()
    assert len(lines) == 2 and all(json.loads(line)["target"] == "llvm/x/256/r1" for line in lines)
    assert not list((tmp_path / "db").glob(".kernels.*.tmp"))  # the temporary file was renamed away


@pytest.mark.parametrize("content", ['{"workload": "a", "target"', '{"workload": "a"}', "[1, 2]"])
def test_corrupt_db_is_one_line_error_exit_2(tmp_path, capsys, content):
    db = tmp_path / "db"
    db.mkdir()
    (db / "kernels.jsonl").write_text(json.dumps({"workload": "x", "target": "t", "rule": "gemm", "knobs": {}})
                                      + "\n" + content + "\n")
    model = tmp_path / "m.onnx"
    onnx.save(conv_zoo(), model)
    for argv in (["tune-kernels", str(model), "--trials", "2", "--db", str(db), "--quiet"],
                 ["compile", str(model), "-o", str(tmp_path / "art"), "--tuning-db", str(db), "--quiet"]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: tuning db") and "line 2" in err and "\n" not in err, err
    assert (db / "kernels.jsonl").read_text().endswith(content + "\n")  # left as it was
    assert not (tmp_path / "art").exists()


def test_trials_default_and_bad_count(tmp_path, capsys):
    """--trials may be left out (16, the committed databases' setting); 0 is a one-line error, no db made."""
    import argparse

    from graphopt.cli.tune_kernels import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    assert parser.parse_args(["tune-kernels", "m.onnx"]).trials == 16
    model = tmp_path / "m.onnx"
    onnx.save(conv_zoo(), model)
    assert main(["tune-kernels", str(model), "--trials", "0", "--db", str(tmp_path / "db"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: --trials must be at least 1, got 0"
    assert not (tmp_path / "db").exists()


def test_missing_db_for_compile_is_an_error(tmp_path, capsys):
    model = tmp_path / "m.onnx"
    onnx.save(conv_zoo(), model)
    assert main(["compile", str(model), "-o", str(tmp_path / "art"), "--tuning-db", str(tmp_path / "no"),
                 "--quiet"]) == 2
    assert "no tuning db" in capsys.readouterr().err


def test_tune_then_reuse_with_zero_trials(tmp_path, capsys, monkeypatch):
    """A tiny model tuned with 2 trials per kernel; the second run finds every
    kernel in the db, does no trial and says so. Most of the zoo's kernels are under the
    search's not-worth-tuning size (MIN_TUNED_ITERATIONS): the threshold is lowered here so
    that every rule's kernels are tuned, the mechanism is what is tested."""
    import time

    from graphopt.kernels.tuning import search

    monkeypatch.setattr(search, "MIN_TUNED_ITERATIONS", 1000)
    model = tmp_path / "m.onnx"
    onnx.save(conv_zoo(), model)
    db = tmp_path / "db"
    start = time.perf_counter()
    assert main(["tune-kernels", str(model), "--trials", "2", "--db", str(db), "--quiet"]) == 0
    assert time.perf_counter() - start < 60
    first = capsys.readouterr().out
    assert "0 already in the db" in first and "nothing to tune" not in first, first
    records = [json.loads(line) for line in (db / "kernels.jsonl").read_text().splitlines()]
    measured = [r for r in records if "skipped" not in r]
    assert measured and all(r["trials"] >= 1 and r["default_seconds"] > 0 for r in measured)
    assert {r["rule"] for r in records} >= {"gemm", "grouped", "depthwise", "fallback"}
    assert main(["tune-kernels", str(model), "--trials", "2", "--db", str(db), "--quiet"]) == 0
    second = capsys.readouterr().out
    assert "0 tuned now, 0 trials" in second and "nothing to tune: 0 trials" in second, second


def test_which_kernels_are_tuned_does_not_depend_on_timings(tmp_path, monkeypatch):
    """Which kernels get trials is decided from their size (search.MIN_TUNED_ITERATIONS), not from
    a timing: with every timing made absurdly fast, then absurdly slow, the records are the same
    (rules, trial counts, skip reasons), so they cannot depend on load or on how many tuners ran.
    (The former rule, "default under 20 us", skipped every kernel at the fast setting.)"""
    from graphopt.kernels.tuning import measure
    from graphopt.kernels.tuning.db import TuningDB
    from graphopt.kernels.tuning.model import tune_model

    model = tmp_path / "m.onnx"
    onnx.save(conv_zoo(), model)
    found = {}
    for seconds in (1e-9, 1.0):
        monkeypatch.setattr(measure.KernelBench, "seconds", lambda _self, _lib, s=seconds: s)
        db = TuningDB.open(tmp_path / f"db-{seconds}", create=True)
        tune_model(model, db, 1, {}, progress=False)
        records = TuningDB.open(db.location).records
        found[seconds] = {k: (r.rule, r.trials, r.knobs, r.extra) for k, r in records.items()}
    assert found[1e-9] == found[1.0]
    reasons = [extra.get("skipped", "") for _rule, _trials, _knobs, extra in found[1.0].values()]
    assert "" in reasons and any("loop iterations" in r for r in reasons), reasons  # some tuned, some too small


def test_compile_applies_recorded_choice_and_keeps_plan_and_numbers(tmp_path):
    """A record written for the 3x3 conv's workload (rows=7, one vector, swapped
    axes, data read in place: far from the rule's own choice) is applied by compile; the arena and
    the plan are the same as without a db, and outputs still match ONNX Runtime."""
    from graphopt.compiler import CompileOptions, compile_model
    from graphopt.kernels.tuning.db import Record, TuningDB
    from graphopt.kernels.tuning.workload import target_key
    from graphopt.runtime import load

    target, kernels = _kernels(conv_zoo())
    convs = [t for t in kernels.values() if t.name.startswith("fused_conv2d") and "relu" in t.name]
    db = TuningDB.open(tmp_path / "db", create=True)
    knobs = {"rows": 7, "vectors": 1, "block_bytes": 1 << 15, "swap_axes": True, "pack_u": False}
    for task in convs:
        db.commit(Record(task.workload, target_key(target), "gemm", knobs))
    model = tmp_path / "m.onnx"
    onnx.save(conv_zoo(), model)
    plain = compile_model(model, tmp_path / "plain", CompileOptions(time_limit=2.0))
    tuned = compile_model(model, tmp_path / "tuned", CompileOptions(time_limit=2.0, tuning_db=tmp_path / "db"))
    assert plain.plan["schedules"]["tuned"] == 0
    assert tuned.plan["schedules"]["tuned"] == len(convs) == tuned.plan["schedules"]["by_rule"]["gemm tuned"]
    assert tuned.plan["arena_bytes"] == plain.plan["arena_bytes"]
    assert tuned.plan["buffers"] == plain.plan["buffers"]
    feeds = random_feeds(conv_zoo())
    expected = onnx_runtime_outputs(model, feeds)
    for art in ("plain", "tuned"):
        actual = load(tmp_path / art).run(feeds)
        for name, value in expected.items():
            assert relative_error(actual[name], value) < 1e-4, (art, name)


def test_every_sampled_knob_setting_computes_the_default_result():
    """Knob settings drawn from each rule's grid (its seeds first) build and give
    the default's outputs on the awkward shapes of conv_zoo (14x14, padded tiles,
    groups, a 1-row Gemm), or the rule declines them (then the tuner never records
    them, and they cost no trial). It found a tile that padded the Gemm's missing
    row axis and doubled results."""
    from graphopt.kernels.schedules import common, schedule_kernel, schedule_with
    from graphopt.kernels.tuning import measure, space

    target, kernels = _kernels(conv_zoo())
    registers = common.vector_registers(target)
    checked = declined = 0
    for task in kernels.values():
        default, rule = schedule_kernel(task.func, target)
        if rule not in ("gemm", "grouped", "depthwise"):
            continue
        bench = measure.KernelBench(task.func, target)
        reference = bench.outputs(bench.build(default.mod["main"]))
        sampler = space.Sampler(rule, registers, task.workload, explore=3)
        measured = 0
        while measured < 3 and (knobs := sampler.next()) is not None and declined < 200:
            sch = schedule_with(task.func, target, rule, knobs)
            if sch is None:
                declined += 1
                sampler.refused()
                continue
            assert measure.same_outputs(reference, bench.outputs(bench.build(sch.mod["main"]))) is None
            measured += 1
        checked += measured
    assert checked >= 15, (checked, declined)


def test_direct_convolution_seeds_come_first_and_refusals_are_not_measured():
    """After the data-read-in-place seeds (test_read_in_place), every direct tile that fits 16 registers is drawn
    before any other setting, largest first, and settings the rule refused do not count towards `explore`."""
    from graphopt.kernels.tuning import space

    sampler = space.Sampler("gemm", 16, "k", explore=2)
    seeds = space.gemm_seeds(16)
    drawn = [sampler.next() for _ in seeds]
    assert drawn == seeds and seeds[:len(space.read_in_place_seeds(16))] == space.read_in_place_seeds(16)
    direct = space.direct_seeds(16)
    assert seeds[-len(direct):] == direct and (direct[0]["rows"], direct[0]["vectors"]) == (14, 1)
    assert all(d["swap_axes"] and d["pack_u"] is False and not d["read_v"] for d in direct)
    for _ in seeds[:-1]:
        sampler.refused()
    sampler.report(drawn[-1], 1.0)
    # one setting measured (< explore = 2): the next draw follows the shuffled grid
    unseen = [p for p in sampler.order if p not in drawn]
    random_draw = sampler.next()
    assert random_draw == unseen[0]
    sampler.report(random_draw, 2.0)
    # two measured: now a neighbour of the best (the last seed) is drawn
    assert sampler.next() in space.neighbours(drawn[-1], sampler.points)


def test_workload_key_ignores_names_and_sees_shapes():
    from graphopt.kernels.tuning.workload import workload_key

    _, kernels = _kernels(conv_zoo())
    keys = {t.workload for t in kernels.values()}
    assert len(keys) == len(kernels)
    task = next(iter(kernels.values()))
    assert workload_key(task.func.with_attr("global_symbol", "renamed")) == task.workload


def test_db_path_that_is_a_file_is_an_error(tmp_path):
    from graphopt.kernels.tuning.db import TuningDB, TuningDBError

    (tmp_path / "f").write_text("x")
    with pytest.raises(TuningDBError, match="not a directory"):
        TuningDB.open(Path(tmp_path / "f"), create=True)


def test_im2col_packed_tile_by_tile_computes_the_unscheduled_result():
    """The GEMM rule's two ways of packing an activation operand (all of it first,
    or one vector tile at a time inside the parallel loop, the default when the
    weights fit L2) both give the unscheduled kernel's outputs on every GEMM
    kernel of conv_zoo, and tile-by-tile packing really is another program."""
    from graphopt.kernels.schedules import schedule_with
    from graphopt.kernels.tuning import measure

    target, kernels = _kernels(conv_zoo())
    differs = 0
    for task in kernels.values():
        whole = schedule_with(task.func, target, "gemm", {"pack_in_tile": False})
        if whole is None:
            continue
        bench = measure.KernelBench(task.func, target)
        reference = bench.outputs(bench.build(task.func))
        in_tile = schedule_with(task.func, target, "gemm", {"pack_in_tile": True})
        for sch in (whole, in_tile):
            assert measure.same_outputs(reference, bench.outputs(bench.build(sch.mod["main"]))) is None, task.name
        differs += not tvm_equal(whole.mod["main"], in_tile.mod["main"])
    assert differs >= 2  # the 3x3 and the strided convolution pack their im2col


def test_rule_refuses_a_broadcast_operand_read_in_place_that_needs_padding():
    """Reading the data in place (pack_u off) with tile rows that do not divide the
    spatial extent would copy a padded operand on every run: the rule declines it,
    and the tuner does not spend a trial on it."""
    from graphopt.kernels.schedules import schedule_with

    target, kernels = _kernels(conv_zoo())
    conv = next(t for t in kernels.values() if t.name.startswith("fused_conv2d") and "relu" in t.name)
    knobs = {"swap_axes": True, "pack_u": False, "vectors": 1}
    assert schedule_with(conv.func, target, "gemm", knobs | {"rows": 3}) is None  # 196 positions
    assert schedule_with(conv.func, target, "gemm", knobs | {"rows": 7}) is not None


def test_padded_copy_computes_the_unscheduled_result_and_needs_padding():
    """pad_copy keeps the padded data as a stage of its own instead of testing bounds
    in every multiply-add: same numbers, a different kernel; refused (no trial spent)
    where the convolution pads nothing."""
    from graphopt.kernels.schedules import schedule_with
    from graphopt.kernels.tuning import measure

    target, kernels = _kernels(conv_zoo())
    direct = {"swap_axes": True, "pack_u": False, "vectors": 1, "rows": 7}
    padded = [t for t in kernels.values() if t.name.startswith("fused_conv2d") and "relu" in t.name]
    checked = 0
    for task in padded:
        inline, copied = (schedule_with(task.func, target, "gemm", direct | {"pad_copy": c}) for c in (False, True))
        if inline is None:
            continue
        bench = measure.KernelBench(task.func, target)
        reference = bench.outputs(bench.build(task.func))
        if copied is None:  # the 1x1 convolution: nothing to pad
            continue
        assert measure.same_outputs(reference, bench.outputs(bench.build(copied.mod["main"]))) is None, task.name
        assert not tvm_equal(inline.mod["main"], copied.mod["main"])
        checked += 1
    assert checked >= 1
    one_by_one = next(t for t in kernels.values() if t.name.startswith("fused_conv2d1"))
    assert schedule_with(one_by_one.func, target, "gemm", direct | {"pad_copy": False}) is not None
    assert schedule_with(one_by_one.func, target, "gemm", direct | {"pad_copy": True}) is None


def tvm_equal(a, b) -> bool:
    import tvm_ffi

    return tvm_ffi.structural_equal(a, b)


def test_kernels_that_only_read_weights_are_not_tuned():
    """Work on weights alone (conv_zoo's bias reshapes) runs once at compile time
    (prepack lifts it out of `main`): no task for it, and every other kernel stays."""
    from graphopt.frontend import prepare
    from graphopt.frontend.importer import to_relax
    from graphopt.kernels.tuning import search
    from graphopt.lowering import prepack
    from graphopt.lowering.lower import legalize
    from graphopt.lowering.target import make_target
    from tests.kernels.test_schedules import prepare_model

    target = make_target("llvm")
    mod = prepack.mark_weights()(legalize(to_relax(prepare_model(conv_zoo(), prepare)).mod, target))
    weights = search._weight_only_vars(mod)
    sites = search._calls(mod)
    weight_only = {name for name, calls in sites.items() if all(search._reads_only(c, weights) for c in calls)}
    assert weight_only and all(name.startswith("reshape") for name in weight_only), weight_only
    names = {t.name for t in search.tasks_of(mod)}
    assert not names & weight_only
    assert names | weight_only == set(sites)


def test_cold_cache_times_after_a_flush_and_says_so(tmp_path, monkeypatch):
    """--cold-cache: every timing goes through time_evaluator with the flush (seen by wrapping it), the records
    carry cache_flush_bytes, and the next run without the flag times warm again (the setting is per run)."""
    import tvm

    from graphopt.kernels.tuning import measure, search

    monkeypatch.setattr(search, "MIN_TUNED_ITERATIONS", 1000)
    flushes = []
    evaluator = tvm.runtime.Module.time_evaluator

    def spy(self, *args, **kwargs):
        flushes.append(kwargs.get("cache_flush_bytes", 0))
        return evaluator(self, *args, **kwargs)

    monkeypatch.setattr(tvm.runtime.Module, "time_evaluator", spy)
    model = tmp_path / "m.onnx"
    onnx.save(conv_zoo(), model)
    assert main(["tune-kernels", str(model), "--trials", "1", "--db", str(tmp_path / "cold"), "--cold-cache",
                 "--quiet"]) == 0
    assert flushes and set(flushes) == {measure.COLD_FLUSH_BYTES}, set(flushes)
    records = [json.loads(line) for line in (tmp_path / "cold" / "kernels.jsonl").read_text().splitlines()]
    assert records and all(r["cache_flush_bytes"] == measure.COLD_FLUSH_BYTES for r in records)
    flushes.clear()
    assert main(["tune-kernels", str(model), "--trials", "1", "--db", str(tmp_path / "warm"), "--quiet"]) == 0
    assert flushes and set(flushes) == {0}, set(flushes)
    records = [json.loads(line) for line in (tmp_path / "warm" / "kernels.jsonl").read_text().splitlines()]
    assert records and not any("cache_flush_bytes" in r for r in records)


def test_cold_cache_with_workers_is_a_one_line_error(tmp_path, capsys):
    model = tmp_path / "m.onnx"
    onnx.save(conv_zoo(), model)
    assert main(["tune-kernels", str(model), "--db", str(tmp_path / "db"), "--cold-cache", "--workers", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "--cold-cache" in err and "\n" not in err, err
    assert not (tmp_path / "db").exists()
