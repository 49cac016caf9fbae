"""Does concatenation in place (on by default) ever raise a model's arena? Compiles each model
with and without it and compares arena and lower bound; exits 1 if `on` is above `off` anywhere.

    python -m benchmarks.concat_no_worse [--models a,b,...] [--json FILE]

Default models: the zoo's concatenating CNNs, the OCR recognizer and the bundled examples.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import tempfile
from pathlib import Path

import onnx

from benchmarks.machine import cpu_name
from benchmarks.model_zoo import materialize
from benchmarks.outputs import RESULTS, unused

DEFAULT_MODELS = ("light_densenet121", "light_squeezenet", "light_inception_v1", "light_inception_v2", "ocr_rec",
                  "example:residual_branch_net", "example:parallel_concat")


def _model(name: str, work: Path) -> tuple[Path, dict]:
    if name.startswith("example:"):
        from graphopt.examples.models import EXAMPLES

        path = work / f"{name[8:]}.onnx"
        onnx.save(EXAMPLES[name[8:]](), path)
        return path, {}
    path, shapes, _feeds = materialize(name, work)
    return path, shapes


def compare(name: str, work: Path) -> dict:
    from graphopt.compiler import compile_model
    from graphopt.options import CompileOptions

    path, shapes = _model(name, work)
    plans = {on: compile_model(path, work / f"art-{on}", CompileOptions(input_shapes=shapes, time_limit=5.0,
                                                                        concat_in_place=on)).plan
             for on in (True, False)}
    on, off = plans[True], plans[False]
    return {"model": name, "concat_in_place": on["concat_in_place"], "arena_on": on["arena_bytes"],
            "arena_off": off["arena_bytes"], "lower_bound_on": on["lower_bound_bytes"],
            "lower_bound_off": off["lower_bound_bytes"], "concat_stage_seconds": on["stage_seconds"].get("concat"),
            "raised": on["arena_bytes"] > off["arena_bytes"] or on["lower_bound_bytes"] > off["lower_bound_bytes"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks.concat_no_worse", description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    rows = []
    for name in args.models.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            rows.append(compare(name, Path(tmp)))
        print(json.dumps(rows[-1]), flush=True)
    meta = {"date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"), "machine": cpu_name(),
            "cores": os.cpu_count(), "command": "python -m benchmarks.concat_no_worse " + " ".join(argv or sys.argv[1:])}
    out = args.json or unused(RESULTS / f"concat-no-worse-{datetime.date.today()}.json")
    out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    raised = [r["model"] for r in rows if r["raised"]]
    print(f"wrote {out}; " + (f"RAISED the arena: {', '.join(raised)}" if raised else "no model's arena raised"))
    return 1 if raised else 0


if __name__ == "__main__":
    sys.exit(main())
