"""Black-box saliency maps for compiled artifacts: which pixels drive a prediction.

No gradients: every method perturbs the input and watches the target's score move,
so the artifact is explained exactly as it runs (graphopt.runtime), and the same
method on the source ONNX model (ONNX Runtime) gives the reference map.

    predictors.py  the one black-box interface, on an artifact or an ONNX model
    scores.py      model outputs -> one score per class (log-odds for probabilities)
    occlusion.py   slide a patch, measure the drop
    rise.py        random low-resolution masks, score-weighted average
    segments.py    superpixels (a small SLIC) for LIME
    lime.py        random segment on/off samples, weighted ridge fit
    fidelity.py    agreement with the reference map, deletion curve vs random
    overlay.py     the map drawn over the input as a PNG
    run.py         ties them together for `graphopt explain`
"""

from graphopt.explain.run import METHODS, ExplainReport, explain_artifact

__all__ = ["METHODS", "ExplainReport", "explain_artifact"]
