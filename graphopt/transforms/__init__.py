"""Rewrites of the lowered Relax program, one per file; each returns a RewriteResult.

    reorder.py          a lower-peak kernel order (the search is passes/reorder.py)
    concat_in_place.py  producers write straight into their concatenation
    apply_placement.py  every planned tensor becomes a view into the one arena
    insert_swaps.py     swap-out/in and recompute calls of a training plan
    split_marked_stages.py  weight packing split out of the kernels a rule marked (before lifting)
    bind_result.py      a weight-only result kept through LiftTransformParams (before lifting)

The binding rules they share with extraction are public in graphopt.analysis.bindings.
"""
