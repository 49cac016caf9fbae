"""Superpixels for LIME: a small SLIC (Achanta et al. 2012) written for one image.

Centres start on a grid with step `step`; each pass gives every pixel to the nearest
centre within 2 * step, distance sqrt(colour^2 + (compactness * spatial / step)^2),
colours scaled to unit spread so the compactness means the same on any input range.
Ten passes, then empty segments are dropped and the labels renumbered 0..K-1.
Deterministic. Unlike full SLIC, a segment is not forced to be connected: LIME only
needs regions that switch on and off together.
"""

from __future__ import annotations

import numpy as np

PASSES = 10
COMPACTNESS = 1.0  # weight of space vs colour: ~1 gives regions that follow strokes yet stay local


def _grid_centres(height: int, width: int, step: int) -> np.ndarray:
    ys = np.arange(step / 2, height, step)
    xs = np.arange(step / 2, width, step)
    return np.array([(y, x) for y in ys for x in xs], dtype=np.float64)


def slic(image: np.ndarray, step: int) -> np.ndarray:
    """(C, H, W) image -> (H, W) int labels 0..K-1, about (H / step) * (W / step) of them."""
    channels, height, width = image.shape
    step = max(1, min(step, height, width))
    spread = float(image.std()) or 1.0
    colours = (image.reshape(channels, -1).T / spread).astype(np.float64)  # (HW, C)
    yy, xx = np.mgrid[0:height, 0:width]
    places = np.stack([yy.ravel(), xx.ravel()], axis=1).astype(np.float64)  # (HW, 2)
    centre_places = _grid_centres(height, width, step)
    centre_colours = colours[_nearest_pixel(centre_places, width)]
    for _ in range(PASSES):
        labels = _assign(colours, places, centre_colours, centre_places, step, height, width)
        centre_colours, centre_places = _update(colours, places, labels, len(centre_places))
    labels = _assign(colours, places, centre_colours, centre_places, step, height, width)
    _, renumbered = np.unique(labels, return_inverse=True)
    return renumbered.reshape(height, width)


def _grid_labels(height: int, width: int, step: int) -> np.ndarray:
    """The starting grid's label of every pixel (same order as _grid_centres)."""
    rows, columns = len(np.arange(step / 2, height, step)), len(np.arange(step / 2, width, step))
    yy, xx = np.mgrid[0:height, 0:width]
    return (np.minimum(yy // step, rows - 1) * columns + np.minimum(xx // step, columns - 1)).ravel()


def _nearest_pixel(centre_places: np.ndarray, width: int) -> np.ndarray:
    rounded = np.floor(centre_places).astype(int)
    return rounded[:, 0] * width + rounded[:, 1]


def _assign(colours, places, centre_colours, centre_places, step: int, height: int, width: int) -> np.ndarray:
    """Each pixel to its nearest centre among those within 2 * step (SLIC's local search).

    A loop over centres, each touching only its (4 step)^2 window: memory and time
    grow with the pixels, not pixels x centres."""
    best = np.full(height * width, np.inf)
    labels = _grid_labels(height, width, step)  # kept by any pixel no centre reaches
    grid_colours = colours.reshape(height, width, -1)
    for k, (cy, cx) in enumerate(centre_places):
        y0, y1 = max(0, int(cy - 2 * step)), min(height, int(cy + 2 * step) + 1)
        x0, x1 = max(0, int(cx - 2 * step)), min(width, int(cx + 2 * step) + 1)
        if y0 >= y1 or x0 >= x1:
            continue  # an emptied centre parked off the image
        yy, xx = np.mgrid[y0:y1, x0:x1]
        spatial = ((yy - cy) ** 2 + (xx - cx) ** 2) / step ** 2
        colour = ((grid_colours[y0:y1, x0:x1] - centre_colours[k]) ** 2).sum(axis=2)
        distance = (colour + COMPACTNESS ** 2 * spatial).ravel()
        index = (yy * width + xx).ravel()
        closer = distance < best[index]
        best[index[closer]] = distance[closer]
        labels[index[closer]] = k
    return labels


def _update(colours, places, labels, count: int) -> tuple[np.ndarray, np.ndarray]:
    """New centres; an emptied one keeps a far-away place so it stays empty."""
    sizes = np.bincount(labels, minlength=count).astype(np.float64)
    safe = np.maximum(sizes, 1)[:, None]
    new_colours = np.stack([np.bincount(labels, weights=c, minlength=count) for c in colours.T], axis=1) / safe
    new_places = np.stack([np.bincount(labels, weights=p, minlength=count) for p in places.T], axis=1) / safe
    new_places[sizes == 0] = -1e9
    return new_colours, new_places
