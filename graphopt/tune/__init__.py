"""`graphopt tune`: multi-objective search over compile options on Optuna, where a trial is a compile.

    space.py         the knobs searched (default space, YAML file, validation)
    options.py       configuration -> CompileOptions/TrainOptions -> predicted artifact id
    cache.py         artifact cache keyed by id, per-id locks, compile audit log
    trial.py         one trial: reuse by id, prune after planning, build, measure
    measure.py       latency (warm-up + median), training loss
    sampler.py       TPE / NSGA-II / random that never repeat a configuration
    storage.py       SQLite (default), RDB URL, journal file
    study.py         create or resume a study; study_config.py: the setup stored in it
    worker.py        the trial loop of one worker (one trial per job);  jobs.py: trials as executor jobs + progress
    pareto.py        Pareto front, hypervolume;  report.py: table and plot;  commit.py: --commit
"""
