"""Candidate default register tiles on every GEMM kernel of several models, timed side by side: the data
behind a rule's default tiles (graphopt.kernels.schedules.gemm_match).

    python -m benchmarks.tile_sweep [--models light_resnet50,...] [--rounds 3] [--json FILE]

Per kernel (a 1x1 convolution or matmul, or a windowed convolution, of at least 2^20 multiply-adds): the
default schedule and, scheduled by the GEMM rule alone with these knobs (kernel_knobs.time_kernel: checked
against the default's result, timed as the tuner does, interleaved, best of the rounds):

* `cRxV`: the contiguous form's tile, R rows x V vectors (rows exactly R: U padded where R does not divide it);
* `dRxV`: a 1x1 convolution in the direct form (vectors over the output channels, the data read in place);
* `wRxV`: a windowed convolution in the direct form from a padded copy, each row count that divides the positions.

Markdown to stdout (per model: the default's time, the best candidate's per kernel, and their ratio, for
each kind); JSON rows with every candidate's time.

    python -m benchmarks.tile_sweep --evaluate FILE.json

reads such a file and says what the rules' current AVX-512 choices (gemm_match.wide_tile, direct_shape_tile)
would have taken per model and kind, against the file's default and its best candidate per kernel: how a
change of the default tiles was chosen, from data measured before it.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
from pathlib import Path

from benchmarks.kernel_knobs import time_kernel
from benchmarks.kernel_profile import model_tasks
from benchmarks.outputs import RESULTS, unused

MODELS = ("light_resnet50", "light_densenet121", "light_inception_v1", "light_squeezenet", "ocr_det", "ocr_rec")
MIN_MACS = 1 << 20  # smaller kernels are dominated by their call, not their tile
CONTIGUOUS = ((8, 3), (8, 2), (12, 2), (6, 3), (4, 4), (7, 3))
POINTWISE_ROWS = (14, 12, 10, 8, 7, 6, 5, 4)
WINDOWED_ROWS = {2: (14, 12, 10, 9, 8, 7, 6, 5, 4), 1: (14, 13, 12, 11, 10, 9, 8, 7)}
DIRECT = {"swap_axes": True, "pack_u": False, "pack_in_tile": False, "block_bytes": 1 << 18}


def candidates(positions: int, channels: int, output_in_positions: bool, windowed: bool) -> dict[str, dict]:
    """{label: knobs} for one kernel (see the module docstring)."""
    direct_ok = output_in_positions and channels % 16 == 0
    vectors = 2 if channels % 32 == 0 else 1
    if windowed:
        return {f"w{r}x{vectors}": {"rows": r, "vectors": vectors, "pad_copy": True, **DIRECT}
                for r in WINDOWED_ROWS[vectors] if direct_ok and positions % r == 0}
    found = {f"c{r}x{v}": {"rows": r, "vectors": v} for r, v in CONTIGUOUS}
    found |= {f"d{r}x{vectors}": {"rows": r, "vectors": vectors, "pad_copy": False, **DIRECT}
              for r in POINTWISE_ROWS if direct_ok and positions % r == 0}
    return found


def kernel_shape(task, target) -> dict | None:
    """{windowed, I, J, K, out_i} of a static GEMM kernel, else None."""
    from graphopt.kernels.schedules import common
    from graphopt.kernels.schedules.gemm import single_reduction
    from graphopt.kernels.schedules.gemm_match import I_, J_, K_, extent_of, is_windowed, iter_traits, vector_axis_is_i

    started = common.start(task.func, target)
    main = None if started is None else single_reduction(*started)
    traits = None if main is None else iter_traits(started[0].get(main))
    if traits is None:
        return None
    extents = [extent_of(traits[3], kind) for kind in (I_, J_, K_)]
    if not all(isinstance(e, int) for e in extents):
        return None
    return {"windowed": is_windowed(started[0].get(main)), "I": extents[0], "J": extents[1], "K": extents[2],
            "out_i": vector_axis_is_i(traits[3], traits[2], common.vector_lanes(target))}


def sweep_model(model: str, rounds: int, work: Path) -> list[dict]:
    target, tasks = model_tasks(model, work, None)
    rows = []
    for task in tasks:
        shape = kernel_shape(task, target)
        if shape is None or shape["I"] * shape["J"] * shape["K"] < MIN_MACS:
            continue
        found = candidates(shape["I"], shape["J"], shape["out_i"], shape["windowed"])
        if not found:
            continue
        labels = {json.dumps(knobs, sort_keys=True): label for label, knobs in found.items()}
        timed = time_kernel(task, target, "gemm", list(found.values()), rounds)
        ms = {labels.get(r["knobs"], r["knobs"]): r["ms"] for r in timed}
        rows.append({"model": model, "kernel": task.name, "calls": task.calls, **shape, "ms": ms})
        print(f"  {task.name}: " + " ".join(f"{k} {v}" for k, v in ms.items()), file=sys.stderr, flush=True)
    return rows


def summary(rows: list[dict]) -> str:
    """Per model and kind: the default's time per run and the best candidate's per kernel."""
    totals = collections.defaultdict(lambda: [0.0, 0.0])
    for r in rows:
        best = min(v for v in r["ms"].values() if v is not None)
        key = (r["model"], "windowed" if r["windowed"] else "1x1/matmul")
        totals[key][0] += r["ms"]["default"] * r["calls"]
        totals[key][1] += best * r["calls"]
    lines = ["| model | kind | default ms | best per kernel ms | ratio |", "|---|---|---|---|---|"]
    lines += [f"| {m} | {k} | {d:.2f} | {b:.2f} | {b / d:.3f} |" for (m, k), (d, b) in totals.items()]
    return "\n".join(lines)


def avx512_choice(row: dict) -> str:
    """The candidate label today's rules pick on a 32-register target for a swept kernel ('default' when it is
    none of the candidates: the rule's fallback tile, timed as the file's default)."""
    from graphopt.kernels.schedules.gemm_match import direct_shape_tile, wide_tile

    lanes, positions, channels = 16, row["I"], row["J"]
    if row["out_i"] and channels % lanes == 0:
        tile = direct_shape_tile(positions, channels, row["windowed"], lanes, registers=32)
        if tile is not None:
            return f"{'w' if row['windowed'] else 'd'}{tile.rows}x{tile.vectors}"
    if row["windowed"]:
        return "default"  # the sweep times no contiguous tile for a windowed convolution
    u, v = (channels, positions) if row["out_i"] else (positions, channels)
    tile = wide_tile(u, v, lanes)
    return "default" if tile is None else f"c{tile.rows}x{tile.vectors}"


def evaluate(rows: list[dict]) -> str:
    """Per model and kind: today's choice and the best candidate per kernel, each over the file's default. A choice
    the sweep did not time (a row count outside its candidates) counts at the file's default time."""
    totals = collections.defaultdict(lambda: [0.0, 0.0, 0.0])
    for r in rows:
        key = (r["model"], "windowed" if r["windowed"] else "1x1/matmul")
        chosen = r["ms"].get(avx512_choice(r)) or r["ms"]["default"]
        for i, ms in enumerate((r["ms"]["default"], chosen, min(v for v in r["ms"].values() if v is not None))):
            totals[key][i] += ms * r["calls"]
    for kind in sorted({k for _, k in totals}):
        totals[("all", kind)] = [sum(t[i] for (_, k), t in list(totals.items()) if k == kind) for i in range(3)]
    lines = ["| model | kind | file's default ms | chosen now / default | best per kernel / default |",
             "|---|---|---|---|---|"]
    lines += [f"| {m} | {k} | {d:.2f} | {c / d:.3f} | {b / d:.3f} |" for (m, k), (d, c, b) in totals.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--evaluate", type=Path, default=None, help="a sweep's JSON: today's choices against it")
    args = parser.parse_args(argv)
    if args.evaluate is not None:
        print(evaluate(json.loads(args.evaluate.read_text())["rows"]))
        return 0
    from benchmarks.latency import _meta, engine_threads

    meta = _meta(argv, engine_threads(None)) | {"command": "python -m benchmarks.tile_sweep " + " ".join(argv)}
    with tempfile.TemporaryDirectory() as tmp:
        rows = [row for model in args.models.split(",") for row in sweep_model(model, args.rounds, Path(tmp))]
    print(summary(rows))
    out = args.json or unused(RESULTS / f"tile-sweep-{meta['date']}.json")
    out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
