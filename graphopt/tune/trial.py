"""One trial = one configuration compiled (or reused), checked against the memory limit, measured.

Order of work, cheapest exit first:
    predicted build id      (hash only)  -> a stored result for that id is reused as is
    artifact on another node (the shared table) -> fetched by its content id, not compiled
    plan stage of compile   (no TVM build) -> predicted peak over --memory-limit: pruned
    build + write, measure  -> result stored beside the artifact for every later trial,
                               the artifact published for every other node

A worker holds the node's shared lock while it works and trades it for the exclusive
one to measure (graphopt.cluster.node_lock): with K workers on a node, compiles run K
at once and each latency is timed with nothing else of ours running, so the values
(and the Pareto front) do not depend on how many workers ran. `compile_window` and
`measure_window` (wall-clock start and end) record when.

The build writes the artifact's content id into the compile log; measuring (now or
in a later trial that finds the artifact but no result) loads it pinned to that id,
so an artifact changed in the cache is refused, not measured. An artifact with no
recorded content id (its builder was killed before logging it) is built again.

Everything a trial learned is returned as `attrs` (stored as Optuna user_attrs),
so a study says for each trial whether it was reused, pruned or compiled, and
which stages ran.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

from graphopt.cluster.node_lock import timing, working
from graphopt.identity import predicted_id
from graphopt.tune.cache import ArtifactCache, worker_name
from graphopt.tune.errors import TuneError
from graphopt.tune.options import options_for
from graphopt.tune.study_config import StudyConfig


class OverMemoryLimit(Exception):
    """Raised from the compiler's after-plan hook to stop before the build."""

    def __init__(self, peak: int) -> None:
        super().__init__(f"predicted peak {peak} bytes")
        self.peak = peak


@dataclass
class Outcome:
    values: dict[str, float] = field(default_factory=dict)
    attrs: dict = field(default_factory=dict)
    pruned: bool = False


def evaluate(cfg: StudyConfig, config: dict, cache: ArtifactCache) -> Outcome:
    model = Path(cfg.model)
    options = options_for(model, config, cfg.train, cfg.target)
    artifact_id = predicted_id(model, options)
    with cache.lock(artifact_id):
        stored = cache.load_result(artifact_id)
        if stored is not None and _covers(stored, cfg):
            attrs = {"artifact_id": artifact_id, "reused": True, "compiled": False, "stages": []}
            if stored.get("content_id"):
                attrs["content_id"] = stored["content_id"]
            return _judge(cfg, stored, attrs)
        attrs = {"artifact_id": artifact_id, "reused": False, "compiled": False, "stages": []}
        pin = cache.recorded_content_id(artifact_id) if cache.has_artifact(artifact_id) else None
        if pin is not None:  # built here earlier by a worker killed before its result was stored
            attrs.update(reused_artifact=True, content_id=pin)
        elif (pin := cache.fetch(artifact_id)) is not None:  # built on another node: fetched, not compiled
            attrs.update(fetched=True, content_id=pin)
        else:  # not built anywhere, or built by a worker killed before it recorded the content id
            peak = _compile(cfg, model, options, cache, artifact_id, attrs)
            if peak is not None:  # stopped after planning
                cache.save_result(artifact_id, {"peak_memory": peak, "built": False})
                return _judge(cfg, {"peak_memory": peak}, attrs)
            cache.publish(artifact_id, attrs["content_id"])
        with timing():  # alone on this node: no other timing, no build beside it
            began = time.time()
            result = _measure(cfg, cache.artifact(artifact_id), attrs["content_id"])
            attrs["measure_window"] = [began, time.time()]
        attrs["measure_seconds"] = round(attrs["measure_window"][1] - began, 3)
        cache.save_result(artifact_id, {**result, "built": True, "content_id": attrs["content_id"]})
        return _judge(cfg, result, attrs)


def _covers(stored: dict, cfg: StudyConfig) -> bool:
    """A stored result answers this trial if it has every objective, or proves the trial over the limit."""
    if all(name in stored for name in cfg.objectives):
        return True
    return cfg.memory_limit is not None and stored.get("peak_memory", 0) > cfg.memory_limit


def _judge(cfg: StudyConfig, result: dict, attrs: dict) -> Outcome:
    attrs = {**attrs, **{k: v for k, v in result.items() if k in ("peak_memory", "latency", "loss")}}
    peak = result["peak_memory"]
    if cfg.memory_limit is not None and peak > cfg.memory_limit:
        attrs["pruned_reason"] = f"predicted peak {peak} bytes > --memory-limit {cfg.memory_limit}"
        return Outcome(attrs=attrs, pruned=True)
    return Outcome(values={name: result[name] for name in cfg.objectives}, attrs=attrs)


def _compile(cfg: StudyConfig, model: Path, options, cache: ArtifactCache, artifact_id: str,
             attrs: dict) -> int | None:
    """Compiles into the cache; returns the peak when the plan is over the limit (nothing built)."""
    stages: list[str] = attrs["stages"]
    marks: list[float] = []

    def stage(name: str) -> None:
        stages.append(name)
        marks.append(time.perf_counter())

    def after_plan(placement) -> None:
        if cfg.memory_limit is not None and placement.arena_bytes > cfg.memory_limit:
            raise OverMemoryLimit(int(placement.arena_bytes))

    began = time.perf_counter()
    try:
        from graphopt.compiler import compile_model

        with working():  # builds run side by side, never beside a timing; TrainOptions: a training step
            attrs["compile_window"] = [time.time(), None]
            result = compile_model(model, cache.artifact(artifact_id), options, stage, after_plan)
            attrs["compile_window"][1] = time.time()
    except OverMemoryLimit as over:
        cache.log_compile(artifact_id, time.perf_counter() - began, "pruned")
        attrs["stage_seconds"] = _durations(stages, marks)
        return over.peak
    seconds = time.perf_counter() - began
    attrs["stage_seconds"] = _durations(stages, marks)
    if result.manifest["build_id"] != artifact_id:  # dedup would be silently broken: refuse loudly
        raise TuneError(f"build id {result.manifest['build_id'][:12]} differs from the predicted {artifact_id[:12]}; "
                        "the tuner's id prediction is out of date with the compiler")
    cache.log_compile(artifact_id, seconds, "built", content_id=result.manifest["id"])
    attrs.update(compiled=True, compile_seconds=round(seconds, 3), content_id=result.manifest["id"])
    return None


def _durations(stages: list[str], marks: list[float]) -> dict[str, float]:
    """Seconds from each stage's start to the next one's (the last ends now)."""
    ends = [*marks[1:], time.perf_counter()]
    return {name: round(end - start, 3) for name, start, end in zip(stages, marks, ends)}


def _measure(cfg: StudyConfig, art: Path, content_id: str) -> dict:
    """Measures the artifact, loaded only if it is still the one built (content id pinned)."""
    from graphopt.artifact import load_manifest, load_plan

    load_manifest(art, expect_id=content_id)
    result = {"peak_memory": int(load_plan(art)["arena_bytes"])}
    if cfg.train:
        from graphopt.tune.measure import train_measure

        latency, loss = train_measure(art, Path(cfg.data), cfg.steps, cfg.warmup, expect_id=content_id)
        if not math.isfinite(loss):
            raise TuneError(f"loss is {loss} after {cfg.steps} steps (diverged)")
        result.update(latency=latency, loss=loss)
    else:
        from graphopt.tune.measure import inference_latency_ms

        result["latency"] = inference_latency_ms(art, cfg.repeat, cfg.warmup, expect_id=content_id)
    result["measured_by"] = worker_name()
    return result
