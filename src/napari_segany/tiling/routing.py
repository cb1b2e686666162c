"""Where a prompt is decoded: the tile that holds it farthest from the tile's cutting edges,
and, when the mask is cut there, a window placed over the object.

A *cutting edge* is an outer-block edge that lies inside the image: an object can continue
past it. The image's own edges cut nothing. Distances are in pixels between a prompt's
extent (every point and box corner) and the edge's pixel boundary.
"""

from __future__ import annotations

import math

import numpy as np

from .grid import Box, TileGrid

# Pixels of a mask's border rows and columns that count as touching the frame's edge: SAM's
# masks of a cut object run up to the edge, give or take the resize's rounding.
TOUCH_BAND = 2


def choose_tile(grid: TileGrid, extent: tuple[float, float, float, float]) -> tuple[int, float]:
    """The tile to decode a prompt of ``extent`` (min_row, min_col, max_row, max_col) in, and
    its margin: the distance from the extent to that tile's nearest cutting edge (infinite
    without one, negative where the extent crosses it).

    The tile with the largest margin wins, so a click in a tile's inner block goes to that
    tile: its halo puts at least ``halo`` pixels between the click and any cutting edge, while
    every other tile has the click within ``halo`` of one. The exception is a last row (or
    column) of tiles no thicker than the halo: the tile before it already reaches the image's
    edge, holds the thin tile's inner block with more room around it, and wins. Ties go
    to the tile whose inner block holds the extent's centre.
    """
    outer = grid.outer_boxes().astype(np.float64)
    h, w = grid.image_shape
    r0, c0, r1, c1 = extent
    inf = np.inf
    # Pixel (r, c) spans r - 0.5 .. r + 0.5, so a block [a, b) spans a - 0.5 .. b - 0.5.
    top = np.where(outer[:, 0] > 0, r0 - (outer[:, 0] - 0.5), inf)
    left = np.where(outer[:, 1] > 0, c0 - (outer[:, 1] - 0.5), inf)
    bottom = np.where(outer[:, 2] < h, (outer[:, 2] - 0.5) - r1, inf)
    right = np.where(outer[:, 3] < w, (outer[:, 3] - 0.5) - c1, inf)
    margins = np.minimum.reduce([top, left, bottom, right])
    best = margins.max()
    candidates = np.flatnonzero(margins == best)
    home = grid.tile_at((r0 + r1) / 2, (c0 + c1) / 2)
    index = home if home in candidates else int(candidates[0])
    return int(index), float(best)


def touched_cut_sides(mask: np.ndarray, frame: Box, grid: TileGrid) -> tuple[bool, ...]:
    """Which sides (top, left, bottom, right) of ``frame`` the (h, w) bool ``mask`` (over the
    frame) touches where the side is a cutting edge."""
    band = TOUCH_BAND
    touches = (
        mask[:band].any(),
        mask[:, :band].any(),
        mask[-band:].any(),
        mask[:, -band:].any(),
    )
    return tuple(bool(t and c) for t, c in zip(touches, grid.cut_sides(frame)))


def window_box(
    extent: tuple[int, int, int, int],
    cut: tuple[bool, ...],
    side: tuple[int, int],
    image_shape: tuple[int, int],
    must_hold: tuple[float, float, float, float],
    margin: int,
) -> Box:
    """A window of ``side`` (rows, cols) pixels (clipped to the image) over an object.

    extent: the known pixels of the object, (min_row, min_col, max_row, max_col) inclusive;
    cut: the sides (top, left, bottom, right) where it was cut, so continues. Along an axis cut
    on one side only the window starts ``margin`` pixels before the object's uncut end and
    reaches as far as it can the other way; otherwise it is centred on the extent. It always
    holds ``must_hold`` (the prompt's extent) with ``margin`` where the image allows.
    """
    box = []
    for axis in (0, 1):
        lo, hi = extent[axis], extent[axis + 2]
        low_cut, high_cut = cut[axis], cut[axis + 2]
        size = min(side[axis], image_shape[axis])
        if high_cut and not low_cut:
            start = lo - margin
        elif low_cut and not high_cut:
            start = hi + 1 + margin - size
        else:
            start = math.floor((lo + hi + 1) / 2 - size / 2)
        # The prompt stays inside, as far from the window's edges as the size allows.
        need_lo = math.floor(must_hold[axis] + 0.5) - margin
        need_hi = math.ceil(must_hold[axis + 2] - 0.5) + 1 + margin
        start = min(start, need_lo)
        start = max(start, need_hi - size)
        start = min(max(start, 0), image_shape[axis] - size)
        box.append((start, start + size))
    return box[0][0], box[1][0], box[0][1], box[1][1]


def mask_extent(mask: np.ndarray, frame: Box) -> tuple[int, int, int, int] | None:
    """(min_row, min_col, max_row, max_col) inclusive, in image pixels, of a mask over
    ``frame``; None when it is empty."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return (
        frame[0] + int(rows[0]),
        frame[1] + int(cols[0]),
        frame[0] + int(rows[-1]),
        frame[1] + int(cols[-1]),
    )
