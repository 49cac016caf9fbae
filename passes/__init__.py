"""Planning and optimizing passes, one per file (mapped in as `graphopt.passes`).

Kept empty on purpose: import the pass you need (`graphopt.passes.cpsat`) or
look planners up by name in `graphopt.passes.registry`; importing this package
must not pull in OR-Tools.
"""
