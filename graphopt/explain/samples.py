"""Inputs with real structure for demos, tests and benchmarks: a rendered text line.

Why not noise: on a random image a classifier's decision depends on nothing in
particular, and a deletion check proves nothing. A line of text drawn with
matplotlib's bundled DejaVu font (no download) is what the PP-OCR models were
trained on; it is scaled as PP-OCR preprocesses: (pixel / 255 - 0.5) / 0.5.
"""

from __future__ import annotations

import numpy as np


def text_image(text: str, height: int = 48, width: int = 192, font_size: float | None = None,
               upside_down: bool = False) -> np.ndarray:
    """(3, H, W) float32 in [-1, 1]: dark text on white, left-aligned, vertically centred."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width / 100, height / 100), dpi=100)
    FigureCanvasAgg(fig)
    fig.text(0.03, 0.5, text, fontsize=font_size or height * 0.42, va="center", ha="left", family="DejaVu Sans")
    fig.canvas.draw()
    rgb = np.asarray(fig.canvas.buffer_rgba())[:height, :width, :3].astype(np.float32)
    image = ((rgb / 255.0 - 0.5) / 0.5).transpose(2, 0, 1)
    return np.ascontiguousarray(image[:, ::-1, ::-1] if upside_down else image)
