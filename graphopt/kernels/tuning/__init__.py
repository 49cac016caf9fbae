"""Kernel tuning: search the CPU schedule rules' own knobs per kernel, keep the best.

    workload.py  what identifies a kernel across models (structural hash + target)
    db.py        the tuning database: JSON lines (atomic rewrites) or an RDB table, keyed by CPU too
    db_table.py  that table in the study's SQLite/PostgreSQL database (many machines write it)
    space.py     each rule's knobs and the candidates a search draws from them
    measure.py   build one kernel, time it in process, check it against the default
    search.py    the tuning loop over a model's kernels (progress, budget, records)
    jobs.py      the same, one kernel per job on an executor (local processes, Ray)
    apply.py     the compile-time pass that applies recorded choices

Why our own loop: MetaSchedule's tune_tir segfaults in the apache-tvm 0.27.0.post1
wheel, and our rules already encode what matters on a CPU (register tiles, vector
axis, cache blocking, packing); searching their knobs is a small space that a few
dozen trials per kernel cover well. Nothing here changes the Relax program, so
the memory plan is the same with or without a database.
"""
