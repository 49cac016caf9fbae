"""Runs training steps of a train artifact with its arena plan (runtime side only).

The step function takes (inputs, target, weights, states) and returns (loss,
weights', states'); the new weights and states stay device tensors and are fed
to the next step, so a step costs no host round trip beyond the batch and the
loss. Batches come from an .npz holding one array per input (model inputs by
name, and `target`): an array with one more leading axis than the signature
(or a first axis a multiple of the batch) is cycled through batch by batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tvm

from graphopt.errors import InputError, first_line
from graphopt.runtime.session import Session


@dataclass(frozen=True)
class TrainLog:
    losses: list[float]
    seconds: list[float]


class TrainRunner:
    """A train artifact loaded once; `step` may be called many times."""

    def __init__(self, art_dir: str | Path, expect_id: str | None = None, trusted_keys=None) -> None:
        import graphopt.runtime.swap  # noqa: F401  registers the swap functions the program calls

        self.session = Session(art_dir, expect_id, trusted_keys)
        train = self.session.manifest.get("train")
        if train is None:
            raise InputError(f"{art_dir} is not a training artifact (compile with --train)")
        self.num_params = int(train["num_params"])
        self.state = list(self.session.params)  # weights then optimizer states

    def step(self, feeds: dict[str, np.ndarray]) -> float:
        from graphopt.runtime.signature import check_inputs

        arrays = check_inputs(self.session.inputs, feeds)
        args = [tvm.runtime.tensor(a, self.session.device) for a in arrays] + self.state
        result = list(self.session.vm["main"](*args))
        self.state = result[1:]
        return float(result[0].numpy())

    def weights(self) -> list[np.ndarray]:
        return [t.numpy() for t in self.state[:self.num_params]]

    def run(self, data: dict[str, np.ndarray], steps: int) -> TrainLog:
        import time

        batches = _batches(self.session.inputs, data)
        losses, seconds = [], []
        for k in range(steps):
            began = time.perf_counter()
            losses.append(self.step(batches(k)))
            seconds.append(time.perf_counter() - began)
        return TrainLog(losses, seconds)


def _batches(signature: list[dict], data: dict[str, np.ndarray]):
    """A function k -> feeds for step k, cycling over the batches in `data`."""
    views = {}
    for sig in signature:
        if sig["name"] not in data:
            raise InputError(f"--data lacks an array named {sig['name']!r}")
        arr, shape = np.asarray(data[sig["name"]]), tuple(sig["shape"])
        if arr.shape == shape:
            views[sig["name"]] = arr[None]
        elif arr.shape[1:] == shape:
            views[sig["name"]] = arr
        elif shape and arr.shape[1:] == shape[1:] and arr.shape[0] % shape[0] == 0:
            views[sig["name"]] = arr.reshape((-1, *shape))
        else:
            raise InputError(f"--data {sig['name']}: shape {arr.shape} does not give batches of {shape}")
    return lambda k: {n: v[k % len(v)].astype(sig_dtype(signature, n)) for n, v in views.items()}


def sig_dtype(signature: list[dict], name: str) -> str:
    return next(s["dtype"] for s in signature if s["name"] == name)


def load_data(path: str | Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {path} as .npz ({first_line(exc)})") from None
