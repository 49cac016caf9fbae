"""Creating a study, or resuming one that has the same problem.

Running `graphopt tune` again with the same --storage and --study resumes: the
finished trials are in the storage, the budget counts them, and only the
remaining trials run (a new --trials raises or lowers the budget). A study of
the same name that tunes something else (another model, objectives or space)
is refused rather than mixed.
"""

from __future__ import annotations

from graphopt.tune import study_config
from graphopt.tune.errors import StorageError
from graphopt.tune.storage import open_storage
from graphopt.tune.study_config import StudyConfig


def create_or_resume(url: str, name: str, config: StudyConfig) -> tuple[bool, StudyConfig]:
    """(resumed?, the config in force) after making sure the study exists with this problem."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(url)
    directions = ["minimize"] * len(config.objectives)
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        study = optuna.create_study(study_name=name, storage=storage, directions=directions)
        study.set_user_attr(study_config.ATTR, config.to_attr())
        return False, config
    stored = study_config.read(study)
    reason = stored.same_problem(config)
    if reason:
        raise StorageError(f"study {name!r} already exists in this storage and {reason}; pick another --study")
    if stored.trials != config.trials or stored.memory_limit != config.memory_limit:
        study.set_user_attr(study_config.ATTR, {**stored.to_attr(), "trials": config.trials,
                                                "memory_limit": config.memory_limit})
    return True, study_config.read(study)
