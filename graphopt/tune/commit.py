"""`--commit`: record the chosen configuration and its artifact in the pipeline store.

The pipeline store's `compile` component is keyed by the build id it will
produce (graphopt.pipelines.executor). So the tuned artifact is put into the
store's objects and its build id registered as a known artifact first; then the
model and a compile component carrying the chosen options are committed the
normal way, and the executor finds the artifact by id instead of compiling again.
The commit is an ordinary pipeline commit: `graphopt pipeline log` shows it.

The artifact is committed only if it is the one the trial built: its content id
must be the one recorded then (the trial's `content_id`, else the cache's compile
log), both in the cache folder before copying and in the store after.
"""

from __future__ import annotations

from pathlib import Path

from graphopt.tune.errors import TuneError
from graphopt.tune.space import from_dict
from graphopt.tune.study_config import StudyConfig


def compile_params(config: StudyConfig, params: dict) -> dict:
    """The pipeline compile component's params for a tuned configuration."""
    from graphopt.tune.options import options_for

    opts = options_for(Path(config.model), params, train=False, target=config.target)
    return {"target": opts.target, "planner": opts.planner, "time_limit": opts.time_limit,
            "input_shapes": {k: list(v) for k, v in opts.input_shapes.items()},
            "reorder": opts.reorder, "schedules": opts.schedules, "concat_in_place": opts.concat_in_place}


def commit_choice(repo_dir: Path, config: StudyConfig, trial, art_dir: Path, message: str,
                  content_id: str | None = None) -> tuple[str, bool]:
    """Commits model + compile(chosen params); returns (commit id, whether the stored artifact was reused).
    `content_id`: the content id recorded when the artifact was built (else the trial's)."""
    from graphopt.artifact import load_manifest
    from graphopt.pipelines import meta, open_repo
    from graphopt.pipelines.artifacts import check_tree
    from graphopt.pipelines.builtins import predicted_artifact_id
    from graphopt.pipelines.components import make_spec

    if config.train:
        raise TuneError("--commit records inference compiles; the pipeline store has no training-compile component")
    params = compile_params(config, {**from_dict(config.space, config.train).fixed_values(), **trial.params})
    artifact_id = trial.user_attrs["artifact_id"]
    if predicted_artifact_id(Path(config.model), params) != artifact_id:
        raise TuneError("the pipeline store would key this configuration under another artifact id; not committing")
    pin = content_id or trial.user_attrs.get("content_id")
    if not pin:
        raise TuneError(f"trial {trial.number} recorded no content id for its artifact (tuned by an older graphopt); "
                        "tune again before committing")
    load_manifest(art_dir, expect_id=pin)  # the artifact the trial built, every file re-hashed
    repo = open_repo(repo_dir)
    try:
        tree = repo.store.put_dir(art_dir)
        check_tree(repo.store, tree, build_id=artifact_id, expect_id=pin)  # and what the store now holds
        with meta.transaction(repo.conn):
            repo.conn.execute("INSERT OR IGNORE INTO artifacts VALUES (?,?)", (artifact_id, tree))
        branch = repo.current_branch()
        repo.stage("model", make_spec("model", repo.store, files=[Path(config.model)]), branch)
        repo.stage("compile", make_spec("compile", repo.store, inputs=["model"], params=params), branch)
        cid = repo.commit(message, branch)
        run = next(e["run"] for e in repo.commit_row(cid).pipeline if e["component"] == "compile")
        row = repo.conn.execute("SELECT output FROM runs WHERE key=?", (run,)).fetchone()
        return cid, row is not None and row["output"] == tree
    finally:
        repo.close()
