"""The signature of a training-step artifact, as its manifest states it.

The artifact runs like an inference artifact whose inputs are the model's
inputs plus `target`, whose params are the weights then the optimizer states,
and whose outputs are the loss, the new weights and the new states.
"""

from __future__ import annotations

import numpy as np


def training_signature(inference: dict, step, imported, states: list[np.ndarray], options) -> dict:
    """The inference signature (`inputs`, `param_keys`, ...) turned into a training step's."""
    from graphopt.train.step import TARGET_NAME

    inputs = [*inference["inputs"],
              {"name": TARGET_NAME, "shape": list(step.target_shape), "dtype": step.target_dtype}]
    weights = [{"name": f"param:{n}", "shape": list(p.shape), "dtype": str(p.dtype)}
               for n, p in zip(imported.param_names, imported.params)]
    state_specs = [{"name": f"state:{i}", "shape": list(s.shape), "dtype": str(s.dtype)} for i, s in enumerate(states)]
    loss = {"name": "loss", "shape": [], "dtype": "float32"}
    return {
        **inference,
        "inputs": inputs,
        "outputs": [loss, *weights, *state_specs],
        "param_names": list(imported.param_names) + [f"state:{i}" for i in range(len(states))],
        "train": {"num_params": len(imported.params), "num_states": len(states), "loss": options.loss,
                  "optimizer": options.optimizer},
    }
