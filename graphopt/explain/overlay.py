"""The map over the picture: what a user looks at.

Panels stacked vertically (text lines are wide): the input, the artifact's map over
a grey copy of it, and the reference map when there is one. The colour scale is
symmetric around zero (red = evidence for the target, blue = against), so two maps
with the same shape look the same whatever their scale.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from graphopt.errors import InputError

MAP_ALPHA = 0.55


def displayable(image: np.ndarray) -> np.ndarray:
    """(C, H, W) in any range -> (H, W, 3) or (H, W) in [0, 1], by its own min and max."""
    low, high = float(image.min()), float(image.max())
    scaled = (image - low) / (high - low) if high > low else np.zeros_like(image)
    if scaled.shape[0] == 3:
        return scaled.transpose(1, 2, 0)
    return scaled.mean(axis=0)


def _panel(axis, picture: np.ndarray, saliency: np.ndarray | None, title: str):
    axis.set_title(title, fontsize=9)
    axis.axis("off")
    if saliency is None:
        axis.imshow(picture, cmap="gray" if picture.ndim == 2 else None)
        return None
    grey = picture.mean(axis=2) if picture.ndim == 3 else picture
    axis.imshow(grey, cmap="gray")
    limit = float(np.abs(saliency).max()) or 1.0
    return axis.imshow(saliency, cmap="RdBu_r", vmin=-limit, vmax=limit, alpha=MAP_ALPHA)


def save_overlay(path: Path, image: np.ndarray, saliency: np.ndarray, title: str,
                 reference: np.ndarray | None = None) -> None:
    """Writes the PNG atomically (temp file, then rename): a failed draw leaves no half file."""
    from matplotlib.figure import Figure

    path = Path(path)
    if not path.parent.is_dir():
        raise InputError(f"cannot write {path}: no directory {path.parent}")
    picture = displayable(image)
    panels = [("input", None), (title, saliency)]
    if reference is not None:
        panels.append(("reference: same method on the source model (ONNX Runtime)", reference))
    height, width = saliency.shape
    inches = min(12.0, max(4.0, width / 24))
    fig = Figure(figsize=(inches, len(panels) * (inches * height / width + 0.45)))
    axes = fig.subplots(len(panels), 1, squeeze=False)[:, 0]
    for axis, (label, values) in zip(axes, panels):
        shown = _panel(axis, picture, values, label)
        if shown is not None:
            fig.colorbar(shown, cax=axis.inset_axes((1.01, 0.0, 0.015, 1.0)))  # beside, not shrinking the panel
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
        os.replace(tmp, path)
    except OSError as exc:
        raise InputError(f"cannot write {path} ({exc.strerror or exc})") from None
    finally:
        tmp.unlink(missing_ok=True)
