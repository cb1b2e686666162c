"""The seeded watershed micro-sam's AIS runs (bioimage-cpp's), pixel for pixel.

micro-sam grows its seeds with ``bioimage_cpp.segmentation.watershed``. Its answer is fixed by
four choices, and this flood makes the same ones, so that every pixel goes to the object it
goes to there:

* heights are quantised to 65536 levels over the pixels inside the mask, as
  ``uint16((h - min) * (65535 / (max - min)))`` in double precision (all level 0 when the
  range is empty);
* seeds enter in raster order, each at its own level;
* the flood runs level by level, each level's pixels a stack (last in, first out), and a
  pixel takes its label when it is pushed, at the higher of its own level and the current one
  (Meyer's monotone flooding), so the first front to touch it wins;
* a pixel's neighbours are visited axis by axis, first axis first, the lower one first
  (2-D: up, down, left, right).

scikit-image's watershed floods the exact heights in first-come order instead; at ties and at
heights closer than a level the two send a pixel to different seeds, enough to change a small
object by several percent.
"""

from __future__ import annotations

import numpy as np

from .compiled import compiled

LEVELS = 65536


def quantised_levels(heights: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """uint16 levels of ``heights`` inside ``mask`` (bool, of the same shape), 0 outside: the
    range of the heights inside, in double precision, spread over ``LEVELS`` levels."""
    levels = np.zeros(heights.shape, np.uint16)
    inside = heights[mask]
    if inside.size == 0:
        return levels
    low, high = float(inside.min()), float(inside.max())
    span = high - low
    if span > 0.0:
        scale = float(LEVELS - 1) / span
        q = (inside.astype(np.float64) - low) * scale
        levels[mask] = np.clip(q, 0.0, LEVELS - 1).astype(np.uint16)  # truncated, as a cast
    return levels


def seeded_watershed(heights: np.ndarray, markers: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Grow ``markers`` over ``heights`` within ``mask``; 2-D or 3-D.

    heights: (H, W) or (Z, H, W) float; markers: integer labels of the same shape, 0 where
    there is no seed (seeds outside the mask are ignored); mask: bool of the same shape.
    Returns labels of ``markers``' dtype: each pixel inside the mask that a seed reaches
    through the mask gets that seed's label, every other pixel 0.
    """
    if heights.ndim not in (2, 3):
        raise ValueError(f"The watershed takes 2-D or 3-D heights, got {heights.ndim}-D.")
    if markers.shape != heights.shape or mask.shape != heights.shape:
        raise ValueError(
            f"heights {heights.shape}, markers {markers.shape} and mask {mask.shape} must have "
            "one shape."
        )
    mask = np.ascontiguousarray(mask, dtype=bool)
    levels = quantised_levels(np.asarray(heights), mask)
    shape3 = (1,) * (3 - heights.ndim) + heights.shape
    seeds = np.ascontiguousarray(markers).reshape(-1)
    out = np.zeros(seeds.shape, seeds.dtype)
    _flood(levels.reshape(-1), seeds, mask.reshape(-1), out, *shape3)
    return out.reshape(heights.shape)


def _flood_py(
    levels: np.ndarray, seeds: np.ndarray, mask: np.ndarray, out: np.ndarray,
    depth: int, rows: int, cols: int,
) -> None:  # fmt: skip
    """The flood over raveled (Z*H*W,) arrays, writing ``out``.

    Each level's stack is a linked list (``top[level]``, then ``below[pixel]``): a pixel is
    pushed at most once, since it is labelled when pushed.
    """
    plane = rows * cols
    top = np.full(LEVELS, -1, np.int64)
    below = np.empty(levels.shape[0], np.int64)
    current = LEVELS
    for node in range(levels.shape[0]):
        if mask[node] and seeds[node] != 0:
            out[node] = seeds[node]
            level = np.int64(levels[node])
            below[node] = top[level]
            top[level] = node
            if level < current:
                current = level
    while current < LEVELS:
        while top[current] != -1:
            node = top[current]
            top[current] = below[node]
            label = out[node]
            z = node // plane
            y = (node - z * plane) // cols
            x = node - z * plane - y * cols
            for axis in range(3):  # first axis first, its lower neighbour first
                if axis == 0:
                    coord, extent, stride = z, depth, plane
                elif axis == 1:
                    coord, extent, stride = y, rows, cols
                else:
                    coord, extent, stride = x, cols, 1
                for side in range(2):
                    if side == 0:
                        if coord == 0:
                            continue
                        n = node - stride
                    else:
                        if coord + 1 >= extent:
                            continue
                        n = node + stride
                    if mask[n] and out[n] == 0:
                        out[n] = label
                        level = np.int64(levels[n])
                        if level < current:
                            level = current
                        below[n] = top[level]
                        top[level] = n
        current += 1


_flood = compiled(_flood_py)
