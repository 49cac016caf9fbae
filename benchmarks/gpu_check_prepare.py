"""The `prepare` half of benchmarks/gpu_check.py: everything compiled here, nothing there.

    DIR/prepared.json          what was prepared, how, the plan figures, and what failed
    DIR/bundle/                `graphopt bundle` of the CUDA artifacts (Python 3.11 + 3.12):
        infer        inference, graphopt's arena (reordered)
        infer_stock  the same kernels, TVM's own order and StaticPlanBlockMemory
        train_noswap one training step, no budget
        train_swap   the same step under --memory-budget 66% (swaps to host)
    DIR/ref/infer.npz          inputs + ONNX Runtime CPU outputs ("out:" keys)
    DIR/ref/train.npz          inputs + the CPU (llvm) training step's outputs
    DIR/torch/                 the inference graph for the PyTorch baseline (gpu_check_torch)

TVM's dlight GPU rules raise (instead of declining) on some gradient kernels;
graphopt.lowering.gpu_rules makes such a rule decline so the next one (in the end
dlight's Fallback) schedules the kernel. The failures it absorbed while
preparing are recorded in prepared.json.
"""

from __future__ import annotations

import json
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

BUDGET = "66%"
INFER_OUTPUT_NAMES = ("infer", "infer_stock")
TRAIN_OUTPUT_NAMES = ("train_noswap", "train_swap")


@dataclass(frozen=True)
class Spec:
    """Which models; `tiny` is for tests (seconds), the default for the GPU run."""

    infer: str
    infer_kwargs: dict = field(default_factory=dict)
    train_kwargs: dict = field(default_factory=dict)
    classes: int = 4


# Sized so the whole preparation stays under the device run's 64 MiB carry limit.
FULL = Spec("squeezenet", {"size": 224, "batch": 8},
            {"batch": 8, "seq": 128, "dim": 256, "heads": 4, "layers": 2, "classes": 10}, classes=10)
CARRY_LIMIT = 64 * 2**20
TINY = Spec("residual_branch_net", {}, {"batch": 2, "seq": 4, "dim": 8, "heads": 2, "layers": 1, "classes": 4}, classes=4)


def infer_model(spec: Spec):
    if spec.infer == "residual_branch_net":
        from graphopt.examples.models import EXAMPLES

        return EXAMPLES["residual_branch_net"]()
    from graphopt.train.models import light_cnn

    return light_cnn(spec.infer, **spec.infer_kwargs)


def train_model(spec: Spec):
    from graphopt.train.models import transformer

    return transformer(**spec.train_kwargs)


def write_stock_artifact(result, out: Path) -> dict:
    """The inference program planned by TVM (StaticPlanBlockMemory), same kernels, as an artifact."""
    from graphopt.artifact import LIBRARY, PARAMS, write_artifact
    from graphopt.lowering.codegen import build_stock
    from graphopt.lowering.target import make_target

    executable = build_stock(result.lowered, make_target("cuda"))
    core = {k: v for k, v in result.manifest.items() if k not in ("format", "format_version", "id", "files")}
    core["options"] = {**core["options"], "memory_plan": "tvm-stock"}  # a distinct id from graphopt's artifact
    plan = {**result.plan, "variant": "tvm-stock"}

    def payload(tmp: Path) -> None:
        executable.export_library(str(tmp / LIBRARY))
        np.savez(tmp / PARAMS, **dict(zip(core["param_keys"], result.params)))

    return write_artifact(out, core, plan, payload)


def random_feeds(signature: list[dict], classes: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    feeds = {}
    for sig in signature:
        if np.dtype(sig["dtype"]).kind in "iu":
            feeds[sig["name"]] = rng.integers(0, classes, size=sig["shape"]).astype(sig["dtype"])
        else:
            feeds[sig["name"]] = rng.standard_normal(sig["shape"]).astype(sig["dtype"])
    return feeds


def _save_ref(path: Path, feeds: dict, expected: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **{f"in:{k}": v for k, v in feeds.items()}, **{f"out:{k}": v for k, v in expected.items()})


def _prepare_infer(spec: Spec, work: Path, out: Path, time_limit: float, record: dict) -> list[Path]:
    import onnx
    import onnxruntime as ort

    from benchmarks.gpu_check_torch import export_graph
    from graphopt.compiler import CompileOptions, compile_model

    model = infer_model(spec)
    onnx.save(model, work / "infer.onnx")
    result = compile_model(work / "infer.onnx", work / "infer", CompileOptions(target="cuda", time_limit=time_limit))
    stock = write_stock_artifact(result, work / "infer_stock")
    feeds = random_feeds(result.manifest["inputs"], spec.classes, seed=0)
    sess = ort.InferenceSession(str(work / "infer.onnx"), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    _save_ref(out / "ref" / "infer.npz", feeds, dict(zip(names, sess.run(names, feeds))))
    export_graph(model, out / "torch")
    record["infer"] = {"model": spec.infer, "kwargs": spec.infer_kwargs, "id": result.manifest["id"],
                       "stock_id": stock["id"], "arena_bytes": result.plan["arena_bytes"],
                       "tvm_stock_bytes": result.plan["tvm_stock_bytes"], "reference": "onnxruntime CPU"}
    return [work / "infer", work / "infer_stock"]


def _prepare_train(spec: Spec, work: Path, out: Path, time_limit: float, record: dict) -> list[Path]:
    import onnx

    from graphopt.compiler import compile_model
    from graphopt.options import TrainOptions
    from graphopt.runtime import load

    onnx.save(train_model(spec), work / "train.onnx")
    from graphopt.lowering.gpu_rules import FAILURES as failures

    plans = {}
    for name, budget in (("train_noswap", None), ("train_swap", BUDGET)):
        options = TrainOptions(target="cuda", memory_budget=budget, time_limit=time_limit)
        plans[name] = compile_model(work / "train.onnx", work / name, options).plan
    cpu = compile_model(work / "train.onnx", work / "train_cpu", TrainOptions(target="llvm", time_limit=time_limit))
    feeds = random_feeds(cpu.manifest["inputs"], spec.classes, seed=1)
    _save_ref(out / "ref" / "train.npz", feeds, load(work / "train_cpu").run(feeds))
    swap, base = plans["train_swap"], plans["train_noswap"]
    record["train"] = {
        "model": "transformer", "kwargs": spec.train_kwargs, "budget": BUDGET, "reference": "graphopt llvm training step",
        "noswap_arena_bytes": base["arena_bytes"], "swap_arena_bytes": swap["arena_bytes"],
        "budget_bytes": swap.get("budget_bytes"), "swaps": len(swap.get("swaps", [])),
        "swapped_bytes": int(sum(s["bytes"] for s in swap.get("swaps", []))),
        "predicted_step_seconds": swap.get("predicted_step_seconds"),
        "predicted_noswap_step_seconds": swap.get("predicted_noswap_step_seconds"),
        "dlight_rule_failures_skipped": len(failures), "dlight_rule_failure_kinds": sorted(set(failures))[:10],
    }
    return [work / "train_noswap", work / "train_swap"]


def prepare(out: Path, tiny: bool = False, python_versions: tuple[str, ...] = ("3.12",),
            wheel_dir: Path | None = None, time_limit: float = 10.0) -> dict:
    """Compiles, references, bundles; a part that fails is recorded (and the caller exits non-zero)."""
    from graphopt.bundle import make_bundle

    spec = TINY if tiny else FULL
    out = Path(out)
    if out.exists():
        if not (out / "prepared.json").is_file():
            raise SystemExit(f"error: {out} exists and was not written by gpu_check prepare; refusing to overwrite it")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    record: dict = {"created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "tiny": tiny,
                    "command": " ".join(sys.argv), "machine": _machine(), "failed": {}, "stage_seconds": {}}
    (out / "prepared.json").write_text(json.dumps({**record, "failed": {"prepare": "interrupted"}}))
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        arts: list[Path] = []
        for part, fn in (("infer", _prepare_infer), ("train", _prepare_train)):
            start = time.perf_counter()
            try:
                arts += fn(spec, Path(tmp), out, time_limit, record)
            except Exception as exc:  # noqa: BLE001 - recorded and reported loudly, never hidden
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                record["failed"][part] = f"{type(exc).__name__}: {first}"
                print(f"warning: gpu_check prepare: {part} failed: {record['failed'][part]}", file=sys.stderr)
            record["stage_seconds"][part] = round(time.perf_counter() - start, 1)
        if arts:
            try:
                bundled = make_bundle(arts, out / "bundle", python_versions, wheel_dir)
                record["bundle"] = {"total_bytes": bundled.total_bytes, "python_tags": bundled.python_tags,
                                    "artifacts": sorted(bundled.artifacts), "notes": bundled.notes}
            except Exception as exc:  # noqa: BLE001 - recorded and reported loudly
                record["failed"]["bundle"] = f"{type(exc).__name__}: {(str(exc).splitlines() or ['?'])[0]}"
                print(f"warning: gpu_check prepare: bundle failed: {record['failed']['bundle']}", file=sys.stderr)
    record["total_bytes"] = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    record["run_on_gpu"] = f"bash benchmarks/gpu_check.sh {out}   (device run: carry [{str(out)!r}], timeout_s 330)"
    if record["total_bytes"] > CARRY_LIMIT:
        print(f"warning: {out} is {record['total_bytes'] / 2**20:.1f} MiB, over the device run's "
              f"{CARRY_LIMIT / 2**20:.0f} MiB carry limit", file=sys.stderr)
    (out / "prepared.json").write_text(json.dumps(record, indent=1))
    return record


def _machine() -> str:
    from benchmarks.machine import cpu_name

    return f"{cpu_name()}, {platform.machine()}, Python {platform.python_version()}"
