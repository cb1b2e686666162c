"""Filling small holes and removing small islands of a mask held over its bounding box only,
with exactly the answer the reference rule gives on the full-size mask.

The rule (:func:`napari_segany.automatic.filters.remove_small_regions`) labels 8-connected
regions of the whole image. Outside the box everything is background, so a background region
that reaches the box's border joins the background outside it; that outside is one region
unless the box spans the image's whole width or height, which splits it in two. (Were a
piece of that outside smaller than ``min_area`` itself, the reference would fill it as a hole
too; a mask here stays inside its box.)
"""

from __future__ import annotations

import numpy as np

from ..automatic.filters import remove_small_regions
from .grid import Box


def clean_small_regions(
    mask: np.ndarray, box: Box, image_shape: tuple[int, int], min_area: int
) -> tuple[np.ndarray, bool]:
    """Holes, then islands, smaller than ``min_area`` pixels removed, as on the full mask.

    mask: (r1 - r0, c1 - c0) bool over ``box`` in an image of ``image_shape``. Returns the new
    mask over the same box (its bounding box may shrink) and whether anything changed.
    """
    filled, changed_holes = _fill_small_holes(mask, box, image_shape, min_area)
    # Islands never reach outside the box, so the box alone decides.
    cleaned, changed_islands = remove_small_regions(filled, min_area, "islands")
    return cleaned, changed_holes or changed_islands


def _fill_small_holes(
    mask: np.ndarray, box: Box, image_shape: tuple[int, int], min_area: int
) -> tuple[np.ndarray, bool]:
    from skimage.measure import label

    r0, c0, r1, c1 = box
    h, w = image_shape
    # A one-pixel ring of background on the sides inside the image stands for the outside;
    # the ring's pieces are the outside's pieces (two when the box spans a whole axis).
    pad = ((int(r0 > 0), int(r1 < h)), (int(c0 > 0), int(c1 < w)))
    padded = np.pad(~mask, pad, constant_values=True)
    regions, n = label(padded, connectivity=2, return_num=True)
    inside = regions[
        pad[0][0] : padded.shape[0] - pad[0][1], pad[1][0] : padded.shape[1] - pad[1][1]
    ]
    sizes = np.bincount(inside.ravel(), minlength=n + 1)
    ring = np.ones(padded.shape, dtype=bool)
    ring[pad[0][0] : padded.shape[0] - pad[0][1], pad[1][0] : padded.shape[1] - pad[1][1]] = False
    for region in np.unique(regions[ring]):
        if region:
            sizes[region] += _outside_area(regions, ring, region, box, image_shape, pad)
    small = sizes[1:] < min_area
    if not small.any():
        return mask, False
    return mask | np.concatenate([[False], small])[inside], True


def _outside_area(
    regions: np.ndarray,
    ring: np.ndarray,
    region: int,
    box: Box,
    image_shape: tuple[int, int],
    pad: tuple[tuple[int, int], tuple[int, int]],
) -> int:
    """Pixels outside the box that belong to ``region`` (a region touching the ring)."""
    r0, c0, r1, c1 = box
    h, w = image_shape
    box_area = (r1 - r0) * (c1 - c0)
    spans_rows, spans_cols = r0 == 0 and r1 == h, c0 == 0 and c1 == w
    if not spans_rows and not spans_cols:
        return h * w - box_area  # one connected outside
    touched = regions == region
    total = 0
    if spans_cols:  # the outside is the bands above and below the box
        if pad[0][0] and touched[0].any():
            total += r0 * w
        if pad[0][1] and touched[-1].any():
            total += (h - r1) * w
    else:  # spans the rows: the bands left and right of it
        if pad[1][0] and touched[:, 0].any():
            total += c0 * h
        if pad[1][1] and touched[:, -1].any():
            total += (w - c1) * h
    return total
