"""Where segment-everything looks: crop boxes and point grids.

Coordinates are (row, col); boxes are (min_row, min_col, max_row, max_col) with the max
*exclusive*, so ``image[r0:r1, c0:c1]`` is the crop.
"""

from __future__ import annotations

import math
from itertools import product

import numpy as np

Box = tuple[int, int, int, int]


def point_grid(n_per_side: int) -> np.ndarray:
    """(n², 2) evenly spaced (row, col) fractions in (0, 1), row-major, cell centres.

    The same points, in the same order, as the reference ``build_point_grid`` (which stores them
    as (x, y)).
    """
    offset = 1 / (2 * n_per_side)
    side = np.linspace(offset, 1 - offset, n_per_side)
    rows = np.repeat(side, n_per_side)
    cols = np.tile(side, n_per_side)
    return np.stack([rows, cols], axis=1)


def layer_point_grids(n_per_side: int, n_layers: int, downscale: int) -> list[np.ndarray]:
    """One grid per crop layer; layer i has ``int(n_per_side / downscale**i)`` points a side."""
    grids = []
    for i in range(n_layers + 1):
        n = int(n_per_side / downscale**i)
        if n < 1:
            raise ValueError(
                f"Crop layer {i} would get no points: points_per_side={n_per_side} divided by "
                f"crop_n_points_downscale_factor**{i}={downscale**i} is below 1. Use more points, "
                "fewer crop layers or a smaller downscale factor."
            )
        grids.append(point_grid(n))
    return grids


def crop_boxes(
    height: int, width: int, n_layers: int, overlap_ratio: float
) -> list[tuple[Box, int]]:
    """(crop box, layer) pairs: the whole image, then (2^i)² overlapping crops in layer i.

    Geometry and order as the reference ``generate_crop_boxes`` (columns outer, rows inner),
    which matters for ties in the cross-crop de-duplication; empty crops are left out.
    """
    boxes: list[tuple[Box, int]] = [((0, 0, height, width), 0)]
    short_side = min(height, width)
    for layer in range(1, n_layers + 1):
        n_side = 2**layer
        overlap = int(overlap_ratio * short_side * (2 / n_side))
        crop_h = int(math.ceil((overlap * (n_side - 1) + height) / n_side))
        crop_w = int(math.ceil((overlap * (n_side - 1) + width) / n_side))
        col0s = [int((crop_w - overlap) * i) for i in range(n_side)]
        row0s = [int((crop_h - overlap) * i) for i in range(n_side)]
        for c0, r0 in product(col0s, row0s):
            r1, c1 = min(r0 + crop_h, height), min(c0 + crop_w, width)
            if r1 > r0 and c1 > c0:  # images a few pixels thin leave some crops empty
                boxes.append(((r0, c0, r1, c1), layer))
    return boxes
