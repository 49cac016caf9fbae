"""The kernel tuning database as an RDB table: keyed by CPU as well, written by many processes,
exported to the JSON-lines file that `compile --tuning-db DIR` reads; `tune-kernels` on Ray."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import onnx
import pytest

from graphopt.cli import main
from graphopt.cluster.node import node_cpu
from graphopt.examples.models import residual_branch_net
from graphopt.kernels.tuning.db import Record, TuningDB, TuningDBError

TARGET = "llvm/x/256/r5"


def _record(workload: str, cpu: str, rows: int) -> Record:
    return Record(workload, TARGET, "gemm", {"rows": rows}, seconds=rows * 1e-3, cpu=cpu)


def test_table_keeps_one_record_per_cpu_and_exports_one_cpu(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    db = TuningDB.open(url)
    db.commit(_record("a" * 16, "CPU one/256", 2))
    db.commit(_record("a" * 16, "CPU two/512", 4))
    db.commit(_record("a" * 16, "CPU two/512", 8))  # replaces its own CPU's record only
    again = TuningDB.open(url)
    assert len(again) == 2 and again.cpus() == ["CPU one/256", "CPU two/512"]
    assert again.get("a" * 16, TARGET, "CPU two/512").knobs == {"rows": 8}
    assert again.get("a" * 16, TARGET, "CPU three/256") is None  # never another CPU's timing
    assert again.export_jsonl(tmp_path / "export", "CPU one/256") == 1
    exported = TuningDB.open(tmp_path / "export")  # what compile --tuning-db DIR opens
    assert [r.knobs for r in exported.records.values()] == [{"rows": 2}]
    assert exported.get("a" * 16, TARGET).cpu == "CPU one/256"  # one CPU's export applies as it is


def test_records_without_a_cpu_hash_as_before(tmp_path: Path) -> None:
    """The db's hash enters the artifact id: records from before the cpu field keep their ids."""
    old = {"workload": "b" * 16, "target": TARGET, "rule": "gemm", "knobs": {}, "seconds": None,
           "default_seconds": None, "trials": 0, "kernel": "", "threads": None, "tuned_at": ""}
    (tmp_path / "kernels.jsonl").write_text(json.dumps(old, sort_keys=True) + "\n")
    db = TuningDB.open(tmp_path)
    import hashlib

    expected = hashlib.sha256(json.dumps({**old, "extra": {}}, sort_keys=True, separators=(",", ":")).encode()
                              + b"\n").hexdigest()
    assert db.content_sha256() == expected and db.get("b" * 16, TARGET, node_cpu()) is not None


@pytest.mark.parametrize("url", ["mysql://x/y", "sqlite:///no/such/dir/db.sqlite", "sqlite:///:memory:"])
def test_bad_db_urls_are_one_line(url: str) -> None:
    with pytest.raises(TuningDBError, match=r"^bad tuning db"):
        TuningDB.open(url)


def test_unreachable_postgres_is_one_line() -> None:
    with pytest.raises(TuningDBError, match=r"^cannot open tuning db postgresql://u:\*\*\*@127.0.0.1:9/db: "):
        TuningDB.open("postgresql://u:secret@127.0.0.1:9/db")


def _write_many(url: str, cpu: str, count: int) -> None:
    db = TuningDB.open(url)
    for n in range(count):
        db.commit(_record(f"{n:016x}", cpu, n + 1))


def test_many_processes_write_one_postgres_table(postgres_server) -> None:
    url = postgres_server.url(postgres_server.new_database("kernels"))
    TuningDB.open(url)  # the table exists before the writers race
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_write_many, args=(url, f"CPU {i}/256", 5)) for i in range(3)]
    for w in writers:
        w.start()
    for w in writers:
        w.join(60)
    assert [w.exitcode for w in writers] == [0, 0, 0]
    db = TuningDB.open(url)
    assert len(db) == 15 and db.cpus() == ["CPU 0/256", "CPU 1/256", "CPU 2/256"]


def _records(location) -> dict:
    """What a record must be whoever tuned it: every field but the timings and the date (with one
    trial per kernel no candidate is tried, so the knobs are the default's, {}, everywhere)."""
    return {k: (r.rule, r.trials, r.knobs, r.extra, r.cpu) for k, r in TuningDB.open(location).records.items()}


def test_tune_kernels_on_ray_writes_the_same_records_and_exports_for_compile(ray_cluster, tmp_path: Path,
                                                                             capsys) -> None:
    model = tmp_path / "demo.onnx"
    onnx.save(residual_branch_net(), model)  # kernels above and below the tuning size, some shared
    local, ray = tmp_path / "local", f"sqlite:///{tmp_path / 'study.db'}"
    assert main(["tune-kernels", str(model), "--trials", "1", "--db", str(local), "--quiet"]) == 0
    assert main(["tune-kernels", str(model), "--trials", "1", "--db", ray, "--quiet", "--cluster", "ray",
                 "--workers", "2", "--export", str(tmp_path / "export")]) == 0
    out = capsys.readouterr().out
    assert "exported" in out
    one, two = _records(local), _records(ray)
    assert one == two  # 1 process vs 2 Ray workers: same kernels tuned, same trials, same skip reasons
    trials = sorted(t for _rule, t, _knobs, _extra, _cpu in two.values())
    assert trials[0] == 0 and trials[-1] == 1 and {cpu for *_, cpu in two.values()} == {node_cpu()}
    exported = TuningDB.open(tmp_path / "export")  # what compile --tuning-db opens (tests/kernels compile with one)
    assert {k[:2] for k in exported.records} == {k[:2] for k in two}
    assert main(["tune-kernels", str(model), "--trials", "1", "--db", ray, "--quiet", "--cluster", "ray"]) == 0
    assert "nothing to tune: 0 trials" in capsys.readouterr().out  # every kernel known for this CPU
